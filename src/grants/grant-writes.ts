import type { Transaction } from 'kysely';
import type { AuditContext, EventFacts, RecordAllowed } from '../audit/audit-context.js';
import { agentSubject, credentialSubject } from '../audit/audit-subjects.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { grantExpiresAt } from './grant-rules.js';
import { type GrantSubjects, grantRepo } from './grant-repo.js';
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
  /**
   * One `grant.revoke` per grant, in one append (a bulk revoke locks the audit chain once), each
   * naming its agent and credential so the audit filters find it (audit-subjects.ts).
   */
  const recordRevocations = (record: RecordAllowed, grants: readonly GrantSubjects[], reason: RevokeReason) =>
    record(grants.map((grant) => revocationEvent(grant, reason)));

  const revoke = async (
    trx: Transaction<Database>,
    record: RecordAllowed,
    grants: readonly GrantSubjects[],
    at: string,
    reason: RevokeReason,
  ) => {
    await grantRepo.revoke(
      trx,
      grants.map((grant) => grant.id),
      at,
      reason,
    );
    await recordRevocations(record, grants, reason);
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
      const live = await grantRepo.unrevoked(trx, grant.namespace, {
        agentId: grant.agentId,
        credentialId: grant.credentialId,
      });
      await revoke(trx, record, live, grant.createdAt, 'superseded');
      const replaced = live.map((g) => g.id);
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
      // A replaced grant is of the same agent and credential as the grant replacing it.
      const replacedOf = items.map(({ grant, names }) =>
        unrevoked
          .filter((g) => g.agentId === grant.agentId && g.credentialId === grant.credentialId)
          .map((g) => ({
            id: g.id,
            agentId: grant.agentId,
            agentName: names.agent,
            credentialId: grant.credentialId,
            credentialName: names.credential,
          })),
      );
      const replaced = replacedOf.flat();
      await grantRepo.revoke(
        trx,
        replaced.map((g) => g.id),
        first.grant.createdAt,
        'superseded',
      );
      await grantRepo.insertMany(
        trx,
        items.map(({ grant }) => grant),
      );
      await record([
        ...replaced.map((g) => revocationEvent(g, 'superseded')),
        ...items.map(({ grant, names }, i) =>
          createdEvent(
            grant,
            names,
            (replacedOf[i] ?? []).map((g) => g.id),
            source,
          ),
        ),
      ]);
      return replacedOf.map((grants) => grants.map((g) => g.id));
    },
  };
};

/** The `grant.revoke` event of one grant, naming its agent and credential (audit-subjects.ts). */
const revocationEvent = (grant: GrantSubjects, reason: RevokeReason): EventFacts => ({
  action: 'grant.revoke',
  target: { type: 'grant', id: grant.id },
  details: {
    revoked_reason: reason,
    ...agentSubject({ id: grant.agentId, name: grant.agentName }),
    ...credentialSubject({ id: grant.credentialId, name: grant.credentialName }),
  },
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
    ...agentSubject({ id: grant.agentId, name: names.agent }),
    ...credentialSubject({ id: grant.credentialId, name: names.credential }),
    scopes: grant.scopes,
    reveal: grant.reveal,
    expires_at: grant.expiresAt,
    replaced,
    source,
  },
});

export type GrantWrites = ReturnType<typeof createGrantWrites>;
