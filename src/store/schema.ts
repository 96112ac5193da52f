import type { Generated } from 'kysely';

/**
 * Table shapes shared by both dialects. Timestamps are ISO-8601 UTC strings (they sort as text);
 * JSON columns are text. Nothing here holds a secret in the clear: `ciphertexts` and `wrapped_key`
 * are envelope-encrypted.
 */
export interface Database {
  vault_state: VaultStateTable;
  kek_versions: KekVersionTable;
  data_keys: DataKeyTable;
  credentials: CredentialTable;
  credential_versions: CredentialVersionTable;
  admin_tokens: AdminTokenTable;
  agents: AgentTable;
  agent_keys: AgentKeyTable;
  jwt_replay: JwtReplayTable;
  trusted_issuers: TrustedIssuerTable;
  workload_bindings: WorkloadBindingTable;
  grants: GrantTable;
  audit_events: AuditEventTable;
  audit_head: AuditHeadTable;
  audit_checkpoints: AuditCheckpointTable;
  access_generation: AccessGenerationTable;
  access_changes: AccessChangeTable;
  policies: PolicyTable;
  policy_versions: PolicyVersionTable;
  policy_attachments: PolicyAttachmentTable;
  approvals: ApprovalTable;
  approval_push_subscriptions: ApprovalPushSubscriptionTable;
  counter_buckets: CounterBucketTable;
  counter_hits: CounterHitTable;
  event_outbox: EventOutboxTable;
}

/** One row (id = 1): moved by triggers on every change to the tables access depends on (0003, 0004). */
export interface AccessGenerationTable {
  id: number;
  value: number;
}

/** Per scope (`n:<namespace>`, `g:<credential>`, `c:<credential>`): the generation it last changed at (0004). */
export interface AccessChangeTable {
  scope: string;
  generation: number;
}

/** Small key/value rows: `mode`, `key_job`. Values are JSON. */
export interface VaultStateTable {
  key: string;
  value: string;
  updated_at: string;
}

/** Platform-mode key-encryption keys, each wrapped by the root (master) key. */
export interface KekVersionTable {
  version: number;
  wrapped_key: string;
  created_at: string;
}

/** One data key per credential, wrapped by a KEK; `kek_ref` names it (`platform:3`, `webhook:kms-1`). */
export interface DataKeyTable {
  id: string;
  namespace: string;
  credential_id: string;
  wrapped_key: string;
  kek_ref: string;
  created_at: string;
  updated_at: string;
}

export interface CredentialTable {
  id: string;
  namespace: string;
  name: string;
  type: string;
  description: string;
  scopes: string;
  allowed_hosts: string;
  injection: string;
  status: string;
  expires_at: string | null;
  subject: string | null;
  data_key_id: string;
  current_version: number;
  created_at: string;
  updated_at: string;
  /** Migration 0007: the API base URL the HTTP proxy forwards to; null when not set. */
  base_url: string | null;
}

/** Secret versions: `ciphertexts` is a JSON object field → envelope ciphertext. */
export interface CredentialVersionTable {
  credential_id: string;
  version: number;
  ciphertexts: string;
  created_at: string;
}

export interface AdminTokenTable {
  id: string;
  name: string;
  token_hash: string;
  is_root: Generated<number>;
  /** `admin`, `operator`, `approver` or `auditor` (src/admin/admin-roles.ts); migration 0005. */
  role: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** A machine identity. `jwks` is a registered public JWK set (JSON); `jwks_url` a remote one. */
export interface AgentTable {
  id: string;
  namespace: string;
  name: string;
  description: string;
  status: string;
  jwks: string | null;
  jwks_url: string | null;
  created_at: string;
  updated_at: string;
}

/** Agent API keys (`tv_agent_…`), stored as SHA-256; several per agent so they can be rotated. */
export interface AgentKeyTable {
  id: string;
  namespace: string;
  agent_id: string;
  name: string;
  key_hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** `jti`s of accepted agent JWT assertions, kept until they expire so none is accepted twice. */
export interface JwtReplayTable {
  jti_hash: string;
  expires_at: string;
}

/** An OIDC issuer whose workload identity tokens the operator trusts (discovery + JWKS). */
export interface TrustedIssuerTable {
  id: string;
  namespace: string;
  name: string;
  issuer: string;
  audience: string;
  created_at: string;
}

/** Maps tokens of a trusted issuer with matching claims (JSON object of exact values) to an agent. */
export interface WorkloadBindingTable {
  id: string;
  namespace: string;
  issuer_id: string;
  agent_id: string;
  claims: string;
  created_at: string;
}

/** Agent × credential: scopes (JSON), reveal flag, expiry (null: until revoked). */
export interface GrantTable {
  id: string;
  namespace: string;
  agent_id: string;
  credential_id: string;
  scopes: string;
  reveal: number;
  expires_at: string | null;
  created_at: string;
  created_by: string;
  revoked_at: string | null;
  revoked_reason: string | null;
}

/** Append-only, hash-chained: `hash` covers the event and `prev_hash`. */
export interface AuditEventTable {
  seq: number;
  id: string;
  time: string;
  namespace: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  decision: string;
  reason: string | null;
  client_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1): the newest event's seq and hash. Appenders lock it, so the chain stays linear. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** A signed checkpoint of the audit head (migration 0006, src/audit/audit-checkpoints.ts). */
export interface AuditCheckpointTable {
  seq: number;
  hash: string;
  time: string;
  key_id: string;
  signature: string;
}

/** A named policy (migration 0010, src/policy/policy-repo.ts); its text lives in its versions. */
export interface PolicyTable {
  id: string;
  namespace: string;
  name: string;
  /** The version requests are decided by: the newest. */
  current_version: number;
  created_at: string;
  updated_at: string;
}

/** Every version of a policy, never changed once written: `document` as given, `policy` normalised (JSON). */
export interface PolicyVersionTable {
  id: string;
  namespace: string;
  policy_id: string;
  version: number;
  document: string;
  policy: string;
  created_at: string;
  created_by: string;
}

/** A policy attached to an agent, agent key, grant, credential, MCP proxy or proxy key (by id). */
export interface PolicyAttachmentTable {
  id: string;
  namespace: string;
  policy_id: string;
  target_kind: string;
  target_id: string;
  created_at: string;
  created_by: string;
}

/**
 * A human approval an `approval` rule asked for (migration 0012, src/approvals/). `state`: pending,
 * approved, denied, expired. `covers_seconds` null: one request (`used_at` marks it spent); else a
 * time box that ends at `covers_until`. `approvers` is a JSON array of admin token names.
 */
export interface ApprovalTable {
  id: string;
  namespace: string;
  agent_id: string;
  agent_name: string;
  credential_id: string;
  credential_name: string;
  end_user: string | null;
  policy_id: string;
  policy_name: string;
  rule_index: number;
  approvers: string;
  covers_seconds: number | null;
  state: string;
  requested_at: string;
  expires_at: string;
  request_id: string | null;
  client_ip: string | null;
  decided_at: string | null;
  decided_by: string | null;
  decided_via: string | null;
  reason: string | null;
  covers_until: string | null;
  used_at: string | null;
}

/** A browser subscribed to Web Push for an approver (migration 0012). */
export interface ApprovalPushSubscriptionTable {
  id: string;
  approver: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  created_at: string;
}

/** Migration 0011: one counter per key and window bucket (src/policy/store-counters.ts). */
export interface CounterBucketTable {
  key: string;
  /** The window's bucket id (`windowOf`), `total`, or `sliding` (the lock row of a sliding window). */
  bucket: string;
  count: number;
  /** The limit and window (JSON) last counted against, for `policy usage`. */
  max_count: number;
  window_spec: string;
  /** When the bucket is over and may be pruned; null for `total`. */
  expires_at: string | null;
}

/** Migration 0011: the instants a sliding window counted. */
export interface CounterHitTable {
  key: string;
  at_ms: number | string;
  id: string;
}

/** Migration 0011: events waiting for delivery to the operator's webhook (src/events/event-outbox.ts). */
export interface EventOutboxTable {
  id: string;
  namespace: string;
  type: string;
  /** The JSON body, fixed when published: every attempt sends (and signs) the same bytes. */
  payload: string;
  created_at: string;
  attempts: number;
  next_attempt_at: string;
  /** Which deliverer holds the row, until when: a replica that dies mid-delivery frees it by expiry. */
  lease_owner: string | null;
  lease_until: string | null;
  /** The last failure, as a status code or an error code: never a response body. */
  last_error: string | null;
}
