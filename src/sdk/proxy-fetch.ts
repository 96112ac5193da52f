import { VaultClientError, vaultRefusal } from './client-error.js';

/**
 * `vault.fetch('github', '/repos/o/r/issues', init)`: a call through the vault's HTTP proxy
 * (`/v1/proxy/{service}/{path}`, docs/proxy.md), answered with the upstream's own `Response`, its body
 * a stream. The vault injects the credential; the agent never holds it.
 *
 * Two kinds of answer, told apart by the `x-tokenvault-proxied` header the vault sets on everything it
 * forwards: the upstream's (any status, returned as fetch returns it) and the vault's own refusal
 * (thrown as `VaultClientError` with the vault's code, as `getCredential` does).
 *
 * Retries only where repeating the call cannot do something twice: an idempotent method (GET, HEAD,
 * OPTIONS, PUT, DELETE) with a body that can be sent again (none, a string, bytes, form data — not a
 * stream). Retried: a network failure or timeout, a vault 5xx, and an upstream 429/502/503/504, after
 * the upstream's `Retry-After` when it gives one (up to `maxRetryAfterMs`; longer, and the answer is
 * returned), else the client's backoff. Everything else is returned or thrown at once.
 */

/** Set by the vault on every answer it forwards from the upstream (src/http/routes/proxy-routes.ts). */
export const proxiedHeader = 'x-tokenvault-proxied';

export interface VaultFetchInit extends RequestInit {
  /** `?user=`: use this end user's credential (per-user OAuth credentials). */
  user?: string;
}

export interface ProxyFetchDeps {
  /** The vault's base URL, without a trailing slash. */
  base: string;
  token: () => Promise<string>;
  fetch: typeof fetch;
  retries: number;
  /** The wait before retry `attempt` (0-based) when the answer names none. */
  backoff: (attempt: number) => number;
  maxRetryAfterMs: number;
  /** Until the answer's status and headers; the body then streams for as long as it takes. */
  timeoutMs: number;
  sleep: (ms: number) => Promise<void>;
}

const idempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);
const retriedUpstreamStatuses = new Set([429, 502, 503, 504]);

/** A body fetch can send again as it is: nothing, text, bytes, a Blob, form data. Not a stream. */
const replayable = (body: RequestInit['body']): boolean =>
  body === undefined ||
  body === null ||
  typeof body === 'string' ||
  body instanceof ArrayBuffer ||
  ArrayBuffer.isView(body) ||
  body instanceof URLSearchParams ||
  body instanceof Blob ||
  body instanceof FormData;

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const retryAfterMs = (value: string | null, now = Date.now()): number | undefined => {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
};

export const createProxyFetch = (deps: ProxyFetchDeps) => {
  const { base, token, retries, backoff, maxRetryAfterMs, timeoutMs, sleep } = deps;

  const proxyUrl = (service: string, path: string, user: string | undefined): string => {
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new VaultClientError('invalid_options', 'The path must start with / (e.g. /repos/o/r/issues).');
    }
    // URL parsing resolves `.` and `..` (and `%2e%2e`) before the vault sees them, so
    // `/../../v1/admin` would leave the proxy on the client side.
    const segments = path.split(/[?#]/, 1)[0]!.split('/');
    if (segments.some((segment) => ['.', '..'].includes(segment.replace(/%2e/gi, '.')))) {
      throw new VaultClientError('invalid_options', 'The path must not have . or .. segments.');
    }
    const url = `${base}/v1/proxy/${encodeURIComponent(service)}${path}`;
    if (user === undefined) return url;
    return `${url}${path.includes('?') ? '&' : '?'}user=${encodeURIComponent(user)}`;
  };

  /** One attempt: the answer's head, or a VaultClientError for no answer at all. */
  const send = async (url: string, init: RequestInit, mayRetry: boolean): Promise<Response> => {
    const timer = new AbortController();
    const timeout = setTimeout(
      () => timer.abort(new DOMException(`no answer within ${timeoutMs} ms`, 'TimeoutError')),
      timeoutMs,
    );
    const signal = init.signal ? AbortSignal.any([init.signal, timer.signal]) : timer.signal;
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${await token()}`);
    // A stream is sent as it is read (fetch needs to be told it may send before the answer comes).
    const streaming = !replayable(init.body);
    try {
      return await deps.fetch(url, { ...init, headers, signal, ...(streaming ? { duplex: 'half' } : {}) });
    } catch (error) {
      // The caller's own abort goes back to it as fetch would throw it.
      if (init.signal?.aborted) throw error;
      const timedOut = timer.signal.aborted;
      throw new VaultClientError(
        timedOut ? 'timeout' : 'network_error',
        timedOut ? `The vault did not answer within ${timeoutMs} ms.` : `Cannot reach the vault at ${base}.`,
        { retryable: mayRetry, cause: error },
      );
    } finally {
      clearTimeout(timeout);
    }
  };

  /** The vault's own answer (it forwarded nothing): a refusal, thrown typed. */
  const refusalOf = async (response: Response, mayRetry: boolean): Promise<VaultClientError> => {
    const requestId = response.headers.get('x-request-id');
    const body: unknown = await response.json().catch(() => null);
    if (response.ok) {
      return new VaultClientError('bad_response', 'The answer did not come through the vault’s proxy.', {
        status: response.status,
        requestId,
      });
    }
    return vaultRefusal(response.status, body, requestId, mayRetry && response.status >= 500);
  };

  return async (service: string, path: string, init: VaultFetchInit = {}): Promise<Response> => {
    const { user, ...requestInit } = init;
    const url = proxyUrl(service, path, user);
    const method = (init.method ?? 'GET').toUpperCase();
    const mayRetry = idempotent.has(method) && replayable(init.body);
    for (let attempt = 0; ; attempt += 1) {
      const last = !mayRetry || attempt >= retries;
      let response: Response;
      try {
        // A redirect comes back as it is: following it here would send the agent's token wherever the
        // upstream pointed (a relative Location resolves against the vault).
        response = await send(url, { redirect: 'manual', ...requestInit, method }, mayRetry);
      } catch (error) {
        if (last || !(error instanceof VaultClientError)) throw error;
        await sleep(backoff(attempt));
        continue;
      }
      let wait: number | undefined;
      if (response.headers.has(proxiedHeader)) {
        if (last || !retriedUpstreamStatuses.has(response.status)) return response;
        wait = retryAfterMs(response.headers.get('retry-after')) ?? backoff(attempt);
        if (wait > maxRetryAfterMs) return response;
        await response.body?.cancel();
      } else {
        const refusal = await refusalOf(response, mayRetry);
        if (last || !refusal.retryable) throw refusal;
        wait = backoff(attempt);
      }
      await sleep(wait);
    }
  };
};
