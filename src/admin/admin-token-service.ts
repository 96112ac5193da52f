import type { Kysely, Selectable, Transaction } from 'kysely';
import {
  type AuditContext,
  auditedChange,
  type AuditSpec,
  type RecordAllowed,
  systemContext,
} from '../audit/audit-context.js';
import type { AuditAction, AuditRecorder } from '../audit/audit-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId, newToken } from '../lib/ids.js';
import { constantTimeEqual, hashToken } from '../lib/token-hash.js';
import type { AdminTokenTable, Database } from '../store/schema.js';
import { type AdminRole, isAdminRole, newTokenExpiry } from './admin-roles.js';
import { adminTokenRepo } from './admin-token-repo.js';

export interface AdminToken {
  id: string;
  name: string;
  isRoot: boolean;
  role: AdminRole;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface AdminPrincipal {
  tokenId: string;
  name: string;
  isRoot: boolean;
  role: AdminRole;
  /** When the token stops working (null: until revoked); what it creates may not outlive it. */
  expiresAt: string | null;
}

/**
 * A role this build does not know was written by something other than the vault; such a row gets no
 * role at all rather than a guess (authenticate refuses it, list shows it as `auditor`, the narrowest).
 */
const roleOf = (row: Selectable<AdminTokenTable>): AdminRole | undefined =>
  isAdminRole(row.role) ? row.role : undefined;

const toAdminToken = (row: Selectable<AdminTokenTable>): AdminToken => ({
  id: row.id,
  name: row.name,
  isRoot: row.is_root === 1,
  role: roleOf(row) ?? 'auditor',
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
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

/** Admin tokens: random `tv_admin_…`, shown once, stored as SHA-256, compared in constant time. */
export const createAdminTokenService = ({ db, clock, audit }: AdminTokenServiceDeps) => {
  /** Admin tokens are not in a namespace; their events are filed under `default`. */
  const spec = (ctx: AuditContext, action: AuditAction, target: string | null): AuditSpec => ({
    ctx,
    namespace: 'default',
    action,
    target: { type: 'admin_token', id: target },
  });

  const lastWritten = new Map<string, number>();

  const insert = async (
    trx: Transaction<Database>,
    record: RecordAllowed,
    name: string,
    options: { role: AdminRole; expiresAt: string | null },
  ) => {
    const token = newToken('tv_admin_');
    const row = {
      id: newId(),
      name,
      token_hash: hashToken(token),
      is_root: 0,
      role: options.role,
      created_at: clock.now().toISOString(),
      expires_at: options.expiresAt,
      revoked_at: null,
      last_used_at: null,
    };
    await adminTokenRepo.insert(trx, row);
    await record({
      target: { type: 'admin_token', id: name },
      details: { token_id: row.id, root: false, role: row.role, expires_at: row.expires_at },
    });
    return { token, adminToken: toAdminToken(row) };
  };

  return {
    /**
     * A new token of `options.role` (default `admin`, for the callers that predate roles), made by
     * `creator`: never of a wider role or a longer life than the creator's own (admin-roles.ts).
     */
    create: (
      creator: Pick<AdminPrincipal, 'role' | 'expiresAt'>,
      name: string,
      options: { ttlSeconds?: number | undefined; role?: AdminRole | undefined } = {},
      ctx: AuditContext = systemContext,
    ) =>
      auditedChange(
        { db, audit },
        spec(ctx, 'admin_token.create', name.slice(0, 64)),
        async (trx, record) => {
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
          const role = options.role ?? 'admin';
          const expiresAt = newTokenExpiry(creator, { role, ttlSeconds: options.ttlSeconds }, clock.now());
          return insert(trx, record, name, { role, expiresAt });
        },
      ),

    async list(): Promise<AdminToken[]> {
      return (await adminTokenRepo.list(db)).map(toAdminToken);
    },

    /**
     * Revokes a token. The root token only by itself: anyone else who holds admin could otherwise lock
     * the operator out; `admin reset-root` (data dir and keys in hand) is the other way.
     */
    revoke: (by: Pick<AdminPrincipal, 'tokenId'>, id: string, ctx: AuditContext = systemContext) =>
      auditedChange(
        { db, audit },
        spec(ctx, 'admin_token.revoke', id.slice(0, 64)),
        async (trx, record): Promise<AdminToken> => {
          const existing = await adminTokenRepo.findById(trx, id);
          if (!existing)
            throw new VaultError('admin_token_not_found', `No admin token has id "${id.slice(0, 64)}".`);
          if (existing.is_root === 1 && existing.id !== by.tokenId) {
            throw new VaultError('root_token_protected');
          }
          const revoked = await adminTokenRepo.revoke(trx, id, clock.now().toISOString());
          // Revoking twice changes nothing and records nothing.
          if (!revoked) return toAdminToken(existing);
          await record({
            target: { type: 'admin_token', id: revoked.name },
            details: { token_id: revoked.id },
          });
          return toAdminToken(revoked);
        },
      ),

    /** Resolves a presented token, or throws the precise reason it is refused. */
    async authenticate(token: string): Promise<AdminPrincipal> {
      const hash = hashToken(token);
      const row = token.startsWith('tv_admin_') ? await adminTokenRepo.findByHash(db, hash) : undefined;
      if (!row || !constantTimeEqual(row.token_hash, hash)) throw new VaultError('admin_token_invalid');
      if (row.revoked_at !== null) throw new VaultError('admin_token_revoked');
      const now = clock.now();
      if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) {
        throw new VaultError('admin_token_expired');
      }
      const role = roleOf(row);
      if (role === undefined) throw new VaultError('admin_token_invalid');
      if (now.getTime() - (lastWritten.get(row.id) ?? 0) >= lastUsedResolutionMs) {
        lastWritten.set(row.id, now.getTime());
        await adminTokenRepo.touchLastUsed(db, row.id, now.toISOString());
      }
      return {
        tokenId: row.id,
        name: row.name,
        isRoot: row.is_root === 1,
        role,
        expiresAt: row.expires_at,
      };
    },
  };
};

export type AdminTokenService = ReturnType<typeof createAdminTokenService>;
