import type { Kysely } from 'kysely';
import { agentKeyRepo } from '../agents/agent-repo.js';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import { runInBatches } from './bulk-batches.js';
import { createGrantImporter } from './grant-import.js';
import { grantLifetime, grantScopes, grantStatus } from './grant-rules.js';
import { type Db, grantRepo, grantTargets } from './grant-repo.js';
import type { Grant, GrantDetails, GrantRecord, GrantTerms, RevokeReason } from './grant-types.js';
import { createGrantWrites } from './grant-writes.js';

export interface GrantServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

export interface CreateGrantInput extends GrantTerms {
  /** The agent's id or name. */
  agent: string;
  credential: string;
  /** Which user's credential, when several users hold one of that name (per-user credentials). */
  user?: string | undefined;
  /** Absent: all the credential's scopes. */
  scopes?: string[] | undefined;
}

export interface GrantListOptions {
  agent?: string | undefined;
  credential?: string | undefined;
  /** Include revoked and expired grants. */
  all?: boolean | undefined;
  limit?: number | undefined;
  after?: string | undefined;
}

const maxPageSize = 500;

/**
 * Grants revoked per transaction by `revokeFor`: each is a row update (and its access trigger) and a
 * `grant.revoke` event, about the cost of an import's grant (grant-import.ts), so 50 is a batch of a
 * few milliseconds.
 */
const revokeBatchSize = 50;
/**
 * Grants revoked per transaction by the kill switch: a row update and its trigger each, no event of
 * their own (one per batch), measured at about 10 µs a row on SQLite (5,000 in one statement: 40-70 ms):
 * 200 is a few milliseconds.
 */
const revokeAllBatchSize = 200;

/** A bulk revoke that failed after some of its batches committed. */
const revokeIncomplete = (error: unknown, done: string) => {
  const cause = isVaultError(error) ? error.code : 'internal_error';
  return new VaultError(
    'revoke_incomplete',
    `The revoke stopped part way (${cause}): ${done}, each with its audit event, and those stay revoked. Fix the cause and run the same revoke again to finish it.`,
    { cause: error },
  );
};

const encodeCursor = (g: Grant) => Buffer.from(`${g.createdAt}|${g.id}`, 'utf8').toString('base64url');
const decodeCursor = (cursor: string) => {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!createdAt || !id)
    throw new VaultError('invalid_request', 'The `after` cursor is not one this server gave out.');
  return { createdAt, id };
};

/**
 * Grants: agent × credential, with scopes (a subset of the credential's), a reveal flag and a
 * lifetime. At most one grant per agent × credential is live: a new one replaces the old (which is
 * revoked as `superseded`), so what an agent may do is always one row to read. Every change is
 * audited in its own transaction; refusals are audited too.
 */
export const createGrantService = ({ db, clock, audit }: GrantServiceDeps) => {
  const writes = createGrantWrites({ clock });
  const audited = { db, audit };
  const withStatus = (grant: GrantDetails): GrantRecord => ({
    ...grant,
    status: grantStatus(grant, clock.now()),
  });

  const agentOrFail = async (namespace: string, ref: string, trx: Db = db) => {
    const agent = await grantTargets.findAgent(trx, namespace, ref);
    if (!agent) {
      throw new VaultError(
        'agent_not_found',
        `No agent "${ref.slice(0, 64)}" (id or name) in namespace "${namespace}".`,
      );
    }
    return agent;
  };

  const credentialOrFail = async (namespace: string, name: string, trx: Db = db, user?: string) => {
    const credential = await grantTargets.findCredential(trx, namespace, name, user);
    if (!credential) {
      throw new VaultError(
        'credential_not_found',
        `No credential named "${name.slice(0, 64)}" in namespace "${namespace}".`,
      );
    }
    return credential;
  };

  const find = async (namespace: string, id: string, trx: Db = db) => {
    const grant = await grantRepo.findById(trx, namespace, id);
    if (!grant)
      throw new VaultError(
        'grant_not_found',
        `No grant with id "${id.slice(0, 64)}" in namespace "${namespace}".`,
      );
    return grant;
  };

  return {
    create: (namespace: string, input: CreateGrantInput, ctx: AuditContext) =>
      auditedChange(
        audited,
        {
          ctx,
          namespace,
          action: 'grant.create',
          target: { type: 'grant', id: null },
          refusal: () => ({
            details: {
              agent_ref: input.agent.slice(0, 200),
              credential_ref: input.credential.slice(0, 200),
            },
          }),
        },
        async (trx, record) => {
          assertNamespace(namespace);
          const ttlSeconds = grantLifetime(input);
          const agent = await agentOrFail(namespace, input.agent, trx);
          const credential = await credentialOrFail(namespace, input.credential, trx, input.user);
          const scopes = grantScopes(input.scopes, credential);
          const grant = writes.newGrant(namespace, ctx, {
            agentId: agent.id,
            credentialId: credential.id,
            scopes,
            reveal: input.reveal ?? false,
            ttlSeconds,
          });
          const replaced = await writes.insert(
            trx,
            record,
            grant,
            { agent: agent.name, credential: credential.name },
            'api',
          );
          return {
            grant: withStatus({ ...grant, agentName: agent.name, credentialName: credential.name }),
            replaced,
          };
        },
      ),

    async list(namespace: string, options: GrantListOptions = {}) {
      assertNamespace(namespace);
      const limit = Math.min(Math.max(options.limit ?? 100, 1), maxPageSize);
      const agentId =
        options.agent === undefined ? undefined : (await agentOrFail(namespace, options.agent)).id;
      const credentialId =
        options.credential === undefined
          ? undefined
          : (await credentialOrFail(namespace, options.credential)).id;
      const items = await grantRepo.list(db, namespace, {
        agentId,
        credentialId,
        liveAt: options.all ? undefined : clock.now().toISOString(),
        limit: limit + 1,
        after: options.after === undefined ? undefined : decodeCursor(options.after),
      });
      const page = items.slice(0, limit);
      const last = page.at(-1);
      return {
        items: page.map(withStatus),
        nextCursor: items.length > limit && last ? encodeCursor(last) : null,
      };
    },

    async show(namespace: string, id: string): Promise<GrantRecord> {
      assertNamespace(namespace);
      return withStatus(await find(namespace, id));
    },

    /** Revokes one grant. Revoking a revoked grant changes nothing and records nothing. */
    revoke: (namespace: string, id: string, ctx: AuditContext): Promise<GrantRecord> =>
      auditedChange(
        audited,
        { ctx, namespace, action: 'grant.revoke', target: { type: 'grant', id: id.slice(0, 64) } },
        async (trx, record) => {
          assertNamespace(namespace);
          const grant = await find(namespace, id, trx);
          if (grant.revokedAt !== null) return withStatus(grant);
          // Only the request that actually changed the row records it (two concurrent revokes: one event).
          const changed = await grantRepo.revoke(trx, [grant.id], clock.now().toISOString(), 'revoked');
          if (changed > 0) {
            const subjects = {
              id: grant.id,
              agentId: grant.agentId,
              agentName: grant.agentName ?? '',
              credentialId: grant.credentialId,
              credentialName: grant.credentialName ?? '',
            };
            await writes.recordRevocations(record, [subjects], 'revoked');
          }
          return withStatus(await find(namespace, id, trx));
        },
      ),

    /**
     * Revokes every grant an agent holds, or every grant on a credential; returns their ids. In
     * batches of `revokeBatchSize`, each with its `grant.revoke` events (see bulk-batches.ts); the
     * answer comes once every batch committed. A failure midway is `revoke_incomplete`: what was
     * revoked stays revoked, and running the same revoke again finishes it.
     */
    revokeFor: async (
      namespace: string,
      target: { agent: string } | { credential: string },
      ctx: AuditContext,
    ): Promise<string[]> => {
      const byAgent = 'agent' in target;
      const spec = {
        ctx,
        namespace,
        action: 'grant.revoke' as const,
        target: byAgent
          ? { type: 'agent', id: target.agent.slice(0, 200) }
          : { type: 'credential', id: target.credential.slice(0, 200) },
      };
      const reason: RevokeReason = byAgent ? 'agent_revoked' : 'credential_revoked';
      let filter: { agentId: string } | { credentialId: string } | undefined;
      const batches = await runInBatches(
        () =>
          auditedChange(audited, spec, async (trx, record) => {
            assertNamespace(namespace);
            filter ??= byAgent
              ? { agentId: (await agentOrFail(namespace, target.agent, trx)).id }
              : { credentialId: (await credentialOrFail(namespace, target.credential, trx)).id };
            const grants = await grantRepo.unrevoked(trx, namespace, filter, revokeBatchSize);
            await writes.revoke(trx, record, grants, clock.now().toISOString(), reason);
            return { result: grants.map((grant) => grant.id), more: grants.length === revokeBatchSize };
          }),
        (error, done) => revokeIncomplete(error, `${done.flat().length} grant(s) were revoked`),
      );
      return batches.flat();
    },

    /**
     * The namespace kill switch: every agent API key of the namespace, then every grant, revoked. Only
     * new grants and new keys undo it.
     *
     * The keys go in the first transaction (agents on API keys are refused from its commit on), the
     * grants in batches of `revokeAllBatchSize`, each batch with a `namespace.revoke_all` event of its
     * counts (see bulk-batches.ts), so 20,000 grants never hold the event loop or a lock for long.
     * Why that keeps the switch safe: the answer comes only after every batch committed, so, as
     * before, every request that starts after it, on any replica, finds nothing live (DESIGN
     * invariant 3); while it runs it is an operation in progress, as the single transaction was. A
     * failure midway never answers success: it is `revoke_incomplete`, with strictly more revoked
     * than before it started (never less, as a failed single transaction would leave), and running
     * it again finishes it.
     */
    revokeAll: async (namespace: string, ctx: AuditContext) => {
      const spec = {
        ctx,
        namespace,
        action: 'namespace.revoke_all' as const,
        target: { type: 'namespace', id: namespace.slice(0, 64) },
      };
      const at = clock.now().toISOString();
      const batches = await runInBatches(
        (index) =>
          auditedChange(audited, spec, async (trx, record) => {
            assertNamespace(namespace);
            // The agents module's half: its own keys, through its own repository.
            const agentKeysRevoked =
              index === 0 ? await agentKeyRepo.revokeAllInNamespace(trx, namespace, at) : 0;
            const grantsRevoked = await grantRepo.revokeNamespace(trx, namespace, at, revokeAllBatchSize);
            if (index === 0 || grantsRevoked > 0) {
              await record({
                details: { grants_revoked: grantsRevoked, agent_keys_revoked: agentKeysRevoked },
              });
            }
            return {
              result: { grantsRevoked, agentKeysRevoked },
              more: grantsRevoked === revokeAllBatchSize,
            };
          }),
        (error, done) =>
          revokeIncomplete(
            error,
            `${done.reduce((n, b) => n + b.grantsRevoked, 0)} grant(s) and ${done[0]?.agentKeysRevoked ?? 0} agent key(s) were revoked`,
          ),
      );
      return {
        namespace,
        grantsRevoked: batches.reduce((n, b) => n + b.grantsRevoked, 0),
        agentKeysRevoked: batches[0]?.agentKeysRevoked ?? 0,
        revokedAt: at,
      };
    },

    /** The seed article's policy document(s): see grant-import.ts. */
    importGrants: createGrantImporter({ db, audit, writes, clock }),
  };
};

export type GrantService = ReturnType<typeof createGrantService>;
export type { GrantRecord, GrantTerms };
