import type { Transaction } from 'kysely';
import type { AuditContext, RecordAllowed } from '../audit/audit-context.js';
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
    record(
      ids.map((id) => ({
        action: 'grant.revoke' as const,
        target: { type: 'grant', id },
        details: { revoked_reason: reason },
      })),
    );

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
      await record({
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
      return replaced;
    },
  };
};

export type GrantWrites = ReturnType<typeof createGrantWrites>;
