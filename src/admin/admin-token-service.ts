import type { Kysely, Selectable } from 'kysely';
import { type AuditContext, auditedChange, auditEvent } from '../audit/audit-context.js';
import type { AuditEventInput, AuditRecorder } from '../audit/audit-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId, newToken } from '../lib/ids.js';
import { constantTimeEqual, hashToken } from '../lib/token-hash.js';
import type { AdminTokenTable, Database } from '../store/schema.js';

export interface AdminToken {
  id: string;
  name: string;
  isRoot: boolean;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface AdminPrincipal {
  tokenId: string;
  name: string;
  isRoot: boolean;
}

const toAdminToken = (row: Selectable<AdminTokenTable>): AdminToken => ({
  id: row.id,
  name: row.name,
  isRoot: row.is_root === 1,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  revokedAt: row.revoked_at,
  lastUsedAt: row.last_used_at,
});

const tokenNamePattern = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;
/** `last_used_at` is a hint, not an audit record: write it at most this often per token. */
const lastUsedResolutionMs = 60_000;

export interface AdminTokenServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction'>;
}

const systemContext: AuditContext = { actor: { type: 'system', id: null } };

/** Admin tokens: random `tv_admin_…`, shown once, stored as SHA-256, compared in constant time. */
export const createAdminTokenService = ({ db, clock, audit }: AdminTokenServiceDeps) => {
  /** Admin tokens are not in a namespace; their events are filed under `default`. */
  const event = (
    ctx: AuditContext,
    action: string,
    target: string | null,
    details: AuditEventInput['details'] = {},
  ) =>
    auditEvent(ctx, {
      namespace: 'default',
      action,
      target: { type: 'admin_token', id: target },
      decision: 'allow',
      reason: 'ok',
      details,
    });

  const lastWritten = new Map<string, number>();

  const insert = async (
    name: string,
    options: { isRoot?: boolean; expiresAt?: string | null },
    ctx: AuditContext,
  ) => {
    const token = newToken('tv_admin_');
    const row = {
      id: newId(),
      name,
      token_hash: hashToken(token),
      is_root: options.isRoot ? 1 : 0,
      created_at: clock.now().toISOString(),
      expires_at: options.expiresAt ?? null,
      revoked_at: null,
      last_used_at: null,
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('admin_tokens').values(row).execute();
      await audit.recordInTransaction(
        trx,
        event(ctx, 'admin_token.create', name, {
          token_id: row.id,
          root: row.is_root === 1,
          expires_at: row.expires_at,
        }),
      );
    });
    return { token, adminToken: toAdminToken(row) };
  };

  return {
    create: (
      name: string,
      options: { ttlSeconds?: number | undefined } = {},
      ctx: AuditContext = systemContext,
    ) =>
      auditedChange(
        audit,
        () => event(ctx, 'admin_token.create', name.slice(0, 64)),
        async () => {
          if (!tokenNamePattern.test(name)) {
            throw new VaultError(
              'invalid_request',
              'A token name is 1 to 64 letters, digits, spaces, `.`, `_`, `@` or `-`, starting with a letter or digit.',
            );
          }
          if (
            options.ttlSeconds !== undefined &&
            (!Number.isInteger(options.ttlSeconds) || options.ttlSeconds < 60)
          ) {
            throw new VaultError('invalid_request', 'ttl_seconds must be a whole number of at least 60.');
          }
          const expiresAt =
            options.ttlSeconds === undefined
              ? null
              : new Date(clock.now().getTime() + options.ttlSeconds * 1000).toISOString();
          return insert(name, { expiresAt }, ctx);
        },
      ),

    async list(): Promise<AdminToken[]> {
      const rows = await db
        .selectFrom('admin_tokens')
        .selectAll()
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toAdminToken);
    },

    revoke: (id: string, ctx: AuditContext = systemContext) =>
      auditedChange(
        audit,
        () => event(ctx, 'admin_token.revoke', id.slice(0, 64)),
        async (): Promise<AdminToken> => {
          const now = clock.now().toISOString();
          const row = await db.transaction().execute(async (trx) => {
            const revoked = await trx
              .updateTable('admin_tokens')
              .set({ revoked_at: now })
              .where('id', '=', id)
              .where('revoked_at', 'is', null)
              .returningAll()
              .executeTakeFirst();
            if (revoked) {
              await audit.recordInTransaction(
                trx,
                event(ctx, 'admin_token.revoke', revoked.name, { token_id: revoked.id }),
              );
            }
            return revoked;
          });
          if (row) return toAdminToken(row);
          const existing = await db
            .selectFrom('admin_tokens')
            .selectAll()
            .where('id', '=', id)
            .executeTakeFirst();
          if (!existing)
            throw new VaultError('admin_token_not_found', `No admin token has id "${id.slice(0, 64)}".`);
          return toAdminToken(existing);
        },
      ),

    /** Resolves a presented token, or throws the precise reason it is refused. */
    async authenticate(token: string): Promise<AdminPrincipal> {
      const hash = hashToken(token);
      const row = token.startsWith('tv_admin_')
        ? await db.selectFrom('admin_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst()
        : undefined;
      if (!row || !constantTimeEqual(row.token_hash, hash)) throw new VaultError('admin_token_invalid');
      if (row.revoked_at !== null) throw new VaultError('admin_token_revoked');
      const now = clock.now();
      if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) {
        throw new VaultError('admin_token_expired');
      }
      if (now.getTime() - (lastWritten.get(row.id) ?? 0) >= lastUsedResolutionMs) {
        lastWritten.set(row.id, now.getTime());
        await db
          .updateTable('admin_tokens')
          .set({ last_used_at: now.toISOString() })
          .where('id', '=', row.id)
          .execute();
      }
      return { tokenId: row.id, name: row.name, isRoot: row.is_root === 1 };
    },
  };
};

export type AdminTokenService = ReturnType<typeof createAdminTokenService>;
