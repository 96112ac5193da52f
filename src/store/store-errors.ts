import { VaultError } from '../errors/vault-error.js';

/** True when a database error is a unique-constraint violation, on either dialect. */
export const isUniqueViolation = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
};

/**
 * PostgreSQL codes of a bounded wait that ran out (database.ts sets the bounds): `lock_not_available`
 * (lock_timeout), `query_canceled` (statement_timeout), `idle_in_transaction_session_timeout`.
 */
const postgresBusyCodes = new Set(['55P03', '57014', '25P03']);

/** The pool's own wait for a free connection ran out (pg's wording; it sets no code). */
const poolTimeoutMessage = /timeout exceeded when trying to connect/i;

/**
 * True when a database error means "another holder kept what this needed for longer than the bounded
 * wait": a lock or statement timeout on PostgreSQL, SQLITE_BUSY after SQLite's busy_timeout, an
 * exhausted connection pool. Nothing was changed (the statement or transaction failed as a whole).
 */
export const isStoreBusy = (error: unknown): boolean => {
  if (error === null || typeof error !== 'object') return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (postgresBusyCodes.has(code) || code.startsWith('SQLITE_BUSY')))
    return true;
  return code === undefined && typeof message === 'string' && poolTimeoutMessage.test(message);
};

/**
 * The store's errors a client may see, as VaultErrors: a bounded wait that ran out becomes
 * `store_busy` (503, try again), with the original kept as the cause for the log. Anything else is
 * left alone (undefined), to become `internal_error` at the edge.
 */
export const translateStoreError = (error: unknown): VaultError | undefined =>
  isStoreBusy(error) ? new VaultError('store_busy', undefined, { cause: error }) : undefined;
