import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';

export type ActorType = 'agent' | 'admin' | 'system' | 'anonymous';
export type Decision = 'allow' | 'deny';

/**
 * One audit event as callers describe it. Never put a secret in here: `details` is for non-secret
 * facts (scopes asked for, auth method, key id), and the writer rejects values that look like tokens.
 */
export interface AuditEventInput {
  namespace: string;
  actor: { type: ActorType; id: string | null };
  /** Dotted verb: `agent.authenticate`, `credential.retrieve`, `grant.create`, `agent.disable`, … */
  action: string;
  target?: { type: string; id: string | null } | undefined;
  decision: Decision;
  /** `ok` when allowed, else the stable error code of the refusal. */
  reason: string;
  client?: { ip: string | null; userAgent: string | null } | undefined;
  requestId?: string | null | undefined;
  details?: Record<string, string | number | boolean | null | string[]> | undefined;
}

/** What the rest of the vault needs from the audit log. */
export interface AuditRecorder {
  /**
   * Appends the event durably and resolves only once it is committed (events from concurrent requests
   * may share one commit). Rejects with `VaultError('audit_unavailable')` if it cannot be written: the
   * caller must then fail the request (fail closed).
   */
  record(event: AuditEventInput): Promise<void>;
  /** Appends inside the caller's transaction, so a change and its audit record commit together. */
  recordInTransaction(trx: Transaction<Database>, event: AuditEventInput): Promise<void>;
}
