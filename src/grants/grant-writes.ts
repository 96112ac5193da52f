import type { Transaction } from 'kysely';
import type { AuditContext, EventFacts, RecordAllowed } from '../audit/audit-context.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { grantExpiresAt } from './grant-rules.js';
import { grantRepo } from './grant-repo.js';
import type { Grant, RevokeReason } from './grant-types.js';

export interface GrantWritesDeps {
  clock: Clock;
}

export interface NewGrantFields {
  agentId: string;
  credentialId: string;
  scopes: string[];
  reveal: boolean;
  /** null: until revoked. */
  ttlSeconds: number | null;
}

/**
 * The steps every grant change is made of, each recorded through the change's own `record` (inside
 * its transaction, see auditedChange): create and import build on the same ones, so they cannot
 * record differently.
 */
export const createGrantWrites = ({ clock }: GrantWritesDeps) => {
  /** One `grant.revoke` per grant, in one append: a bulk revoke locks the audit chain once. */
  const recordRevocations = (record: RecordAllowed, ids: readonly string[], reason: RevokeReason) =>
    record(ids.map((id) => revocationEvent(id, reason)));

  const revoke = async (
    trx: Transaction<Database>,
    record: RecordAllowed,
    ids: readonly string[],
    at: string,
    reason: RevokeReason,
  ) => {
    await grantRepo.revoke(trx, ids, at, reason);
    await recordRevocations(record, ids, reason);
  };

  return {
    recordRevocations,
    revoke,

    /** A grant starting now, by the context's actor. */
    newGrant(namespace: string, ctx: AuditContext, fields: NewGrantFields): Grant {
      const now = clock.now();
      return {
        id: newId(),
        namespace,
        agentId: fields.agentId,
        credentialId: fields.credentialId,
        scopes: fields.scopes,
        reveal: fields.reveal,
        expiresAt: grantExpiresAt(now, fields.ttlSeconds),
        createdAt: now.toISOString(),
        createdBy: `${ctx.actor.type}:${ctx.actor.id ?? '-'}`,
        revokedAt: null,
        revokedReason: null,
      };
    },

    /**
     * Inserts a grant, replacing (revoking as `superseded`) the live one for the same agent and
     * credential, and records both with `record`. Returns the ids it replaced.
     */
    async insert(
      trx: Transaction<Database>,
      record: RecordAllowed,
      grant: Grant,
      names: { agent: string; credential: string },
      source: 'api' | 'import',
    ): Promise<string[]> {
      const replaced = await grantRepo.unrevokedIds(trx, grant.namespace, {
        agentId: grant.agentId,
        credentialId: grant.credentialId,
      });
      await revoke(trx, record, replaced, grant.createdAt, 'superseded');
      await grantRepo.insert(trx, grant);
      await record(createdEvent(grant, names, replaced, source));
      return replaced;
    },

    /**
     * `insert` for many grants at once, in a few statements whatever their number (a batch of an
     * import): one read of the live grants they replace, one update revoking those, one insert, and
     * every event in one `record` call (one audit append). Returns, per grant, the ids it replaced.
     */
    async insertMany(
      trx: Transaction<Database>,
      record: RecordAllowed,
      items: readonly { grant: Grant; names: { agent: string; credential: string } }[],
      source: 'api' | 'import',
    ): Promise<string[][]> {
      const first = items[0];
      if (!first) return [];
      const unrevoked = await grantRepo.unrevokedForPairs(
        trx,
        first.grant.namespace,
        items.map(({ grant }) => grant),
      );
      const replacedOf = items.map(({ grant }) =>
        unrevoked
          .filter((g) => g.agentId === grant.agentId && g.credentialId === grant.credentialId)
          .map((g) => g.id),
      );
      const replaced = replacedOf.flat();
      await grantRepo.revoke(trx, replaced, first.grant.createdAt, 'superseded');
      await grantRepo.insertMany(
        trx,
        items.map(({ grant }) => grant),
      );
      await record([
        ...replaced.map((id) => revocationEvent(id, 'superseded')),
        ...items.map(({ grant, names }, i) => createdEvent(grant, names, replacedOf[i] ?? [], source)),
      ]);
      return replacedOf;
    },
  };
};

/** The `grant.revoke` event of one grant. */
const revocationEvent = (id: string, reason: RevokeReason): EventFacts => ({
  action: 'grant.revoke',
  target: { type: 'grant', id },
  details: { revoked_reason: reason },
});

/** The `grant.create` event of a grant, naming the grants it replaced. */
const createdEvent = (
  grant: Grant,
  names: { agent: string; credential: string },
  replaced: string[],
  source: 'api' | 'import',
): EventFacts => ({
  action: 'grant.create',
  target: { type: 'grant', id: grant.id },
  details: {
    agent_id: grant.agentId,
    agent_name: names.agent,
    credential: names.credential,
    scopes: grant.scopes,
    reveal: grant.reveal,
    expires_at: grant.expiresAt,
    replaced,
    source,
  },
});

export type GrantWrites = ReturnType<typeof createGrantWrites>;
