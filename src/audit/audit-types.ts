import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.js';

export type ActorType = 'agent' | 'admin' | 'system' | 'anonymous';
export type Decision = 'allow' | 'deny';

/**
 * Every action the vault records, so a new event is a decision made here and a typo does not compile.
 * Dotted lowercase verbs; the noun first, so a filter such as `credential.*` finds a whole family.
 */
export const auditActions = [
  'credential.retrieve',
  'credential.proxy',
  'credential.create',
  'credential.update',
  'credential.delete',
  'credential.prune',
  'credential.refresh',
  'agent.authenticate',
  'agent.create',
  'agent.update',
  'agent.delete',
  'agent.disable',
  'agent.enable',
  'agent.key.create',
  'agent.key.revoke',
  'agent.jwks.set',
  'agent.jwks.clear',
  'agent.bind',
  'agent.unbind',
  'issuer.trust',
  'issuer.delete',
  'grant.create',
  'grant.revoke',
  'grant.import',
  'namespace.revoke_all',
  'admin.authenticate',
  'admin.authorize',
  'admin_token.create',
  'admin_token.revoke',
  'admin_token.reset_root',
  'keys.rotate',
  'keys.mode_set',
  'keys.verify',
  'policy.create',
  'policy.update',
  'policy.delete',
  'policy.attach',
  'policy.detach',
  'policy.usage_reset',
  'event.undeliverable',
  'oauth_app.create',
  'oauth_app.delete',
  'connect.create',
  'connect.authorize',
  'connect.complete',
  'mcp_proxy.create',
  'mcp_proxy.update',
  'mcp_proxy.delete',
  'mcp_proxy.key.create',
  'mcp_proxy.key.revoke',
  'mcp_proxy.authenticate',
  'mcp_proxy.connect',
  'mcp_proxy.call',
  'mcp_proxy.redact',
  'mcp_proxy.session.end',
  'mcp_proxy.reconnect',
  'mcp_proxy.reauthorize',
  'mcp_proxy.tools.pin',
  'mcp_proxy.tools.change',
  'mcp_proxy.tools.accept',
  'approval.request',
  'approval.notify',
  'approval.approve',
  'approval.deny',
  'approval.expire',
  'approval.subscribe',
] as const;
export type AuditAction = (typeof auditActions)[number];

/** What an event is about: a credential by name, an agent or grant by id, … */
export interface AuditTarget {
  type: string;
  id: string | null;
}

/** Non-secret facts about an event; stored as sorted-key JSON. */
export type AuditDetails = Record<string, string | number | boolean | null | string[]>;

/**
 * One audit event as callers describe it. Never put a secret in here: `details` is for non-secret
 * facts (scopes asked for, auth method, key id), and the writer rejects values that look like tokens.
 */
export interface AuditEventInput {
  namespace: string;
  actor: { type: ActorType; id: string | null };
  action: AuditAction;
  target?: AuditTarget | undefined;
  decision: Decision;
  /** `ok` when allowed, else the stable error code of the refusal. */
  reason: string;
  client?: { ip: string | null; userAgent: string | null } | undefined;
  requestId?: string | null | undefined;
  details?: AuditDetails | undefined;
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
  /** Several events in one append inside the caller's transaction (a bulk revoke, an import). */
  recordManyInTransaction(trx: Transaction<Database>, events: AuditEventInput[]): Promise<void>;
}

/** One stored event, as `audit list` and the exports show it (column names, details parsed). */
export interface AuditEvent {
  seq: number;
  id: string;
  time: string;
  namespace: string;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  decision: Decision;
  reason: string | null;
  client_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: AuditDetails;
  prev_hash: string;
  hash: string;
}

/**
 * What a request handler or hook may tell the HTTP audit hook about the request it is serving
 * (`request.auditContext`): who the actor is when it is not an admin (an authenticated agent), the
 * target when the path does not name it, extra details. The hook uses it only for what it records
 * itself (see audit-hooks.ts).
 */
export interface AuditRequestContext {
  actor?: AuditEventInput['actor'];
  target?: AuditEventInput['target'];
  namespace?: string;
  details?: AuditDetails;
}
