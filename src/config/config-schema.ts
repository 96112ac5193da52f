import { parseKeyMaterial } from '../crypto/master-key.js';
import { checkWebhookUrl } from '../crypto/webhook-key-provider.js';
import { parseOutboundAllow } from '../net/outbound-guard.js';
import { parseTrustedProxies } from '../policy/client-address.js';

/**
 * Every server setting: its flag, its environment variable, how it parses, and what it means.
 * The README's configuration reference is written from this table, and a test keeps them in step.
 * There is no default secret: settings marked `secret` have no default and never appear in output.
 */
export interface SettingSpec<T> {
  flag: string;
  env: string;
  description: string;
  default?: T;
  secret?: boolean;
  parse(raw: string): T;
}

const parsePort = (raw: string): number => {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 0 || port > 65_535)
    throw new Error('must be a port number from 0 to 65535');
  return port;
};

const parsePositiveInt =
  (min: number, max: number) =>
  (raw: string): number => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || value < min || value > max)
      throw new Error(`must be a whole number from ${min} to ${max}`);
    return value;
  };

const parseOneOf =
  <T extends string>(...allowed: T[]) =>
  (raw: string): T => {
    if (!(allowed as string[]).includes(raw)) throw new Error(`must be one of ${allowed.join(', ')}`);
    return raw as T;
  };

const parseSwitch = (raw: string): boolean => {
  if (['true', 'on', '1'].includes(raw)) return true;
  if (['false', 'off', '0'].includes(raw)) return false;
  throw new Error('must be true or false (or on/off)');
};

const parseNonEmpty = (raw: string): string => {
  if (raw.trim() === '') throw new Error('must not be empty');
  return raw;
};

const parseDatabaseUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('must be a URL such as postgres://user:password@host:5432/tokenvault');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new Error('must be a postgres:// URL (leave it unset to use the embedded SQLite store)');
  }
  return raw;
};

const parseWebhookUrl = (raw: string): string => {
  try {
    return checkWebhookUrl(raw);
  } catch (error) {
    throw new Error(`is not usable: ${(error as Error).message}`);
  }
};

/** Checked with the rest of the config, so a bad key is reported before anything touches the disk. */
const parseMasterKey = (raw: string): string => {
  try {
    parseKeyMaterial(raw, '');
  } catch (error) {
    throw new Error((error as Error).message.trim());
  }
  return raw;
};

const parseWebhookSecret = (raw: string): string => {
  if (raw.length < 32) throw new Error('must be at least 32 characters');
  return raw;
};

const parseEventsUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('must be an http(s) URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
  if (url.username || url.password) throw new Error('must not carry a user name or password');
  return url.toString();
};

/** Standard Webhooks secrets: `whsec_` then base64 of the key (24 to 64 bytes, as the spec says). */
const parseEventsSecret = (raw: string): string => {
  const match = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(raw);
  const bytes = match ? Buffer.from(match[1]!, 'base64').length : 0;
  if (bytes < 24 || bytes > 64)
    throw new Error('must be `whsec_` followed by 24 to 64 random bytes in base64');
  return raw;
};

export const settings = {
  host: {
    flag: '--host',
    env: 'TOKENVAULT_HOST',
    description: 'Address to listen on.',
    default: '127.0.0.1',
    parse: parseNonEmpty,
  },
  port: {
    flag: '--port',
    env: 'TOKENVAULT_PORT',
    description: 'Port to listen on.',
    default: 8200,
    parse: parsePort,
  },
  tlsCertFile: {
    flag: '--tls-cert-file',
    env: 'TOKENVAULT_TLS_CERT_FILE',
    description:
      'PEM certificate (chain) file: the vault serves HTTPS itself. Goes with TOKENVAULT_TLS_KEY_FILE; both or neither. Unset: plain HTTP (behind a TLS-terminating proxy).',
    parse: parseNonEmpty,
  },
  tlsKeyFile: {
    flag: '--tls-key-file',
    env: 'TOKENVAULT_TLS_KEY_FILE',
    description: 'PEM private key file of the TLS certificate. Goes with TOKENVAULT_TLS_CERT_FILE.',
    parse: parseNonEmpty,
  },
  dataDir: {
    flag: '--data-dir',
    env: 'TOKENVAULT_DATA_DIR',
    description: 'Directory for the SQLite store, the generated master key and the root admin token.',
    default: './.tokenvault',
    parse: parseNonEmpty,
  },
  databaseUrl: {
    flag: '--database-url',
    env: 'TOKENVAULT_DATABASE_URL',
    description: 'PostgreSQL URL. Unset: the embedded SQLite store in the data dir.',
    secret: true,
    parse: parseDatabaseUrl,
  },
  vaultMode: {
    flag: '--vault-mode',
    env: 'TOKENVAULT_VAULT_MODE',
    description:
      'Key mode for a new vault: `platform` (the vault holds the key) or `webhook` (your webhook does). An existing vault keeps the mode in its store; change it with `tokenvault mode set`.',
    default: 'platform' as 'platform' | 'webhook',
    parse: parseOneOf('platform', 'webhook'),
  },
  masterKey: {
    flag: '--master-key',
    env: 'TOKENVAULT_MASTER_KEY',
    description:
      'Platform-mode root key: 32 bytes as base64 or hex. Unset: generated into `<data-dir>/master.key` (mode 0600) on first start. Prefer the variable to the flag.',
    secret: true,
    parse: parseMasterKey,
  },
  kmsWebhookUrl: {
    flag: '--kms-webhook-url',
    env: 'TOKENVAULT_KMS_WEBHOOK_URL',
    description: 'Webhook-mode key service URL (see docs/webhook-kms.md).',
    parse: parseWebhookUrl,
  },
  kmsWebhookSecret: {
    flag: '--kms-webhook-secret',
    env: 'TOKENVAULT_KMS_WEBHOOK_SECRET',
    description:
      'Shared HMAC secret for the webhook (at least 32 characters). Prefer the variable to the flag.',
    secret: true,
    parse: parseWebhookSecret,
  },
  kmsWebhookTimeoutMs: {
    flag: '--kms-webhook-timeout-ms',
    env: 'TOKENVAULT_KMS_WEBHOOK_TIMEOUT_MS',
    description: 'Timeout for one webhook call, in milliseconds.',
    default: 5000,
    parse: parsePositiveInt(50, 60_000),
  },
  logLevel: {
    flag: '--log-level',
    env: 'TOKENVAULT_LOG_LEVEL',
    description: 'Log level.',
    default: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
    parse: parseOneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  logFormat: {
    flag: '--log-format',
    env: 'TOKENVAULT_LOG_FORMAT',
    description:
      'How log lines are written to standard output: `json` (one JSON object a line), `text` (one short human line), or `auto`: text on a terminal, JSON otherwise.',
    default: 'auto' as 'auto' | 'json' | 'text',
    parse: parseOneOf('auto', 'json', 'text'),
  },
  accessLog: {
    flag: '--access-log',
    env: 'TOKENVAULT_ACCESS_LOG',
    description:
      'Log two lines per request. Off: only 5xx answers and requests slower than 1 s are logged (every access is in the audit log anyway). On at `debug` and `trace`.',
    default: false,
    parse: parseSwitch,
  },
  bodyLimit: {
    flag: '--body-limit',
    env: 'TOKENVAULT_BODY_LIMIT',
    description: 'Largest request body accepted, in bytes.',
    default: 262_144,
    parse: parsePositiveInt(1024, 16_777_216),
  },
  authFailureLimit: {
    flag: '--auth-failure-limit',
    env: 'TOKENVAULT_AUTH_FAILURE_LIMIT',
    description:
      'Failed authentications allowed per minute for one presented token from one client address before 429; the address as a whole may fail ten times as often.',
    default: 10,
    parse: parsePositiveInt(1, 100_000),
  },
  audience: {
    flag: '--audience',
    env: 'TOKENVAULT_AUDIENCE',
    description:
      'The vault’s public URL: `aud` of agent JWT assertions, and the default audience of trusted issuers. Unset: `http://<host>:<port>`. See docs/agent-auth.md.',
    parse: (raw: string): string => {
      if (raw.length > 512 || /\s/.test(raw))
        throw new Error('must be at most 512 characters with no spaces');
      return raw;
    },
  },
  publicUrl: {
    flag: '--public-url',
    env: 'TOKENVAULT_PUBLIC_URL',
    description:
      'The base URL people’s browsers and OAuth providers reach the vault at: connect links and the OAuth redirect URL (`<public URL>/v1/oauth/callback`) are built from it. Unset: the audience, else `http://<host>:<port>`. See docs/oauth.md.',
    parse: (raw: string): string => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error('must be a URL such as https://vault.example.com');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('must be an http(s) URL');
      if (url.search || url.hash) throw new Error('must have no query or fragment');
      return raw.replace(/\/+$/, '');
    },
  },
  oauthAllowHttp: {
    flag: '--oauth-allow-http',
    env: 'TOKENVAULT_OAUTH_ALLOW_HTTP',
    description:
      'Let OAuth apps use http:// issuers and endpoints. For local test providers only: tokens and client secrets would cross the network in the clear.',
    default: false,
    parse: parseSwitch,
  },
  trustedProxies: {
    flag: '--trusted-proxies',
    env: 'TOKENVAULT_TRUSTED_PROXIES',
    description:
      'Proxies (comma-separated addresses or CIDRs) whose `X-Forwarded-For` the vault reads: the client address is then the first untrusted hop from the right. Unset: the socket peer is the client and the header is ignored.',
    parse: (raw: string): string[] => {
      const entries = raw
        .split(',')
        .map((entry) => entry.trim())
        .filter(Boolean);
      const { invalid } = parseTrustedProxies(entries);
      if (entries.length === 0) throw new Error('must name at least one address or CIDR');
      if (invalid.length > 0)
        throw new Error(`has entries that are no address or CIDR: ${invalid.join(', ')}`);
      return entries;
    },
  },
  geoipDatabase: {
    flag: '--geoip-database',
    env: 'TOKENVAULT_GEOIP_DATABASE',
    description:
      'An MMDB country database (MaxMind GeoLite2-Country, DB-IP, ip-location-db layouts) for geo rules, instead of the bundled public-domain one. Read once at start.',
    parse: parseNonEmpty,
  },
  outboundAllow: {
    flag: '--outbound-allow',
    env: 'TOKENVAULT_OUTBOUND_ALLOW',
    description:
      'Hosts, addresses and CIDRs (comma-separated) the vault may reach although they are not public: an issuer or key set on your network, `127.0.0.1` for a local one. Unset: private, loopback, link-local, CGNAT and unique-local addresses are refused after DNS resolution.',
    parse: (raw: string) => {
      const allow = parseOutboundAllow(raw);
      if (allow.hosts.length + allow.cidrs.length === 0)
        throw new Error('must name at least one host or CIDR');
      return allow;
    },
  },
  jwksHosts: {
    flag: '--jwks-hosts',
    env: 'TOKENVAULT_JWKS_HOSTS',
    description:
      'Hosts (comma-separated) a trusted issuer’s `jwks_uri` may name besides the issuer’s own origin, e.g. `www.googleapis.com` for Google. Unset: the key set must be on the issuer’s origin.',
    parse: (raw: string): string[] => {
      const { hosts, cidrs } = parseOutboundAllow(raw);
      if (cidrs.length > 0 || hosts.length === 0) throw new Error('must be host names, comma-separated');
      return hosts;
    },
  },
  keyJobBatchSize: {
    flag: '--key-job-batch-size',
    env: 'TOKENVAULT_KEY_JOB_BATCH_SIZE',
    description:
      'Data keys re-wrapped per transaction during rotation or a mode switch (smaller: gentler on the database).',
    default: 500,
    parse: parsePositiveInt(1, 10_000),
  },
  secretCacheMaxEntries: {
    flag: '--secret-cache-max-entries',
    env: 'TOKENVAULT_SECRET_CACHE_MAX_ENTRIES',
    description:
      'Decrypted platform-mode secrets kept in memory for agent retrievals (each dropped as soon as its credential changes, on every replica). `0`: none, every retrieval decrypts.',
    default: 10_000,
    parse: parsePositiveInt(0, 1_000_000),
  },
  secretCacheMaxAgeMs: {
    flag: '--secret-cache-max-age-ms',
    env: 'TOKENVAULT_SECRET_CACHE_MAX_AGE_MS',
    description:
      'How long a decrypted secret stays in memory after it was decrypted, in milliseconds; the next retrieval after that decrypts again.',
    default: 300_000,
    parse: parsePositiveInt(1000, 86_400_000),
  },
  auditCheckpointEvents: {
    flag: '--audit-checkpoint-events',
    env: 'TOKENVAULT_AUDIT_CHECKPOINT_EVENTS',
    description:
      'Write a signed checkpoint of the audit head after this many events (docs/audit.md, "Checkpoints"). `0`: not by count.',
    default: 1000,
    parse: parsePositiveInt(0, 100_000_000),
  },
  auditCheckpointSeconds: {
    flag: '--audit-checkpoint-seconds',
    env: 'TOKENVAULT_AUDIT_CHECKPOINT_SECONDS',
    description:
      'Write a signed checkpoint of the audit head when it moved and this many seconds passed since the last. `0`: not by time; both `0`: no checkpoints.',
    default: 60,
    parse: parsePositiveInt(0, 86_400),
  },
  auditCheckpointFile: {
    flag: '--audit-checkpoint-file',
    env: 'TOKENVAULT_AUDIT_CHECKPOINT_FILE',
    description:
      'Also append every checkpoint to this file as a JSON line (fsynced), for shipping outside the vault. Unset: the database only.',
    parse: parseNonEmpty,
  },
  approvalNtfyUrl: {
    flag: '--approval-ntfy-url',
    env: 'TOKENVAULT_APPROVAL_NTFY_URL',
    description:
      'An ntfy-style topic URL (`https://ntfy.sh/my-approvals`) that gets a plain POST for every approval request, with signed approve/deny links (docs/approvals.md). Unset: none.',
    parse: (raw: string): string => {
      const url = URL.canParse(raw) ? new URL(raw) : undefined;
      if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:'))
        throw new Error('must be an http(s) URL such as https://ntfy.sh/my-approvals');
      return raw;
    },
  },
  approvalNtfyToken: {
    flag: '--approval-ntfy-token',
    env: 'TOKENVAULT_APPROVAL_NTFY_TOKEN',
    description: 'Bearer token for the ntfy topic (an ntfy access token). Unset: none is sent.',
    secret: true,
    parse: parseNonEmpty,
  },
  approvalPushSubject: {
    flag: '--approval-push-subject',
    env: 'TOKENVAULT_APPROVAL_PUSH_SUBJECT',
    description:
      'The VAPID subject Web Push services may contact about the vault’s pushes: a `mailto:` or `https:` URL. Unset: `mailto:tokenvault@localhost`.',
    parse: (raw: string): string => {
      if (!/^(mailto:\S+@\S+|https:\/\/\S+)$/.test(raw)) throw new Error('must be a mailto: or https: URL');
      return raw;
    },
  },
  eventsWebhookUrl: {
    flag: '--events-webhook-url',
    env: 'TOKENVAULT_EVENTS_WEBHOOK_URL',
    description:
      'Where the vault POSTs its events (`credential.needs_reauth`, `approval.requested`, …), signed with the Standard Webhooks scheme; see docs/events.md. Unset: no events are sent or kept.',
    parse: parseEventsUrl,
  },
  eventsWebhookSecret: {
    flag: '--events-webhook-secret',
    env: 'TOKENVAULT_EVENTS_WEBHOOK_SECRET',
    description:
      'The Standard Webhooks signing secret, `whsec_` and 24 to 64 random bytes in base64 (`whsec_$(openssl rand -base64 32)`). Prefer the variable to the flag.',
    secret: true,
    parse: parseEventsSecret,
  },
  eventsMaxAgeSeconds: {
    flag: '--events-max-age-seconds',
    env: 'TOKENVAULT_EVENTS_MAX_AGE_SECONDS',
    description:
      'How long an event is retried before it is given up on (with an `event.undeliverable` audit event).',
    default: 86_400,
    parse: parsePositiveInt(60, 2_592_000),
  },
  eventsTimeoutMs: {
    flag: '--events-timeout-ms',
    env: 'TOKENVAULT_EVENTS_TIMEOUT_MS',
    description: 'Timeout for one delivery attempt, in milliseconds.',
    default: 10_000,
    parse: parsePositiveInt(100, 120_000),
  },
  eventsPollMs: {
    flag: '--events-poll-ms',
    env: 'TOKENVAULT_EVENTS_POLL_MS',
    description: 'How often each replica looks for events due for delivery, in milliseconds.',
    default: 1000,
    parse: parsePositiveInt(10, 60_000),
  },
  oauthRefreshMargin: {
    flag: '--oauth-refresh-margin',
    env: 'TOKENVAULT_OAUTH_REFRESH_MARGIN',
    description:
      'Refresh an OAuth access token this many seconds before it expires (less for tokens that live shorter than four times this).',
    default: 300,
    parse: parsePositiveInt(10, 86_400),
  },
  oauthRefreshJitter: {
    flag: '--oauth-refresh-jitter',
    env: 'TOKENVAULT_OAUTH_REFRESH_JITTER',
    description:
      'Refresh up to this many seconds earlier again, at random, so tokens issued together are not refreshed together.',
    default: 60,
    parse: parsePositiveInt(0, 86_400),
  },
  oauthIdleRefreshDays: {
    flag: '--oauth-idle-refresh-days',
    env: 'TOKENVAULT_OAUTH_IDLE_REFRESH_DAYS',
    description:
      'Refresh every OAuth credential with a refresh token at least this often, used or not, so no provider expires it as idle (the shortest idle expiry in the catalog is 90 days).',
    default: 7,
    parse: parsePositiveInt(1, 60),
  },
  oauthRefreshPollMs: {
    flag: '--oauth-refresh-poll-ms',
    env: 'TOKENVAULT_OAUTH_REFRESH_POLL_MS',
    description:
      'How often the refresh scheduler looks for tokens due, in milliseconds (one indexed read of the due ones).',
    default: 1000,
    parse: parsePositiveInt(50, 60_000),
  },
  shutdownTimeoutMs: {
    flag: '--shutdown-timeout-ms',
    env: 'TOKENVAULT_SHUTDOWN_TIMEOUT_MS',
    description: 'How long SIGTERM waits for requests in flight before closing anyway.',
    default: 10_000,
    parse: parsePositiveInt(0, 600_000),
  },
  proxyTimeoutMs: {
    flag: '--proxy-timeout-ms',
    env: 'TOKENVAULT_PROXY_TIMEOUT_MS',
    description:
      'How long the HTTP proxy waits for an upstream’s status and headers before answering 504 `upstream_timeout`.',
    default: 30_000,
    parse: parsePositiveInt(100, 600_000),
  },
  mcpSessionIdleSeconds: {
    flag: '--mcp-session-idle-seconds',
    env: 'TOKENVAULT_MCP_SESSION_IDLE_SECONDS',
    description:
      'How long an MCP proxy session may go unused before it is closed, its upstream connection with it (a stdio command is killed).',
    default: 1800,
    parse: parsePositiveInt(1, 86_400),
  },
} satisfies Record<string, SettingSpec<unknown>>;

/** The audience when none is configured: the URL the vault listens on (https when it serves TLS). */
export const defaultAudience = (
  config: Pick<Config, 'host' | 'port'> & Partial<Pick<Config, 'tlsCertFile'>>,
): string =>
  `${config.tlsCertFile ? 'https' : 'http'}://${config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host}:${config.port}`;

type Settings = typeof settings;
type Parsed<S> = S extends SettingSpec<infer T> ? T : never;

export type Config = Readonly<{
  [K in keyof Settings]: Settings[K] extends { default: unknown }
    ? Parsed<Settings[K]>
    : Parsed<Settings[K]> | undefined;
}>;

export type SettingName = keyof Settings;
