import { createHmac, randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { constantTimeEqual } from '../lib/token-hash.js';

/**
 * Signatures on the calls between the vault and a key webhook (docs/webhook-kms.md), shared by the
 * client (webhook-key-provider) and the reference server (webhook-kms-server).
 *
 * Request:  HMAC-SHA256(secret, `${timestamp}.${nonce}.${rawBody}`)
 * Response: HMAC-SHA256(secret, `response.${timestamp}.${requestNonce}.${rawBody}`)
 *
 * Both travel as `x-tokenvault-signature: v1=<hex>` next to `x-tokenvault-timestamp` (unix seconds) and
 * `x-tokenvault-nonce`. A response echoes the request's nonce and signs it, so a captured response
 * answers only the request it was made for; the `response.` prefix keeps a signed request from being
 * passed off as a signed response.
 */
export const timestampHeader = 'x-tokenvault-timestamp';
export const nonceHeader = 'x-tokenvault-nonce';
export const signatureHeader = 'x-tokenvault-signature';

export const maxClockSkewSeconds = 300;
export const minWebhookSecretLength = 32;
/** Key ids a webhook may return; they become refs `webhook:<key id>`. */
export const webhookKeyIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/** A record type (not an interface) so it passes as fetch or node headers as is. */
export type SignatureHeaders = Record<
  typeof timestampHeader | typeof nonceHeader | typeof signatureHeader,
  string
>;

/** Either a fetch `Headers` or node's `IncomingHttpHeaders` (lower-case names). */
export type HeaderSource =
  { get(name: string): string | null } | Record<string, string | string[] | undefined>;

export type Verification = { ok: true; nonce: string } | { ok: false; reason: string };

const noncePattern = /^[A-Za-z0-9_-]{16,128}$/;
const timestampPattern = /^[0-9]{1,12}$/;

/** 128 random bits. */
export const newNonce = (): string => randomBytes(16).toString('base64url');

const unixSeconds = (clock: Clock): number => Math.floor(clock.now().getTime() / 1000);

const hmac = (secret: string, prefix: string, body: string | Buffer): string =>
  createHmac('sha256', secret).update(prefix, 'utf8').update(body).digest('hex');

export const requestSignature = (
  secret: string,
  timestamp: string,
  nonce: string,
  body: string | Buffer,
): string => `v1=${hmac(secret, `${timestamp}.${nonce}.`, body)}`;

export const responseSignature = (
  secret: string,
  timestamp: string,
  requestNonce: string,
  body: string | Buffer,
): string => `v1=${hmac(secret, `response.${timestamp}.${requestNonce}.`, body)}`;

export const signRequest = (opts: {
  secret: string;
  body: string | Buffer;
  clock: Clock;
}): SignatureHeaders => {
  const timestamp = String(unixSeconds(opts.clock));
  const nonce = newNonce();
  return {
    [timestampHeader]: timestamp,
    [nonceHeader]: nonce,
    [signatureHeader]: requestSignature(opts.secret, timestamp, nonce, opts.body),
  };
};

export const signResponse = (opts: {
  secret: string;
  body: string | Buffer;
  requestNonce: string;
  clock: Clock;
}): SignatureHeaders => {
  const timestamp = String(unixSeconds(opts.clock));
  return {
    [timestampHeader]: timestamp,
    [nonceHeader]: opts.requestNonce,
    [signatureHeader]: responseSignature(opts.secret, timestamp, opts.requestNonce, opts.body),
  };
};

const header = (headers: HeaderSource, name: string): string | undefined => {
  if (typeof headers.get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const value = (headers as Record<string, string | string[] | undefined>)[name];
  return typeof value === 'string' ? value : undefined; // a repeated header is refused, not guessed at
};

/** `v1=<hex>`, or several comma-separated (a sender rotating its secret may sign with both). */
const signatureMatches = (headerValue: string, expected: string): boolean => {
  let match = false;
  for (const candidate of headerValue.split(',').slice(0, 4)) {
    // No early exit, so the position of a match does not show in the timing.
    match = constantTimeEqual(candidate.trim(), expected) || match;
  }
  return match;
};

interface Parsed {
  timestamp: string;
  nonce: string;
  signature: string;
}

const parseHeaders = (headers: HeaderSource, clock: Clock): Parsed | { reason: string } => {
  const timestamp = header(headers, timestampHeader);
  const nonce = header(headers, nonceHeader);
  const signature = header(headers, signatureHeader);
  if (!timestamp || !nonce || !signature) return { reason: 'missing signature headers' };
  if (!timestampPattern.test(timestamp)) return { reason: 'malformed timestamp' };
  if (!noncePattern.test(nonce)) return { reason: 'malformed nonce' };
  if (Math.abs(unixSeconds(clock) - Number(timestamp)) > maxClockSkewSeconds) {
    return { reason: `timestamp is more than ${maxClockSkewSeconds} s away from this clock` };
  }
  return { timestamp, nonce, signature };
};

export interface ReplayCache {
  /**
   * Records a nonce until `expiresAt` (unix seconds: its timestamp plus the skew window) and says
   * whether it was fresh, already seen, older than what the cache still remembers (`stale`), or
   * in a second so busy that it alone fills the cache (`full`).
   */
  remember(nonce: string, expiresAt: number, now: number): 'fresh' | 'replayed' | 'stale' | 'full';
  readonly size: number;
}

/**
 * Nonces seen within the skew window, grouped in one-second slices by when they expire. A nonce only
 * has to be kept until its timestamp is too old to pass the skew check anyway.
 *
 * Volume alone must not exhaust it (a flood of correctly signed requests, which an unauthenticated
 * caller can cause through the vault): when it holds `maxEntries`, the oldest slice is dropped and
 * every request at least that old is refused as `stale` from then on. The forgotten nonces can
 * therefore never be replayed, and honest requests, signed just now, land in the newest slice and
 * pass: under a flood the window a request has to arrive in shrinks, it never closes. Only a single
 * second holding `maxEntries` requests by itself is refused (`full`), and only for that second.
 */
export const createReplayCache = (opts: { maxEntries?: number } = {}): ReplayCache => {
  const maxEntries = opts.maxEntries ?? 100_000;
  const slices = new Map<number, Set<string>>();
  let size = 0;
  /** Requests expiring at or before this second may have been forgotten: refused as stale. */
  let floor = -Infinity;
  let sweptAt = -Infinity;

  const drop = (expiresAt: number) => {
    size -= slices.get(expiresAt)?.size ?? 0;
    slices.delete(expiresAt);
  };

  const sweep = (now: number) => {
    if (now === sweptAt) return; // at most once a second: at most ~600 slices to look at
    sweptAt = now;
    for (const expiresAt of slices.keys()) if (expiresAt < now) drop(expiresAt);
  };

  const oldestSlice = (): number => Math.min(...slices.keys());

  return {
    remember(nonce, expiresAt, now) {
      sweep(now);
      if (expiresAt <= floor) return 'stale';
      if (slices.get(expiresAt)?.has(nonce)) return 'replayed';
      while (size >= maxEntries) {
        const oldest = oldestSlice();
        if (oldest >= expiresAt) return oldest === expiresAt ? 'full' : 'stale';
        drop(oldest);
        floor = Math.max(floor, oldest);
      }
      let slice = slices.get(expiresAt);
      if (!slice) slices.set(expiresAt, (slice = new Set()));
      slice.add(nonce);
      size += 1;
      return 'fresh';
    },
    get size() {
      return size;
    },
  };
};

/** Server side: authentic, fresh, and never seen before. */
export const verifyRequest = (opts: {
  secret: string;
  headers: HeaderSource;
  body: string | Buffer;
  clock: Clock;
  replayCache: ReplayCache;
}): Verification => {
  const parsed = parseHeaders(opts.headers, opts.clock);
  if ('reason' in parsed) return { ok: false, reason: parsed.reason };
  const expected = requestSignature(opts.secret, parsed.timestamp, parsed.nonce, opts.body);
  if (!signatureMatches(parsed.signature, expected)) return { ok: false, reason: 'bad signature' };
  const seen = opts.replayCache.remember(
    parsed.nonce,
    Number(parsed.timestamp) + maxClockSkewSeconds,
    unixSeconds(opts.clock),
  );
  if (seen === 'replayed') return { ok: false, reason: 'nonce was already used (replayed request)' };
  if (seen === 'stale') {
    return { ok: false, reason: 'timestamp is older than the replay window still kept under this load' };
  }
  if (seen === 'full') return { ok: false, reason: 'too many requests in this second' };
  return { ok: true, nonce: parsed.nonce };
};

/** Client side: authentic, fresh, and the answer to this very request. */
export const verifyResponse = (opts: {
  secret: string;
  headers: HeaderSource;
  body: string | Buffer;
  requestNonce: string;
  clock: Clock;
}): Verification => {
  const parsed = parseHeaders(opts.headers, opts.clock);
  if ('reason' in parsed) return { ok: false, reason: parsed.reason };
  if (!constantTimeEqual(parsed.nonce, opts.requestNonce)) {
    return { ok: false, reason: 'answers another request' };
  }
  const expected = responseSignature(opts.secret, parsed.timestamp, opts.requestNonce, opts.body);
  if (!signatureMatches(parsed.signature, expected)) return { ok: false, reason: 'bad signature' };
  return { ok: true, nonce: parsed.nonce };
};
