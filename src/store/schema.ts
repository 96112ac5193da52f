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
  counter_buckets: CounterBucketTable;
  counter_hits: CounterHitTable;
  event_outbox: EventOutboxTable;
  oauth_apps: OAuthAppTable;
  connect_sessions: ConnectSessionTable;
  mcp_proxies: McpProxyTable;
  mcp_proxy_keys: McpProxyKeyTable;
  mcp_proxy_tools: McpProxyToolTable;
  mcp_sessions: McpSessionTable;
  oauth_refresh_state: OAuthRefreshStateTable;
  approvals: ApprovalTable;
  approval_push_subscriptions: ApprovalPushSubscriptionTable;
  device_polls: DevicePollTable;
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
  /** Migration 0008: the OAuth app whose tokens these are (connect, refresh); null for others. */
  oauth_app_id: string | null;
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

/**
 * An OAuth client registered with a provider (migration 0008). `client_secret` is an envelope
 * ciphertext under the app's own data key (null for public clients); `settings` is JSON: catalog
 * parameters and, for `oidc`/`generic` apps, the endpoints. `agent_connect` = 1: agents may ask a
 * user to connect through it (`authorization_required`).
 */
export interface OAuthAppTable {
  id: string;
  namespace: string;
  name: string;
  provider: string;
  client_id: string;
  client_secret: string | null;
  data_key_id: string;
  issuer: string | null;
  scopes: string;
  settings: string;
  agent_connect: number;
  created_at: string;
  updated_at: string;
}

/**
 * A short-lived, single-use consent session (migration 0008). The link's token and the OAuth `state`
 * are stored as SHA-256 only; the PKCE verifier, the nonce and a device code are envelope ciphertexts
 * (JSON in `secrets`) under the app's data key. Sessions decide no access: no trigger.
 */
export interface ConnectSessionTable {
  id: string;
  token_hash: string;
  namespace: string;
  app_id: string;
  agent_id: string;
  subject: string;
  scopes: string;
  credential_name: string;
  grant_ttl_seconds: number | null;
  reveal: number;
  flow: string;
  status: string;
  state_hash: string | null;
  secrets: string | null;
  device: string | null;
  error_code: string | null;
  credential_id: string | null;
  created_by: string;
  created_at: string;
  updated_at: string;
  expires_at: string;
}

/**
 * A device-flow session still waiting for its person (migration 0014, src/oauth/device-poller.ts):
 * when the provider may be polled next and which process holds the poll. The device code itself is
 * not here: it stays sealed in the session's `secrets`. Bookkeeping only, no access trigger.
 */
export interface DevicePollTable {
  session_id: string;
  namespace: string;
  /** Seconds between polls: the provider's `interval`, 5 s longer after each `slow_down`. */
  interval_seconds: number;
  next_poll_at: string;
  polls: number;
  lease_owner: string | null;
  lease_expires_at: string | null;
  /** Grows with every lease taken: a holder whose lease was taken over writes nothing. */
  fence: number;
  updated_at: string;
}

/** An MCP proxy (migration 0013, src/mcp-proxy/): JSON columns are text; no secret is stored here. */
export interface McpProxyTable {
  id: string;
  namespace: string;
  name: string;
  description: string;
  transport: string;
  url: string | null;
  command: string | null;
  args: string;
  cwd: string | null;
  credential_name: string;
  per_user: number;
  injections: string;
  allow_tools: string;
  deny_tools: string;
  created_at: string;
  updated_at: string;
}

/** A `tv_proxy_…` key: only its hash is stored. */
export interface McpProxyKeyTable {
  id: string;
  namespace: string;
  proxy_id: string;
  agent_id: string;
  end_user: string | null;
  name: string;
  key_hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

/** A pinned tool definition (canonical JSON): `accepted` is served; a differing `observed` is withheld. */
export interface McpProxyToolTable {
  id: string;
  namespace: string;
  proxy_id: string;
  tool: string;
  accepted: string | null;
  observed: string | null;
  observed_at: string | null;
  accepted_at: string | null;
}

/** An agent's MCP session (older revisions), by the hash of its `Mcp-Session-Id`. */
export interface McpSessionTable {
  id_hash: string;
  namespace: string;
  proxy_id: string;
  key_id: string;
  state: string;
  created_at: string;
  last_seen_at: string;
}

/**
 * Migration 0009: an OAuth credential's refresh schedule and lease (src/oauth/refresh/). Not watched
 * by any access rule. `status`: `active`, `failing` (retryable failures, backing off),
 * `needs_reauth`, `unmanaged` (no OAuth app links it, so the vault cannot refresh it).
 */
export interface OAuthRefreshStateTable {
  credential_id: string;
  namespace: string;
  status: string;
  /** The secret version the expiry below describes. */
  secret_version: number;
  access_expires_at: string | null;
  expiry_assumed: number;
  next_refresh_at: string | null;
  last_refresh_at: string | null;
  failures: number;
  /** A code only (`invalid_grant`, `http_503`), never a provider's text. */
  last_error: string | null;
  lease_owner: string | null;
  lease_expires_at: string | null;
  fence: number;
  updated_at: string;
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
