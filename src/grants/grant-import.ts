import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange, auditedUse } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import { translateStoreError } from '../store/store-errors.js';
import { grantLifetime, grantStatus, scopesOutside } from './grant-rules.js';
import { grantRepo, grantTargets } from './grant-repo.js';
import type { Grant, GrantRecord, GrantTerms } from './grant-types.js';
import type { GrantWrites } from './grant-writes.js';
import { nextTurn } from './bulk-batches.js';
import { failOnProblems, parseSeedDocuments } from './seed-import.js';

type ResolvedAgent = NonNullable<Awaited<ReturnType<typeof grantTargets.findAgent>>>;
type ResolvedCredential = NonNullable<Awaited<ReturnType<typeof grantTargets.findCredential>>>;

/**
 * Grants written per transaction. A batch is a handful of statements whatever its size (read what is
 * in place, revoke what it replaces, insert, one audit append), so its cost is its rows: the inserts
 * and their access triggers, the events and their hashes (two per grant when it replaces one), all
 * of it holding the event loop on SQLite and the access generation's row on PostgreSQL until the
 * batch commits. Measured on SQLite on a busy 2-core machine, a batch of 50 new grants took 3 ms
 * (median) and 50 replacing ones 16 ms; 20 keeps a batch at a few milliseconds either way, and
 * 22,500 grants are still only 1,125 commits (see test/grants/grant-import-bulk.ts: no `/healthz`
 * answer over 200 ms during 5,000 grants on SQLite, retrievals on another PostgreSQL replica
 * unaffected).
 */
export const importBatchSize = 20;

/** Reads the validation makes before giving the event loop a turn. */
const lookupsPerTurn = 50;
/** Entries a partial-import message names, at most. */
const namedInMessage = 10;

interface PlannedGrant {
  agent: ResolvedAgent;
  credential: ResolvedCredential;
  /** In the credential's own order, so `slack` and `slack:read` read the same either way. */
  scopes: string[];
}

export interface ImportResult {
  /** Grants created by this import. */
  grants: GrantRecord[];
  /** Live grants the import replaced (now revoked as `superseded`). */
  replaced: string[];
  /** Live grants already on the terms asked for (a re-run): left as they are. */
  skipped: GrantRecord[];
}

/**
 * A live grant on the very terms an import asks for: same scopes, same reveal, same lifetime (until
 * revoked, or the same number of seconds from its creation). What makes a re-run idempotent.
 */
const onSameTerms = (grant: Grant, scopes: readonly string[], reveal: boolean, ttl: number | null) =>
  grant.reveal === reveal &&
  grant.scopes.length === scopes.length &&
  scopes.every((scope) => grant.scopes.includes(scope)) &&
  (ttl === null
    ? grant.expiresAt === null
    : grant.expiresAt !== null && Date.parse(grant.expiresAt) - Date.parse(grant.createdAt) === ttl * 1000);

/**
 * Imports the seed article's policy document(s) in two steps.
 *
 * 1. Check everything first (agents, credentials, scopes), reading outside any transaction, and
 *    report every problem at once: nothing is written when anything is wrong.
 * 2. Write in batches of `importBatchSize` grants, each one transaction with its events in one audit
 *    append (so a batch is all there with its events, or not at all), giving the event loop a turn
 *    between batches. No batch holds a lock, or the event loop, for more than a few milliseconds, so a
 *    big import never stalls other requests or replicas.
 *
 * A grant already live on the same terms is skipped, so running the same import again is how a
 * partial import is finished: when a batch fails after others committed, the answer is
 * `import_incomplete`, naming how many grants were imported and which were not.
 */
export const createGrantImporter = ({
  db,
  audit,
  writes,
  clock,
  batchSize = importBatchSize,
}: {
  db: Kysely<Database>;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  writes: Pick<GrantWrites, 'newGrant' | 'insertMany'>;
  clock: Clock;
  batchSize?: number;
}) => {
  const plan = async (namespace: string, doc: unknown, terms: GrantTerms) => {
    assertNamespace(namespace);
    grantLifetime(terms);
    const pairs = parseSeedDocuments(doc);
    const problems: string[] = [];
    const agents = new Map<string, ResolvedAgent | undefined>();
    const credentials = new Map<string, ResolvedCredential | undefined>();
    let lookups = 0;
    const looked = async () => {
      lookups += 1;
      if (lookups % lookupsPerTurn === 0) await nextTurn();
    };
    for (const pair of pairs) {
      if (!agents.has(pair.agent)) {
        agents.set(pair.agent, await grantTargets.findAgent(db, namespace, pair.agent));
        await looked();
      }
      if (!credentials.has(pair.credential)) {
        credentials.set(pair.credential, await grantTargets.findCredential(db, namespace, pair.credential));
        await looked();
      }
    }
    for (const [ref, agent] of agents) {
      if (!agent) problems.push(`no agent "${ref.slice(0, 64)}" in namespace "${namespace}"`);
    }
    for (const [name, credential] of credentials) {
      if (!credential) problems.push(`no credential "${name}" in namespace "${namespace}"`);
    }
    for (const pair of pairs) {
      const credential = credentials.get(pair.credential);
      if (!credential || pair.scopes === 'all') continue;
      const extra = scopesOutside(pair.scopes, credential.scopes);
      if (extra.length > 0) {
        problems.push(
          `credential "${credential.name}" has no scope ${extra.map((s) => `"${s.slice(0, 80)}"`).join(', ')} (it has ${credential.scopes.join(', ') || 'none'}), asked for in ${pair.sources.join(', ')}`,
        );
      }
    }
    failOnProblems(problems);

    // Group again by what the references resolve to: `agent-42` and its id are one agent.
    const resolved = new Map<
      string,
      { agent: ResolvedAgent; credential: ResolvedCredential; scopes: Set<string> }
    >();
    for (const pair of pairs) {
      const agent = agents.get(pair.agent) as ResolvedAgent;
      const credential = credentials.get(pair.credential) as ResolvedCredential;
      const key = `${agent.id}\u0000${credential.id}`;
      const entry = resolved.get(key) ?? { agent, credential, scopes: new Set<string>() };
      for (const scope of pair.scopes === 'all' ? credential.scopes : pair.scopes) entry.scopes.add(scope);
      resolved.set(key, entry);
    }
    return [...resolved.values()].map(({ agent, credential, scopes }): PlannedGrant => ({
      agent,
      credential,
      scopes: credential.scopes.filter((scope) => scopes.has(scope)),
    }));
  };

  return async (
    namespace: string,
    doc: unknown,
    terms: GrantTerms,
    ctx: AuditContext,
  ): Promise<ImportResult> => {
    const spec = { ctx, namespace, action: 'grant.import' as const, target: { type: 'grant', id: null } };
    // A refused document is recorded as a `grant.import` deny; a valid one records its grants below.
    const planned = await auditedUse(audit, spec, () => plan(namespace, doc, terms));
    const ttlSeconds = grantLifetime(terms);
    const reveal = terms.reveal ?? false;
    const result: ImportResult = { grants: [], replaced: [], skipped: [] };

    /** Writes one batch in one transaction, its events in one audit append at its end. */
    const writeBatch = (batch: readonly PlannedGrant[]) =>
      auditedChange({ db, audit }, spec, async (trx, record) => {
        const now = clock.now();
        const live = await grantRepo.liveForPairs(
          trx,
          namespace,
          batch.map(({ agent, credential }) => ({ agentId: agent.id, credentialId: credential.id })),
          now.toISOString(),
        );
        const skipped: GrantRecord[] = [];
        const toWrite: { grant: Grant; names: { agent: string; credential: string } }[] = [];
        for (const { agent, credential, scopes } of batch) {
          const names = { agent: agent.name, credential: credential.name };
          const same = live.find(
            (g) =>
              g.agentId === agent.id &&
              g.credentialId === credential.id &&
              onSameTerms(g, scopes, reveal, ttlSeconds),
          );
          if (same) {
            const status = grantStatus(same, now);
            skipped.push({ ...same, agentName: names.agent, credentialName: names.credential, status });
            continue;
          }
          const grant = writes.newGrant(namespace, ctx, {
            agentId: agent.id,
            credentialId: credential.id,
            scopes,
            reveal,
            ttlSeconds,
          });
          toWrite.push({ grant, names });
        }
        const replaced = await writes.insertMany(trx, record, toWrite, 'import');
        const created = toWrite.map(
          // Brand new, at least an hour long: live.
          ({ grant, names }): GrantRecord => ({
            ...grant,
            agentName: names.agent,
            credentialName: names.credential,
            status: 'active',
          }),
        );
        return { created, skipped, replaced: replaced.flat() };
      });

    for (let next = 0; next < planned.length; next += batchSize) {
      if (next > 0) await nextTurn();
      try {
        const written = await writeBatch(planned.slice(next, next + batchSize));
        result.grants.push(...written.created);
        result.skipped.push(...written.skipped);
        result.replaced.push(...written.replaced);
      } catch (error) {
        // Nothing committed yet: the batch's own error says it all ("nothing was changed").
        if (next === 0) throw error;
        throw incomplete(error, result, planned.slice(next), planned.length);
      }
    }
    return result;
  };
};

/** The answer to an import that failed after some of its batches committed. */
const incomplete = (
  error: unknown,
  done: ImportResult,
  missing: readonly PlannedGrant[],
  total: number,
): VaultError => {
  const cause = isVaultError(error) ? error : translateStoreError(error);
  const named = missing
    .slice(0, namedInMessage)
    .map(({ agent, credential }) => `${agent.name} × ${credential.name}`)
    .join(', ');
  const more = missing.length > namedInMessage ? ` and ${missing.length - namedInMessage} more` : '';
  const imported = done.grants.length + done.skipped.length;
  return new VaultError(
    'import_incomplete',
    `The import stopped part way (${cause?.code ?? 'internal_error'}): ${imported} of ${total} grant(s) were imported` +
      ` (${done.grants.length} created, ${done.skipped.length} already in place), each with its audit event;` +
      ` not imported: ${named}${more}. Fix the cause and run the same import again: grants already in place are skipped.`,
    { cause: error },
  );
};
