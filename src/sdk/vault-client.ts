import type { CredentialToken } from '../http/schemas/response-types.js';
import { isVaultClientError, VaultClientError, vaultRefusal } from './client-error.js';
import { createProxyFetch, type VaultFetchInit } from './proxy-fetch.js';

export {
  type AuthorizationRequired,
  isVaultClientError,
  VaultClientError,
  type VaultClientErrorCode,
} from './client-error.js';
export type { VaultFetchInit } from './proxy-fetch.js';

/**
 * The agent-side client: `await vault.getCredential('slack', { scope: 'read' })`. It caches each
 * answer until shortly before it expires, shares one request among concurrent callers, retries network
 * failures and 5xx answers with exponential backoff and jitter, never caches or retries a refusal, and
 * throws `VaultClientError` carrying the vault's code. Only global `fetch`; no other dependency.
 */

/**
 * The vault's answer in the wire's own words (the seed contract's snake_case), so that code written
 * against the REST answer and code written against the SDK read the same: `const { access_token } =
 * await vault.getCredential('slack')`.
 */
export interface VaultCredential {
  access_token: string;
  /** `Bearer`, `Basic`, the OAuth token type, `api_key` or `custom`. */
  token_type: string;
  /** When the grant or the credential ends (ISO-8601); null when neither does. */
  expires_at: string | null;
  /** The scopes granted, narrowed to those asked for. */
  scopes: string[];
  /** Every field, for a custom credential with several. */
  fields?: Record<string, string>;
  /** @deprecated Use `access_token` (kept, not enumerable, for code written against 0.1). */
  readonly accessToken: string;
  /** @deprecated Use `token_type`. */
  readonly tokenType: string;
  /** @deprecated Use `expires_at` (this one is a `Date`). */
  readonly expiresAt: Date | null;
}

export interface GetCredentialOptions {
  /** Narrow to these scopes (a list, or one string `a,b`). Must be within the grant. */
  scope?: string | readonly string[];
  /** Skip the cache (still shares a request already in flight). */
  forceRefresh?: boolean;
  /** The end user whose connection to use (per-user OAuth credentials: `?user=`). */
  user?: string;
  /**
   * When that user has not connected yet, which consent flow the vault starts: `browser` (a link) or
   * `device` (a code to enter at the provider); absent, the app's preferred one. The refusal is a
   * `VaultClientError` with code `authorization_required` and `authorization` saying what to show.
   */
  flow?: 'browser' | 'device';
}

export interface VaultClientOptions {
  /** The vault's base URL, e.g. `http://127.0.0.1:8200`. */
  url: string;
  /** This agent's id or name (`agent-42`). */
  agentId: string;
  /** The agent's key (`tv_agent_…`). Give this or `getToken`. */
  token?: string;
  /** Called for every request: a fresh JWT assertion, or a rotated key. Give this or `token`. */
  getToken?: () => string | Promise<string>;
  fetch?: typeof fetch;
  clock?: { now(): Date };
  /** Fetch again this long before `expires_at` (default 30). */
  refreshSkewSeconds?: number;
  /** How long to keep an answer with no `expires_at` (default 60). */
  defaultTtlSeconds?: number;
  /** Retries after the first attempt, for network errors and 5xx only (default 3). */
  retries?: number;
  /** Backoff: `baseMs · 2^attempt`, at most `maxMs`, with half of it random (defaults 100 and 2000). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Per attempt (default 10000); for `fetch`, until the answer's status and headers. */
  timeoutMs?: number;
  /** `fetch` waits for an upstream's `Retry-After` up to this long before retrying (default 30). */
  maxRetryAfterSeconds?: number;
  /** For tests: how to wait, and the jitter's randomness. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface VaultClient {
  getCredential(service: string, options?: GetCredentialOptions): Promise<VaultCredential>;
  /**
   * Calls the credential's API through the vault's HTTP proxy, the credential injected by the vault:
   * `vault.fetch('github', '/repos/o/r/issues', { method: 'POST', body })`. The upstream's answer
   * comes back as a `Response` (any status; its body streams); a refusal by the vault throws
   * `VaultClientError`. Retries only idempotent calls (src/sdk/proxy-fetch.ts).
   */
  fetch(service: string, path: string, init?: VaultFetchInit): Promise<Response>;
  /** Forgets cached answers: one service's, or all. */
  invalidate(service?: string): void;
}

interface CacheEntry {
  value: VaultCredential;
  freshUntil: number;
}

const normalizeScopes = (scope: GetCredentialOptions['scope']): string[] => {
  if (scope === undefined) return [];
  const values = typeof scope === 'string' ? [scope] : scope;
  return [...new Set(values.flatMap((v) => v.split(/[\s,]+/)).filter((s) => s.length > 0))].sort();
};

const nonNegative = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new VaultClientError('invalid_options', `${name} must be a number of at least 0.`);
  }
  return value;
};

/**
 * A body as it arrives: the API's field names (from the route schemas), every value still to be
 * checked, since nothing guarantees what came over the wire.
 */
type Unchecked<T> = { [K in keyof T]?: unknown };

const parseToken = (body: unknown): VaultCredential | undefined => {
  const b = body as Unchecked<CredentialToken> | null;
  if (typeof b !== 'object' || b === null) return undefined;
  const { access_token, token_type, expires_at, scopes, fields } = b;
  if (typeof access_token !== 'string' || typeof token_type !== 'string') return undefined;
  if (expires_at !== null && (typeof expires_at !== 'string' || Number.isNaN(Date.parse(expires_at))))
    return undefined;
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string')) return undefined;
  const credential = {
    access_token,
    token_type,
    expires_at,
    scopes: scopes as string[],
    ...(typeof fields === 'object' && fields !== null
      ? { fields: { ...(fields as Record<string, string>) } }
      : {}),
  };
  // The camelCase names of the first release, as getters that JSON and spreads leave out.
  return Object.defineProperties(credential, {
    accessToken: { get: () => access_token },
    tokenType: { get: () => token_type },
    expiresAt: { get: () => (expires_at === null ? null : new Date(expires_at)) },
  }) as VaultCredential;
};

export const createVaultClient = (options: VaultClientOptions): VaultClient => {
  if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) {
    throw new VaultClientError('invalid_options', 'url must be the vault’s http(s) base URL.');
  }
  if (typeof options.agentId !== 'string' || options.agentId.length === 0) {
    throw new VaultClientError('invalid_options', 'agentId must be your agent id or name.');
  }
  if ((options.token === undefined) === (options.getToken === undefined)) {
    throw new VaultClientError('invalid_options', 'Give exactly one of token and getToken.');
  }
  const base = options.url.replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const now = () => (options.clock ?? { now: () => new Date() }).now().getTime();
  const skewMs = nonNegative('refreshSkewSeconds', options.refreshSkewSeconds, 30) * 1000;
  const defaultTtlMs = nonNegative('defaultTtlSeconds', options.defaultTtlSeconds, 60) * 1000;
  const retries = Math.floor(nonNegative('retries', options.retries, 3));
  const baseMs = nonNegative('backoff.baseMs', options.backoff?.baseMs, 100);
  const maxMs = nonNegative('backoff.maxMs', options.backoff?.maxMs, 2000);
  const timeoutMs = nonNegative('timeoutMs', options.timeoutMs, 10_000);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const token = async () => (options.token !== undefined ? options.token : await options.getToken!());

  const backoffMs = (attempt: number) => {
    const delay = Math.min(maxMs, baseMs * 2 ** attempt);
    return delay / 2 + random() * (delay / 2);
  };
  const proxyFetch = createProxyFetch({
    base,
    token,
    fetch: doFetch,
    retries,
    backoff: backoffMs,
    maxRetryAfterMs: nonNegative('maxRetryAfterSeconds', options.maxRetryAfterSeconds, 30) * 1000,
    timeoutMs,
    sleep,
  });

  const cache = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<VaultCredential>>();

  /** One attempt: the credential, or a VaultClientError saying whether another attempt may help. */
  const attempt = async (
    service: string,
    scopes: string[],
    who: Pick<GetCredentialOptions, 'user' | 'flow'>,
  ): Promise<VaultCredential> => {
    const params = new URLSearchParams();
    if (scopes.length > 0) params.set('scope', scopes.join(','));
    if (who.user !== undefined) params.set('user', who.user);
    if (who.flow !== undefined) params.set('flow', who.flow);
    const query = params.toString() === '' ? '' : `?${params.toString()}`;
    const url = `${base}/v1/agents/${encodeURIComponent(options.agentId)}/credentials/${encodeURIComponent(service)}${query}`;
    const headers = { authorization: `Bearer ${await token()}`, accept: 'application/json' };
    let response: Response;
    try {
      response = await doFetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      const timedOut = (error as Error | null)?.name === 'TimeoutError';
      throw new VaultClientError(
        timedOut ? 'timeout' : 'network_error',
        timedOut ? `The vault did not answer within ${timeoutMs} ms.` : `Cannot reach the vault at ${base}.`,
        { retryable: true, cause: error },
      );
    }
    const headerId = response.headers.get('x-request-id');
    let body: unknown;
    try {
      body = await response.json();
    } catch (error) {
      throw new VaultClientError(
        'bad_response',
        `The vault answered ${response.status} with a body that is not JSON.`,
        {
          status: response.status,
          requestId: headerId,
          retryable: response.status >= 500,
          cause: error,
        },
      );
    }
    if (!response.ok) throw vaultRefusal(response.status, body, headerId);
    const credential = parseToken(body);
    if (!credential) {
      throw new VaultClientError('bad_response', 'The vault’s answer is not a credential.', {
        status: response.status,
        requestId: headerId,
      });
    }
    return credential;
  };

  const fetchWithRetries = async (
    service: string,
    scopes: string[],
    who: Pick<GetCredentialOptions, 'user' | 'flow'>,
  ): Promise<VaultCredential> => {
    for (let n = 0; ; n += 1) {
      try {
        return await attempt(service, scopes, who);
      } catch (error) {
        if (!isVaultClientError(error) || !error.retryable || n >= retries) throw error;
        await sleep(backoffMs(n));
      }
    }
  };

  const remember = (key: string, value: VaultCredential) => {
    const fetchedAt = now();
    const freshUntil =
      value.expires_at === null ? fetchedAt + defaultTtlMs : Date.parse(value.expires_at) - skewMs;
    if (freshUntil > fetchedAt) cache.set(key, { value, freshUntil });
    else cache.delete(key);
  };

  return {
    getCredential(service, getOptions = {}) {
      const scopes = normalizeScopes(getOptions.scope);
      // One entry per end user too: two users' tokens of one service are different credentials.
      const key = `${service}\n${scopes.join(' ')}\n${getOptions.user ?? ''}`;
      const cached = cache.get(key);
      if (!getOptions.forceRefresh && cached && now() < cached.freshUntil)
        return Promise.resolve(cached.value);
      const pending = inFlight.get(key);
      if (pending) return pending;
      const request = fetchWithRetries(service, scopes, { user: getOptions.user, flow: getOptions.flow })
        .then(
          (value) => {
            remember(key, value);
            return value;
          },
          (error: unknown) => {
            // A refusal is never served from cache: the next call asks the vault again.
            cache.delete(key);
            throw error;
          },
        )
        .finally(() => inFlight.delete(key));
      inFlight.set(key, request);
      return request;
    },

    fetch: proxyFetch,

    invalidate(service) {
      for (const key of [...cache.keys()]) {
        if (service === undefined || key.startsWith(`${service}\n`)) cache.delete(key);
      }
    },
  };
};
