import { sql } from 'kysely';
import type { Store } from './database.js';
import type { Params } from './prepared.js';

/**
 * Read-through caches for the rows every agent request reads (its key, its grants, the credential it
 * asks for), kept correct by the access generation: a counter that triggers move in the same
 * transaction as any change to those tables, whoever makes it, on any replica (migration 0003). Since
 * 0004 each trigger also writes which part of the cached state its change touches, a *scope*, with
 * the generation it moved to (`access_changes`, one row per scope):
 *
 * - `n:<namespace>`: what revocation reads namespace-wide: agents, their API keys, grants, and which
 *   credential a name means (the kill switch revokes grants and keys, so it is one of these);
 * - `g:<credential id>`: the credential's state as a grant decision reads it (status, expiry);
 * - `c:<credential id>`: the credential's own row, secret versions and data key. A new version of a
 *   secret, which is what a token refresh writes, touches only this one.
 * - `p:<namespace>` (migration 0010): the namespace's policies, their versions and attachments.
 *
 * Counters (rate limits, usage caps) and bookkeeping such as an API key's `last_used_at` live where
 * no trigger is, so counting a use moves nothing.
 *
 * Why revocation still holds on the very next request, on every replica (DESIGN invariant 3):
 *
 * 1. A request first takes a `view`: one read of the counter, `g`. Every change committed before the
 *    request began has a generation <= g (generations are given out in commit order: the counter's
 *    row is locked until commit on PostgreSQL, and SQLite has one writer).
 * 2. This process keeps `known`: every change up to `known` has been applied, i.e. every cached
 *    entry tagged with a scope that changed at or below `known` was dropped. When `g > known`, the
 *    view reads, in one statement, the counter and every scope whose generation is above `known`,
 *    drops the entries of those scopes, and sets `known` to the counter it read. The upsert keeps
 *    only a scope's newest generation, which is enough: a scope that changed after `known` has a
 *    generation after `known`, however often it changed since. So the view returns only once every
 *    change of the request's past is applied.
 * 3. An entry is tagged with every scope its value depends on (a lookup names them), and is stored
 *    only if nothing was applied while it loaded: it was read after `known` was reached, so it
 *    reflects every change up to `known`, and a later change of its scopes drops it when applied.
 *    A load that overlapped an application is returned to its caller but not kept.
 * 4. An entry is served only to a view with `generation <= known`. With 2 and 3: whatever a cached
 *    entry says, a fresh read at the request's start would have said too, for every scope the value
 *    depends on. A grant revoked, an agent disabled, a key revoked, a credential removed or
 *    disabled, a data key re-wrapped, the namespace kill switch: each moves a scope of every entry it
 *    affects (see `accessChangeRules0004`), so the next request on any replica reads it afresh.
 *
 * Only time-independent rows are cached; expiry is decided per request. A counter that goes back
 * (restored by hand) or cannot be read drops everything. A lookup that names no scopes is dropped
 * by every change, as before 0004. Reads per request: one (the counter) while nothing changes; after
 * a change, one more per process (concurrent views share it), then only the changed entries reload.
 */
export interface GenerationView {
  readonly generation: number;
}

export interface CachedLookup<P, V> {
  (view: GenerationView, params: P): Promise<V>;
}

/** The scopes access changes are recorded under (migration 0004 writes the same strings). */
export const accessScope = {
  namespace: (namespace: string) => `n:${namespace}`,
  grantedCredential: (credentialId: string) => `g:${credentialId}`,
  credential: (credentialId: string) => `c:${credentialId}`,
  /** The namespace's policies, their versions and attachments (migration 0010). */
  policies: (namespace: string) => `p:${namespace}`,
} as const;

export interface LookupOptions<P, V> {
  key: (params: P) => string;
  load: (params: P) => Promise<V>;
  /** At most this many entries; the oldest goes first. */
  maxEntries: number;
  /** The scopes a loaded value depends on (`accessScope`). Absent: any change drops it. */
  scopes?: (params: P, value: Exclude<V, undefined>) => readonly string[];
  /** An entry older than `ms` (by `now`, in ms) is loaded again, and swept on later lookups. */
  maxAge?: { ms: number; now: () => number };
  /** Names the lookup to `onLookup`. */
  name?: string;
}

export interface GenerationCache {
  /** The current generation: one read. Take one per request, before any lookup. */
  view(): Promise<GenerationView>;
  /** A lookup whose results (when not undefined) are kept, at most `maxEntries` of them. */
  lookup<P, V>(options: LookupOptions<P, V>): CachedLookup<P, V>;
}

export interface GenerationCacheOptions {
  /** Told of every lookup: answered from memory (true) or loaded (false), and the lookup's name. */
  onLookup?: (hit: boolean, name: string) => void;
}

interface Entry<V> {
  value: V;
  scopes: readonly string[];
  at: number;
}

/** What `view` applies to every lookup once the counter moved. */
interface Invalidatable {
  /** Drops the entries of these scopes (all of them when the lookup names no scopes). */
  apply(scopes: ReadonlySet<string>): void;
  clear(): void;
}

/** More changed scopes than this at once (a key rotation's batch, say) and it is cheaper to drop all. */
const maxScopesApplied = 10_000;

export const createGenerationCache = (
  store: Pick<Store, 'db' | 'prepare'>,
  { onLookup = () => {} }: GenerationCacheOptions = {},
): GenerationCache => {
  const { db } = store;
  const readCounter = store.prepare(() =>
    db.selectFrom('access_generation').select('value').where('id', '=', 1),
  );
  // One statement, so the counter and the changes below it come from one snapshot.
  const readChanges = store.prepare((p: Params<{ after: number }>) =>
    db
      .selectFrom('access_generation')
      .select(['value as generation', sql<string | null>`cast(null as text)`.as('scope')])
      .where('id', '=', 1)
      .unionAll(
        db.selectFrom('access_changes').select(['generation', 'scope']).where('generation', '>', p('after')),
      ),
  );
  const lookups: Invalidatable[] = [];
  /** Every change up to this generation is applied; undefined: nothing may be served. */
  let known: number | undefined;
  /** Moves whenever anything is dropped: a load that overlaps it is not kept. */
  let epoch = 0;
  let catchingUp: Promise<void> | undefined;

  const clearAll = () => {
    epoch += 1;
    for (const lookup of lookups) lookup.clear();
  };

  const applyChangesAfter = async (after: number) => {
    const rows = await readChanges.all({ after });
    let counter = Number.NaN;
    const scopes = new Set<string>();
    for (const row of rows) {
      if (row.scope === null) counter = Number(row.generation);
      else scopes.add(row.scope);
    }
    // Another catch-up (or a view that found the counter gone back) got there first.
    if (known !== after) return;
    if (!Number.isFinite(counter) || counter < after) {
      clearAll();
      known = Number.isFinite(counter) ? counter : undefined;
      return;
    }
    epoch += 1;
    for (const lookup of lookups) {
      if (scopes.size > maxScopesApplied) lookup.clear();
      else lookup.apply(scopes);
    }
    known = counter;
  };

  /** Resolves once every change up to `generation` is applied (or the counter went missing). */
  const catchUp = async (generation: number) => {
    while (known !== undefined && known < generation) {
      // A catch-up already under way may have begun before `generation` was read: then go again.
      catchingUp ??= applyChangesAfter(known).finally(() => (catchingUp = undefined));
      await catchingUp;
    }
  };

  return {
    async view() {
      const before = known;
      const row = await readCounter.first({});
      // No row: the generation cannot be known, so nothing may be served (NaN is below nothing).
      const generation = row ? Number(row.value) : Number.NaN;
      if (!Number.isFinite(generation)) {
        clearAll();
        known = undefined;
      } else if (known === undefined || (before !== undefined && generation < before)) {
        // First view, or the counter went back: nothing cached can be vouched for.
        clearAll();
        known = generation;
      } else if (generation > known) {
        await catchUp(generation);
      }
      // A read that began before another view caught up may return less than `known`: still served.
      return { generation };
    },

    lookup<P, V>({
      key,
      load,
      maxEntries,
      scopes,
      maxAge,
      name = 'lookup',
    }: LookupOptions<P, V>): CachedLookup<P, V> {
      const entries = new Map<string, Entry<V>>();
      const byScope = new Map<string, Set<string>>();

      const remove = (k: string) => {
        const entry = entries.get(k);
        if (!entry) return;
        entries.delete(k);
        for (const scope of entry.scopes) {
          const keys = byScope.get(scope);
          keys?.delete(k);
          if (keys?.size === 0) byScope.delete(scope);
        }
      };
      const sweep = (now: number) => {
        if (!maxAge) return;
        // Entries are only ever added at the end, so the oldest come first.
        for (const [k, entry] of entries) {
          if (now - entry.at < maxAge.ms) break;
          remove(k);
        }
      };
      const clear = () => {
        entries.clear();
        byScope.clear();
      };
      lookups.push({
        apply(changed) {
          if (!scopes) return clear();
          for (const scope of changed) for (const k of [...(byScope.get(scope) ?? [])]) remove(k);
        },
        clear,
      });

      return async (view: GenerationView, params: P) => {
        const k = key(params);
        if (maxAge) sweep(maxAge.now());
        const servable = known !== undefined && view.generation <= known;
        if (servable) {
          const hit = entries.get(k);
          if (hit !== undefined) {
            onLookup(true, name);
            return hit.value;
          }
        }
        onLookup(false, name);
        const startedAt = epoch;
        const value = await load(params);
        if (value !== undefined && servable && epoch === startedAt && maxEntries > 0) {
          remove(k);
          if (entries.size >= maxEntries) remove(entries.keys().next().value as string);
          const entryScopes = scopes ? scopes(params, value as Exclude<V, undefined>) : [];
          // Stamped when stored, so the map's order stays the order of age that `sweep` relies on.
          entries.set(k, { value, scopes: entryScopes, at: maxAge?.now() ?? 0 });
          for (const scope of entryScopes) {
            let keys = byScope.get(scope);
            if (!keys) byScope.set(scope, (keys = new Set()));
            keys.add(k);
          }
        }
        return value;
      };
    },
  };
};
