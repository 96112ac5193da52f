import { resolve } from 'node:path';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { AuditAction, AuditRecorder } from '../audit/audit-types.js';
import type { Clock } from '../lib/clock.js';
import { ensurePrivateDirectory, writeFileDurably } from '../lib/durable-file.js';
import { newId, newToken } from '../lib/ids.js';
import { hashToken } from '../lib/token-hash.js';
import type { Dialect } from '../store/database.js';
import type { Database } from '../store/schema.js';
import { adminTokenRepo } from './admin-token-repo.js';

/**
 * The root admin token: created on the first start of an empty store, replaced by `tokenvault admin
 * reset-root`. It is the only way in until an operator makes other tokens, so two things must hold:
 *
 * - **It reaches the operator before it is the only way in.** The token file is written, fsynced and
 *   renamed into place (and its directory fsynced) *inside* the transaction that inserts the token's
 *   hash, before that transaction commits. A crash before the commit leaves a file naming a token the
 *   store never knew; the next start finds no admin token, makes a new one and replaces the file. A
 *   crash after the commit leaves the file on disk already. (The other order, commit then write, is
 *   how a missing data dir or a kill between the two locked every operator out for good.)
 * - **Exactly one replica creates it.** On PostgreSQL the check "no admin token yet" and the insert run
 *   under one transaction-scoped advisory lock, so replicas starting together on an empty database
 *   queue there and all but the first find the token made. SQLite transactions already take the
 *   write lock when they begin.
 *
 * Only the replica that created the token has the file; the others' operators copy it, or set
 * TOKENVAULT_TOKEN. A lost file is what `admin reset-root` is for.
 */

export const adminTokenFileName = 'admin-token';

export const adminTokenPath = (dataDir: string): string => resolve(dataDir, adminTokenFileName);

/** Any fixed 64-bit number, the same in every replica: "tv_root" as an advisory lock key. */
const rootTokenLockKey = 0x74765f726f6f74n;

export interface RootTokenDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  clock: Clock;
  audit: Pick<AuditRecorder, 'recordInTransaction'>;
  dataDir: string;
}

/** Serialises root-token changes across replicas until `trx` ends. */
const lockRootToken = async (trx: Transaction<Database>, dialect: Dialect): Promise<void> => {
  if (dialect === 'postgres') {
    await sql`select pg_advisory_xact_lock(${sql.raw(rootTokenLockKey.toString())})`.execute(trx);
  }
};

/** Writes a new root token to the file first, then inserts its hash and its event, all inside `trx`. */
const issueRootToken = async (
  trx: Transaction<Database>,
  { clock, audit, dataDir }: Pick<RootTokenDeps, 'clock' | 'audit' | 'dataDir'>,
  { action, details }: { action: AuditAction; details: Record<string, number> },
): Promise<string> => {
  const token = newToken('tv_admin_');
  const row = {
    id: newId(),
    name: 'root',
    token_hash: hashToken(token),
    is_root: 1,
    role: 'admin',
    created_at: clock.now().toISOString(),
    expires_at: null,
    revoked_at: null,
    last_used_at: null,
  };
  const path = adminTokenPath(dataDir);
  ensurePrivateDirectory(dataDir);
  writeFileDurably(path, `${token}\n`, { mode: 0o600 });
  await adminTokenRepo.insert(trx, row);
  await audit.recordInTransaction(trx, {
    namespace: 'default',
    actor: { type: 'system', id: null },
    action,
    target: { type: 'admin_token', id: 'root' },
    decision: 'allow',
    reason: 'ok',
    requestId: null,
    details: { token_id: row.id, root: true, expires_at: null, ...details },
  });
  return path;
};

/**
 * On a store with no admin token, creates the root token and returns the path of the file holding it;
 * otherwise (another start or replica made it) returns undefined. The data dir is created (0700)
 * either way.
 */
export const bootstrapRootToken = async (deps: RootTokenDeps): Promise<string | undefined> => {
  ensurePrivateDirectory(deps.dataDir);
  return deps.db.transaction().execute(async (trx) => {
    await lockRootToken(trx, deps.dialect);
    if (await adminTokenRepo.any(trx)) return undefined;
    return issueRootToken(trx, deps, { action: 'admin_token.create', details: {} });
  });
};

/**
 * Revokes every root token still valid and writes a new one to `<dataDir>/admin-token`: the way back
 * in for an operator who lost the root token (or fears it leaked). Runs directly on the store, with
 * the server stopped or not; the caller proves it may (see `admin reset-root`). Other admin tokens
 * stay as they are.
 */
export const resetRootToken = async (deps: RootTokenDeps): Promise<{ path: string; revoked: number }> =>
  deps.db.transaction().execute(async (trx) => {
    await lockRootToken(trx, deps.dialect);
    const count = await adminTokenRepo.revokeRoot(trx, deps.clock.now().toISOString());
    const path = await issueRootToken(trx, deps, {
      action: 'admin_token.reset_root',
      details: { revoked_root_tokens: count },
    });
    return { path, revoked: count };
  });
