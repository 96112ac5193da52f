import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { aeadKeyLength, decodeBase64 } from './aead.js';
import type { KeyProvider, WrappedKey } from './key-provider.js';
import {
  minWebhookSecretLength,
  nonceHeader,
  signRequest,
  verifyResponse,
  webhookKeyIdPattern,
} from './webhook-signature.js';

/**
 * Webhook mode: the operator's webhook holds the key; the vault sends it DEKs to wrap and wrapped DEKs
 * to unwrap over signed calls (docs/webhook-kms.md) and stores only what comes back. Every failure —
 * unreachable, slow, unsigned, malformed — is `key_provider_unavailable`, so the vault fails closed.
 */
export interface WebhookKeyProviderOptions {
  url: string;
  secret: string;
  /** Per attempt. */
  timeoutMs?: number;
  /** Extra attempts after a network error, timeout or 5xx; a 4xx is never retried. */
  retries?: number;
  /** First backoff; doubles on each retry. */
  retryDelayMs?: number;
  clock: Clock;
}

export interface WebhookKeyProvider extends KeyProvider {
  readonly kind: 'webhook';
}

/** Batches stay well under the reference server's 1 MiB body limit and 10,000-item cap. */
const maxItemsPerCall = 1000;
const maxResponseChars = 16 * 1024 * 1024;

export const webhookRef = (keyId: string): string => `webhook:${keyId}`;

export const parseWebhookRef = (ref: string): string | undefined => {
  const keyId = ref.startsWith('webhook:') ? ref.slice('webhook:'.length) : undefined;
  return keyId !== undefined && webhookKeyIdPattern.test(keyId) ? keyId : undefined;
};

const loopbackHosts = new Set(['localhost', '[::1]']);

/**
 * The unwrap response carries plaintext DEKs, so anything but a loopback address must be HTTPS.
 * Returns the base URL without a trailing slash.
 */
export const checkWebhookUrl = (url: string): string => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('The key webhook URL is not a valid URL.');
  }
  if (parsed.username || parsed.password || parsed.search || parsed.hash) {
    throw new Error('The key webhook URL must not carry credentials, a query or a fragment.');
  }
  const loopback = loopbackHosts.has(parsed.hostname) || /^127\.\d+\.\d+\.\d+$/.test(parsed.hostname);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
    throw new Error(
      `The key webhook URL must use https (plain http is allowed only on loopback): ${parsed.origin}`,
    );
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
};

interface Answer {
  status: number;
  json: unknown;
}

const errorCodeOf = (json: unknown): string | undefined => {
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? code : undefined;
};

const describeFetchError = (error: unknown, timeoutMs: number): string => {
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  return code ? `cannot connect (${code})` : 'cannot connect';
};

export const createWebhookKeyProvider = (options: WebhookKeyProviderOptions): WebhookKeyProvider => {
  const base = checkWebhookUrl(options.url);
  if (options.secret.length < minWebhookSecretLength) {
    throw new Error(`The key webhook secret must be at least ${minWebhookSecretLength} characters.`);
  }
  const { secret, clock } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const retries = options.retries ?? 2;
  const retryDelayMs = options.retryDelayMs ?? 100;

  const unavailable = (problem: string) =>
    new VaultError(
      'key_provider_unavailable',
      `The key webhook at ${base} ${problem}; no secret can be read or written until it answers. Nothing was changed.`,
    );

  /** One signed attempt. `retry` means the next attempt may succeed. */
  const attempt = async (
    endpoint: string,
    body: string,
  ): Promise<Answer | { retry: boolean; problem: string }> => {
    const headers = signRequest({ secret, body, clock });
    let response: Response;
    let text: string;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body,
        // A redirect would send the signed body (and, for /wrap, plaintext DEKs) somewhere unconfigured.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      return { retry: true, problem: describeFetchError(error, timeoutMs) };
    }
    if (response.status >= 500) return { retry: true, problem: `answered HTTP ${response.status}` };
    if (response.status >= 300 && response.status < 400) {
      return {
        retry: false,
        problem: `answered with a redirect (HTTP ${response.status}); configure the final URL`,
      };
    }
    if (text.length > maxResponseChars) return { retry: false, problem: 'sent an oversized response' };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const signed = verifyResponse({
      secret,
      headers: response.headers,
      body: text,
      requestNonce: headers[nonceHeader],
      clock,
    });
    if (response.status >= 400 && !(response.status === 422 && signed.ok)) {
      const code = errorCodeOf(json);
      return {
        retry: false,
        problem: `refused the request (HTTP ${response.status}${code ? ` ${code}` : ''})`,
      };
    }
    if (!signed.ok) {
      return { retry: false, problem: `sent a response that failed verification (${signed.reason})` };
    }
    if (json === undefined) return { retry: false, problem: 'sent a response that is not JSON' };
    return { status: response.status, json };
  };

  const call = async (path: '/wrap' | '/unwrap', payload: unknown): Promise<Answer> => {
    const body = JSON.stringify(payload);
    let problem = 'was not called';
    for (let n = 0; n <= retries; n++) {
      if (n > 0) await sleep(retryDelayMs * 2 ** (n - 1));
      const result = await attempt(`${base}${path}`, body);
      if ('status' in result) return result;
      problem = result.problem;
      if (!result.retry) break;
      if (n === retries && retries > 0) problem += ` (${retries + 1} attempts)`;
    }
    throw unavailable(problem);
  };

  const wrapBatch = async (deks: Buffer[]): Promise<WrappedKey[]> => {
    const { json } = await call('/wrap', { plaintexts: deks.map((dek) => dek.toString('base64')) });
    const { key_id: keyId, ciphertexts } = (json ?? {}) as { key_id?: unknown; ciphertexts?: unknown };
    if (
      typeof keyId !== 'string' ||
      !webhookKeyIdPattern.test(keyId) ||
      !Array.isArray(ciphertexts) ||
      ciphertexts.length !== deks.length ||
      !ciphertexts.every((c) => typeof c === 'string' && c.length > 0 && c.length <= 8192)
    ) {
      throw unavailable('sent a malformed /wrap response');
    }
    return ciphertexts.map((wrapped: string) => ({ ref: webhookRef(keyId), wrapped }));
  };

  const unwrapBatch = async (keys: WrappedKey[]): Promise<Buffer[]> => {
    const items = keys.map(({ ref, wrapped }) => {
      const keyId = parseWebhookRef(ref);
      if (keyId === undefined || typeof wrapped !== 'string') {
        throw new VaultError(
          'decryption_failed',
          `"${String(ref).slice(0, 80)}" is not a webhook key reference.`,
        );
      }
      return { key_id: keyId, ciphertext: wrapped };
    });
    const { status, json } = await call('/unwrap', { items });
    if (status === 422 && errorCodeOf(json) === 'decryption_failed') {
      const index = (json as { error: { index?: unknown } }).error.index;
      const ref = typeof index === 'number' ? keys[index]?.ref : undefined;
      throw new VaultError(
        'decryption_failed',
        `The key webhook at ${base} could not unwrap a data key${ref ? ` wrapped under ${ref}` : ''}: ` +
          'it failed authentication or names a key the webhook does not hold.',
      );
    }
    const plaintexts = (json as { plaintexts?: unknown } | undefined)?.plaintexts;
    const deks = Array.isArray(plaintexts)
      ? plaintexts.map((p) => (typeof p === 'string' ? decodeBase64(p) : undefined))
      : [];
    if (status !== 200 || deks.length !== keys.length || deks.some((dek) => dek === undefined)) {
      throw unavailable('sent a malformed /unwrap response');
    }
    return deks as Buffer[];
  };

  const inBatches = async <In, Out>(all: In[], fn: (batch: In[]) => Promise<Out[]>): Promise<Out[]> => {
    const out: Out[] = [];
    for (let i = 0; i < all.length; i += maxItemsPerCall)
      out.push(...(await fn(all.slice(i, i + maxItemsPerCall))));
    return out;
  };

  const wrap = (deks: Buffer[]) => inBatches(deks, wrapBatch);
  const unwrap = (keys: WrappedKey[]) => inBatches(keys, unwrapBatch);

  const check = async (): Promise<void> => {
    const probe = randomBytes(aeadKeyLength);
    const [unwrapped] = await unwrap(await wrap([probe]));
    if (!unwrapped?.equals(probe)) throw unavailable('returned a different key than it was given');
  };

  return { kind: 'webhook', wrap, unwrap, check };
};
