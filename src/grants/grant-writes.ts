import type { Transaction } from 'kysely';
import type { AuditWriter } from '../audit/audit-writer.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { type AuditContext, auditEvent } from '../audit/audit-context.js';
import { grantExpiresAt } from './grant-policy.js';
import { grantRepo } from './grant-repo.js';
import type { Grant, RevokeReason } from './grant-types.js';

export interface GrantWritesDeps {
  clock: Clock;
  audit: Pick<AuditWriter, 'recordInTransaction' | 'recordManyInTransaction'>;
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
 * The steps every grant change is made of, each with its audit record inside the caller's
 * transaction: create and import build on the same ones, so they cannot record differently.
 */
export const createGrantWrites = ({ clock, audit }: GrantWritesDeps) => {
  const recordRevocations = async (
    trx: Transaction<Database>,
    ctx: AuditContext,
    namespace: string,
    ids: readonly string[],
    reason: RevokeReason,
  ) => {
    if (ids.length === 0) return;
    // One append for all of them: a bulk revoke locks the audit chain once, not once per grant.
    await audit.recordManyInTransaction(
      trx,
      ids.map((id) =>
        auditEvent(ctx, {
          namespace,
          action: 'grant.revoke',
          target: { type: 'grant', id },
          decision: 'allow',
          reason: 'ok',
          details: { revoked_reason: reason },
        }),
      ),
    );
  };

  const revoke = async (
    trx: Transaction<Database>,
    ctx: AuditContext,
    namespace: string,
    ids: readonly string[],
    at: string,
    reason: RevokeReason,
  ) => {
    await grantRepo.revoke(trx, ids, at, reason);
    await recordRevocations(trx, ctx, namespace, ids, reason);
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
     * credential, and records both in `trx`. Returns the ids it replaced.
     */
    async insert(
      trx: Transaction<Database>,
      ctx: AuditContext,
      grant: Grant,
      names: { agent: string; credential: string },
      source: 'api' | 'import',
    ): Promise<string[]> {
      const replaced = await grantRepo.unrevokedIds(trx, grant.namespace, {
        agentId: grant.agentId,
        credentialId: grant.credentialId,
      });
      await revoke(trx, ctx, grant.namespace, replaced, grant.createdAt, 'superseded');
      await grantRepo.insert(trx, grant);
      await audit.recordInTransaction(
        trx,
        auditEvent(ctx, {
          namespace: grant.namespace,
          action: 'grant.create',
          target: { type: 'grant', id: grant.id },
          decision: 'allow',
          reason: 'ok',
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
        }),
      );
      return replaced;
    },
  };
};

export type GrantWrites = ReturnType<typeof createGrantWrites>;
