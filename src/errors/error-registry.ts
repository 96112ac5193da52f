/**
 * The one registry of error codes. Every error a client can see has a stable snake_case code here, an
 * HTTP status and a default message a person can act on. `docs/errors.md` lists the same codes; a test
 * keeps the two in step.
 */
export const errorRegistry = {
  // request shape
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_request: {
    status: 400,
    message: 'The request is missing a field or has a field of the wrong type.',
  },
  unsupported_media_type: { status: 415, message: 'Send the request body as application/json.' },
  body_too_large: { status: 413, message: 'The request body is larger than the server accepts.' },
  not_found: { status: 404, message: 'No such endpoint.' },
  malformed_http: {
    status: 400,
    message:
      'The request is not well-formed HTTP (for example, a header or the path holds a control character); nothing was done.',
  },
  headers_too_large: {
    status: 431,
    message: 'The request headers are larger than the server accepts; send fewer or shorter headers.',
  },

  // admin authentication
  unauthenticated: { status: 401, message: 'Send an admin token as `Authorization: Bearer tv_admin_…`.' },
  admin_token_invalid: { status: 401, message: 'The admin token is not valid.' },
  admin_token_expired: { status: 401, message: 'The admin token has expired; create a new one.' },
  admin_token_revoked: { status: 401, message: 'The admin token has been revoked; create a new one.' },
  admin_token_not_found: { status: 404, message: 'No admin token has that id.' },
  forbidden_role: {
    status: 403,
    message:
      "This admin token's role does not allow this request; the message names the role it needs (see `tokenvault admin token list`).",
  },
  admin_token_outlives_creator: {
    status: 403,
    message: 'A token cannot create one that lives longer than itself; give a ttl within its remaining life.',
  },
  root_token_protected: {
    status: 403,
    message:
      'The root admin token can be revoked only by itself, or by `tokenvault admin reset-root` on the server.',
  },
  too_many_auth_failures: {
    status: 429,
    message: 'Too many failed authentication attempts from this address; wait and try again.',
  },

  // credentials
  invalid_name: {
    status: 400,
    message:
      'A name is 1 to 64 characters: lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit.',
  },
  unknown_credential_type: {
    status: 400,
    message: 'The credential type must be one of api_key, bearer, basic, oauth2, custom.',
  },
  invalid_secret: { status: 400, message: 'The secret does not have the fields its credential type needs.' },
  invalid_injection: { status: 400, message: 'The injection settings are not valid.' },
  invalid_base_url: {
    status: 400,
    message:
      'The base URL is not usable: give an https URL (http only for a host in allowed_hosts) with no user name, password, query or fragment.',
  },
  invalid_namespace: {
    status: 400,
    message: 'A namespace is 1 to 64 characters: lowercase letters, digits, `-` and `_`.',
  },
  credential_exists: {
    status: 409,
    message: 'A credential with that name already exists in this namespace.',
  },
  credential_not_found: { status: 404, message: 'No credential has that name in this namespace.' },
  credential_version_not_found: { status: 404, message: 'The credential has no such version.' },

  // keys and encryption
  key_provider_unavailable: {
    status: 503,
    message: 'The key provider cannot be reached, so no secret can be read or written. Nothing was changed.',
  },
  key_provider_not_configured: {
    status: 400,
    message: 'That vault mode is not configured on this server; set its options and restart.',
  },
  master_key_mismatch: {
    status: 500,
    message:
      'The master key does not open this vault’s keyring; start with the key the vault was created with.',
  },
  decryption_failed: {
    status: 500,
    message:
      'A stored ciphertext failed its integrity check: it was altered, or moved from another row. The secret was not returned.',
  },
  rewrap_in_progress: {
    status: 409,
    message: 'A key re-wrap is already running; watch it with `tokenvault keys status --watch`.',
  },
  mode_unchanged: { status: 409, message: 'The vault is already in that mode.' },
  rotation_requires_platform_mode: {
    status: 409,
    message: 'Key rotation is for platform mode; in webhook mode the webhook owns and rotates the key.',
  },

  // agents and their authentication
  agent_unauthenticated: {
    status: 401,
    message:
      'Send an agent credential: `Authorization: Bearer tv_agent_…`, a signed JWT assertion, or a workload identity token.',
  },
  agent_key_invalid: { status: 401, message: 'The agent key is not valid.' },
  agent_key_expired: {
    status: 401,
    message: 'The agent key has expired; create a new one with `tokenvault agent key create`.',
  },
  agent_key_revoked: {
    status: 401,
    message: 'The agent key has been revoked; create a new one with `tokenvault agent key create`.',
  },
  agent_disabled: {
    status: 403,
    message: 'The agent is disabled; an admin can enable it with `tokenvault agent enable`.',
  },
  agent_mismatch: {
    status: 403,
    message: 'The agent in the path is not the agent that authenticated; use your own agent id or name.',
  },
  agent_not_found: { status: 404, message: 'No agent has that id or name in this namespace.' },
  agent_exists: { status: 409, message: 'An agent with that name already exists in this namespace.' },
  agent_key_not_found: { status: 404, message: 'The agent has no key with that id.' },
  jwt_invalid: {
    status: 401,
    message: 'The JWT assertion is malformed or its signature does not match a key registered for the agent.',
  },
  jwt_audience_invalid: { status: 401, message: 'The JWT audience (`aud`) is not this vault.' },
  jwt_expired: { status: 401, message: 'The JWT has expired (`exp`); sign a fresh one.' },
  jwt_lifetime_too_long: {
    status: 401,
    message: 'The JWT expires more than 5 minutes ahead; sign one with a shorter `exp`.',
  },
  jwt_replayed: {
    status: 401,
    message: 'This JWT (`jti`) was already used; sign a fresh one for each request.',
  },
  issuer_untrusted: { status: 401, message: 'The token comes from an issuer this vault does not trust.' },
  workload_not_bound: {
    status: 401,
    message:
      'The workload token is valid, but no agent is bound to its claims; bind one with `tokenvault agent bind`.',
  },
  issuer_not_found: { status: 404, message: 'No trusted issuer has that name in this namespace.' },
  issuer_exists: {
    status: 409,
    message: 'A trusted issuer with that name already exists in this namespace.',
  },
  issuer_unreachable: {
    status: 502,
    message: 'The issuer’s discovery document or keys could not be fetched.',
  },
  binding_not_found: { status: 404, message: 'The agent has no workload binding with that id.' },
  binding_exists: {
    status: 409,
    message:
      'Tokens of that issuer with those claims are already bound to an agent; a token maps to one agent.',
  },

  // grants and retrieval
  credential_not_granted: {
    status: 403,
    message: 'No live grant gives this agent that credential; ask an admin for `tokenvault grant create`.',
  },
  grant_expired: {
    status: 403,
    message: 'The grant for this credential has expired; ask an admin for a new grant.',
  },
  grant_revoked: { status: 403, message: 'The grant for this credential was revoked.' },
  scope_not_granted: { status: 403, message: 'The grant does not include the requested scope(s).' },
  reveal_not_granted: {
    status: 403,
    message:
      'This grant is proxy-only: the raw secret is not returned. Call the upstream API through the vault proxy at /v1/proxy/{service}/… instead.',
  },
  credential_needs_reauth: {
    status: 409,
    message:
      'The credential needs a human to re-authorize it (its provider refused the refresh); ask an admin to reconnect it (`tokenvault connect PROVIDER --agent A --user U`).',
  },
  credential_refresh_failed: {
    status: 503,
    message:
      "The credential's access token has expired and its provider did not renew it yet (timeout, 5xx or 429); the vault retries with backoff: try again after Retry-After.",
  },
  credential_not_refreshable: {
    status: 409,
    message:
      'The credential cannot be refreshed: it is not an OAuth credential, no OAuth app links it, or it has no refresh token.',
  },
  scope_narrowing_unsupported: {
    status: 409,
    message:
      "The credential's provider cannot issue a token with fewer scopes than were granted; retrieve it without `scope`, or connect a credential with only those scopes.",
  },
  credential_revoked: { status: 403, message: 'The credential has been revoked by an admin.' },
  credential_expired: {
    status: 403,
    message: 'The credential has expired; an admin must store a new secret.',
  },
  grant_not_found: { status: 404, message: 'No grant has that id in this namespace.' },
  invalid_scope: { status: 400, message: 'A grant’s scopes must be a subset of the credential’s scopes.' },
  invalid_ttl: { status: 400, message: 'A grant lasts from 1 hour to 30 days, or until revoked.' },
  invalid_import: { status: 400, message: 'The grant import document is not valid.' },
  revoke_incomplete: {
    status: 503,
    message:
      'The bulk revoke stopped part way: what the message counts was revoked and stays revoked. Run the same revoke again to finish it.',
  },
  import_incomplete: {
    status: 503,
    message:
      'The grant import stopped part way: the message says how many grants were imported and which were not. Run the same import again to finish it; grants already in place are skipped.',
  },

  // HTTP proxy (docs/proxy.md)
  proxy_not_configured: {
    status: 409,
    message: 'This credential has no base URL, so the proxy has nowhere to send it; ask an admin to set one.',
  },
  proxy_host_not_allowed: {
    status: 403,
    message:
      'The upstream host is not among the credential’s allowed hosts, so the credential is not sent there; ask an admin to list it.',
  },
  proxy_destination_refused: {
    status: 403,
    message:
      'The upstream resolves to a private, loopback or link-local address that the credential’s allowed hosts do not name; nothing was sent.',
  },
  proxy_path_refused: {
    status: 400,
    message:
      'The path could leave the credential’s base URL (`..`, `.`, an encoded slash or backslash, or a full URL); send a plain path below it.',
  },
  proxy_header_refused: {
    status: 400,
    message: 'A request header is not accepted by the proxy (more than one Host header); nothing was sent.',
  },
  proxy_injection_unsupported: {
    status: 409,
    message:
      'This credential is injected as an environment variable, which an HTTP call cannot carry; ask an admin for a header or query injection.',
  },
  upstream_unreachable: {
    status: 502,
    message: 'The upstream API could not be reached (connection refused, reset or DNS failure).',
  },
  upstream_timeout: {
    status: 504,
    message: 'The upstream API did not answer in time.',
  },

  // the vault's MCP server (docs/mcp.md)
  mcp_origin_refused: {
    status: 403,
    message:
      'The request’s Origin is neither the vault’s public URL nor a loopback address (DNS rebinding protection); MCP clients send no Origin.',
  },
  // MCP proxies (docs/mcp-proxy.md)
  invalid_mcp_proxy: {
    status: 400,
    message:
      "The MCP proxy's configuration is not valid: give either an upstream URL or a stdio command, and the message names what to fix.",
  },
  mcp_proxy_not_found: {
    status: 404,
    message: 'No MCP proxy has that name in this namespace (see `tokenvault proxy list`).',
  },
  mcp_proxy_exists: {
    status: 409,
    message: 'An MCP proxy with that name already exists in this namespace; pick another name or update it.',
  },
  proxy_key_not_found: {
    status: 404,
    message: 'The MCP proxy has no key with that id (see `tokenvault proxy key list`).',
  },
  proxy_key_required: {
    status: 401,
    message: 'Send a proxy key as `Authorization: Bearer tv_proxy_…` (see `tokenvault proxy config`).',
  },
  proxy_key_invalid: {
    status: 401,
    message: 'The proxy key is not valid for this MCP proxy.',
  },
  proxy_key_expired: {
    status: 401,
    message: 'The proxy key has expired; ask an admin for a new one (`tokenvault proxy key create`).',
  },
  proxy_key_revoked: {
    status: 401,
    message: 'The proxy key has been revoked; ask an admin for a new one (`tokenvault proxy key create`).',
  },
  mcp_tool_denied: {
    status: 403,
    message: "The MCP proxy's tool lists do not let agents call this tool.",
  },
  mcp_tool_withheld: {
    status: 403,
    message:
      "This tool's definition changed upstream (or is new) and is withheld until an admin accepts it (`tokenvault proxy tools accept`).",
  },
  mcp_session_not_found: {
    status: 404,
    message: 'The MCP session is unknown or has ended; initialize a new session.',
  },
  mcp_upstream_unavailable: {
    status: 502,
    message: 'The upstream MCP server could not be reached or did not answer; try again.',
  },
  mcp_upstream_exited: {
    status: 502,
    message:
      'The upstream MCP server (a stdio command) exited before it answered; the session goes on, and its next request starts the command again.',
  },
  mcp_upstream_unauthorized: {
    status: 502,
    message:
      'The upstream MCP server refused the credential the vault injected, also after refreshing it once; an admin may need to connect it again.',
  },
  origin_refused: {
    status: 403,
    message:
      'The request came from a web page whose Origin the vault does not accept (DNS rebinding protection).',
  },
  mcp_header_mismatch: {
    status: 400,
    message: 'The Mcp-Method or Mcp-Name header does not match the request body; send matching values.',
  },
  mcp_request_cancelled: {
    status: 499,
    message: 'The agent cancelled the request (closed its stream, or sent notifications/cancelled).',
  },
  mcp_request_state_invalid: {
    status: 400,
    message:
      'The requestState of this retry is unknown, expired, already used, or from another request; send the original request again without it.',
  },
  mcp_sse_session_elsewhere: {
    status: 421,
    message:
      'The stream of this HTTP+SSE session is open on another vault replica: route `/mcp/{proxy}/sse` and `/mcp/{proxy}/messages` with sticky sessions, or use Streamable HTTP.',
  },

  // policies
  invalid_policy: {
    status: 400,
    message: 'The policy document is not valid; every problem is listed by its path.',
  },
  policy_denied: {
    status: 403,
    message: 'A policy rule refused this request; the message names the policy and the rule.',
  },
  rate_limited: {
    status: 429,
    message: 'A policy’s rate limit is reached; wait until the window resets (see Retry-After).',
  },
  usage_cap_exhausted: {
    status: 429,
    message: 'A policy’s usage cap is used up; wait for the next day or month, or ask an admin to reset it.',
  },
  policy_not_found: { status: 404, message: 'No policy has that name in this namespace.' },
  policy_exists: {
    status: 409,
    message: 'A policy with that name already exists in this namespace; change it with `policy update`.',
  },
  policy_in_use: {
    status: 409,
    message:
      'The policy is still attached; detach it first, or remove it with `--force` to detach it everywhere at once.',
  },

  // OAuth apps and connect (docs/oauth.md)
  oauth_provider_unknown: {
    status: 400,
    message:
      'No provider has that name in the catalog; `tokenvault oauth providers` lists them (plus oidc and generic).',
  },
  oauth_app_exists: {
    status: 409,
    message:
      'An OAuth app with that name already exists in this namespace; pick another `--name` or remove it first.',
  },
  oauth_app_not_found: {
    status: 404,
    message: 'No OAuth app has that name in this namespace; `tokenvault oauth app list` shows them.',
  },
  oauth_app_in_use: {
    status: 409,
    message:
      'Credentials hold tokens of this OAuth app (their refresh needs it); remove those credentials first.',
  },
  oauth_discovery_failed: {
    status: 502,
    message:
      'The issuer’s OpenID Connect discovery document could not be fetched or is not valid; check the issuer URL (and TOKENVAULT_OUTBOUND_ALLOW for an issuer on your network).',
  },
  mcp_auth_metadata_missing: {
    status: 502,
    message:
      'The MCP server did not answer an unauthenticated request with 401 and usable protected resource metadata (RFC 9728); it may not use OAuth, or its metadata is wrong.',
  },
  mcp_auth_insecure_issuer: {
    status: 502,
    message:
      'The MCP server’s metadata names an authorization server that is not https; the vault refuses it (TOKENVAULT_OAUTH_ALLOW_HTTP is for local tests only).',
  },
  mcp_client_registration_failed: {
    status: 502,
    message:
      'No way to register the vault at the MCP server’s authorization server (no dynamic client registration; metadata documents need an https public URL), or it refused; add one by hand with `--resource`.',
  },
  connect_session_not_found: {
    status: 404,
    message: 'This connect link is not known to the vault; ask for a new one.',
  },
  connect_session_expired: {
    status: 410,
    message: 'This connect link has expired; ask for a new one.',
  },
  connect_session_used: {
    status: 409,
    message: 'This connect link has already been used; ask for a new one if you need to connect again.',
  },
  connect_state_invalid: {
    status: 400,
    message:
      'The provider’s answer does not belong to a connect session this vault started (unknown, replayed or foreign state); start again from a new link.',
  },
  connect_issuer_mismatch: {
    status: 400,
    message:
      'The provider’s answer names another issuer than the app’s (RFC 9207); nothing was stored. Start again from a new link.',
  },
  connect_denied: {
    status: 403,
    message: 'The person declined the consent at the provider; nothing was stored.',
  },
  connect_provider_error: {
    status: 502,
    message:
      'The provider refused or failed the authorization or the token exchange; nothing was stored. The message says what it answered.',
  },
  connect_device_unsupported: {
    status: 400,
    message:
      'The provider has no device authorization endpoint; use the browser flow (`tokenvault connect` without `--device`).',
  },
  authorization_required: {
    status: 403,
    message:
      'The end user has not connected this provider yet: show them `connect_url` (for the device flow, `user_code` to enter at `verification_uri`); once they finish, the same request returns the token.',
  },
  connect_flow_not_allowed: {
    status: 403,
    message:
      'The operator does not let agents start this consent flow for this app (`?flow=`); ask without `flow`, or ask the operator to allow it (`oauth app add … --agent-connect browser,device`).',
  },
  end_user_required: {
    status: 400,
    message:
      'Several users hold a credential of this name: say which one with `?user=` (or the proxy key’s user).',
  },
  // approvals (docs/approvals.md)
  approval_pending: {
    status: 202,
    message:
      'A person must approve this request; it is parked. Wait on the `poll_url` in the answer (or after Retry-After), then ask again.',
  },
  approval_denied: {
    status: 403,
    message: 'An approver denied this request; the message says who and why. A new request asks again.',
  },
  approval_expired: {
    status: 403,
    message: 'Nobody decided the approval before it expired; a new request asks again.',
  },
  approval_used: {
    status: 409,
    message: 'That one-request approval was already used by another request; a new request asks again.',
  },
  approval_not_found: { status: 404, message: 'No approval has that id in this namespace.' },
  approval_already_decided: {
    status: 409,
    message: 'The approval was already decided (or has expired); a decision cannot be changed.',
  },
  approval_self_decision: {
    status: 403,
    message:
      'An approver cannot decide a request made with their own identity (the agent or end user of the same name); another approver must.',
  },
  approval_not_approver: {
    status: 403,
    message: 'This admin token’s name is not among the approvers the policy rule lists.',
  },
  approval_link_invalid: {
    status: 403,
    message: 'The approval link is not valid, has expired, or was made for another approval.',
  },

  // audit
  audit_unavailable: {
    status: 503,
    message:
      'The audit log could not be written, so the request was refused (the vault fails closed). Nothing was changed.',
  },

  // operations
  store_busy: {
    status: 503,
    message:
      'The database is busy: another request or replica held a lock longer than this server waits. Nothing was changed; try again in a moment, and if it persists look for a stuck replica or a long admin job.',
  },
  internal_error: {
    status: 500,
    message: 'Something went wrong on the server; the request id is in the log.',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export const errorCodes = Object.keys(errorRegistry) as ErrorCode[];
