import type { Store } from './database.js';

/**
 * Read-through caches for the rows every agent request reads (its key, its grants, the credential it
 * asks for), kept correct by the access generation: a counter that triggers move in the same
 * transaction as any change to those tables (migration 0003), whoever makes it, on any replica.
 *
 * A request first takes a `view` (one tiny read of the counter). Cached entries belong to the newest
 * generation this process has seen, and a view that sees another one drops them all. An entry is
 * used only by a view of its own generation, so a revocation committed before a request began is
 * seen by that request: DESIGN invariant 3 holds with one read per request instead of one per row.
 *
 * A value loaded for a view is stored under the view's generation: it was read after the view, so
 * it is at least as new as that generation, and a newer change has moved the counter and will empty
 * the cache at the next view. Only time-independent rows are cached; expiry is decided per request.
 */
export interface GenerationView {
  readonly generation: number;
}

export interface CachedLookup<P, V> {
  (view: GenerationView, params: P): Promise<V>;
}

export interface GenerationCache {
  /** The current generation: one read. Take one per request, before any lookup. */
  view(): Promise<GenerationView>;
  /** A lookup whose results (when not undefined) are kept, at most `maxEntries` of them. */
  lookup<P, V>(options: {
    key: (params: P) => string;
    load: (params: P) => Promise<V>;
    maxEntries: number;
  }): CachedLookup<P, V>;
}

export interface GenerationCacheOptions {
  /** Told of every lookup: answered from memory (true) or loaded (false). For metrics. */
  onLookup?: (hit: boolean) => void;
}

export const createGenerationCache = (
  store: Pick<Store, 'db' | 'prepare'>,
  { onLookup = () => {} }: GenerationCacheOptions = {},
): GenerationCache => {
  const read = store.prepare(() =>
    store.db.selectFrom('access_generation').select('value').where('id', '=', 1),
  );
  const maps: Map<string, unknown>[] = [];
  let current: number | undefined;

  return {
    async view() {
      const row = await read.first({});
      // No row: the generation cannot be known, so nothing may be cached (NaN equals nothing).
      const generation = row ? Number(row.value) : Number.NaN;
      if (generation !== current) {
        for (const map of maps) map.clear();
        current = generation;
      }
      return { generation };
    },

    lookup<P, V>({
      key,
      load,
      maxEntries,
    }: {
      key: (params: P) => string;
      load: (params: P) => Promise<V>;
      maxEntries: number;
    }): CachedLookup<P, V> {
      const entries = new Map<string, V>();
      maps.push(entries);
      return async (view, params) => {
        const k = key(params);
        if (view.generation === current) {
          const hit = entries.get(k);
          if (hit !== undefined) {
            onLookup(true);
            return hit;
          }
        }
        onLookup(false);
        const value = await load(params);
        if (value !== undefined && view.generation === current) {
          // Oldest out first once full.
          if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
          entries.set(k, value);
        }
        return value;
      };
    },
  };
};
