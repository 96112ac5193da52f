import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../lib/clock.js';
import {
  createReplayCache,
  newNonce,
  nonceHeader,
  signatureHeader,
  signRequest,
  signResponse,
  timestampHeader,
  verifyRequest,
  verifyResponse,
} from './webhook-signature.js';

const secret = 's'.repeat(32);
const body = '{"plaintexts":["AA=="]}';

describe('webhook signatures', () => {
  it('signs HMAC-SHA256 over timestamp.nonce.body, as the docs describe', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const headers = signRequest({ secret, body, clock });
    expect(headers[timestampHeader]).toBe('1767225600');
    expect(headers[nonceHeader]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const expected = createHmac('sha256', secret)
      .update(`${headers[timestampHeader]}.${headers[nonceHeader]}.${body}`)
      .digest('hex');
    expect(headers[signatureHeader]).toBe(`v1=${expected}`);
  });

  it('accepts a fresh request once and rejects its replay', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const replayCache = createReplayCache();
    const headers = signRequest({ secret, body, clock });
    expect(verifyRequest({ secret, headers, body, clock, replayCache })).toEqual({
      ok: true,
      nonce: headers[nonceHeader],
    });
    expect(verifyRequest({ secret, headers, body, clock, replayCache })).toMatchObject({
      ok: false,
      reason: /replayed/,
    });
  });

  it('rejects another body, another secret and missing or repeated headers', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const replayCache = createReplayCache();
    const headers = signRequest({ secret, body, clock });
    const verify = (h: Record<string, string | string[] | undefined>, b = body, s = secret) =>
      verifyRequest({ secret: s, headers: h, body: b, clock, replayCache });
    expect(verify(headers, `${body} `)).toEqual({ ok: false, reason: 'bad signature' });
    expect(verify(headers, body, 't'.repeat(32))).toEqual({ ok: false, reason: 'bad signature' });
    expect(verify({ ...headers, [signatureHeader]: undefined })).toMatchObject({ ok: false });
    expect(verify({ ...headers, [nonceHeader]: [headers[nonceHeader], 'x'] })).toMatchObject({ ok: false });
    expect(verify({ ...headers, [nonceHeader]: 'short' })).toMatchObject({
      ok: false,
      reason: 'malformed nonce',
    });
    // A failed attempt does not burn the nonce; the genuine request still passes.
    expect(verify(headers)).toMatchObject({ ok: true });
  });

  it('accepts several signatures when one matches (secret rotation on the sender)', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const headers = signRequest({ secret, body, clock });
    const other = signRequest({ secret: 'o'.repeat(32), body, clock })[signatureHeader];
    const both = { ...headers, [signatureHeader]: `${other}, ${headers[signatureHeader]}` };
    expect(verifyRequest({ secret, headers: both, body, clock, replayCache: createReplayCache() }).ok).toBe(
      true,
    );
  });

  it('rejects timestamps more than 300 s away, in either direction', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const at = (offsetSeconds: number) => {
      const signer = fixedClock(new Date(Date.parse('2026-01-01T00:00:00Z') + offsetSeconds * 1000));
      const headers = signRequest({ secret, body, clock: signer });
      return verifyRequest({ secret, headers, body, clock, replayCache: createReplayCache() }).ok;
    };
    expect([at(-300), at(300), at(-301), at(301)]).toEqual([true, true, false, false]);
  });

  it('binds a response to its request and keeps requests and responses apart', () => {
    const clock = fixedClock('2026-01-01T00:00:00Z');
    const requestNonce = newNonce();
    const response = '{"plaintexts":[]}';
    const headers = signResponse({ secret, body: response, requestNonce, clock });
    expect(verifyResponse({ secret, headers, body: response, requestNonce, clock }).ok).toBe(true);
    expect(verifyResponse({ secret, headers, body: response, requestNonce: newNonce(), clock }).ok).toBe(
      false,
    );
    expect(verifyResponse({ secret, headers, body: `${response} `, requestNonce, clock }).ok).toBe(false);
    // A signed request is not a signed response, even with the same nonce and body.
    const request = signRequest({ secret, body: response, clock });
    const asResponse = verifyResponse({
      secret,
      headers: request,
      body: response,
      requestNonce: request[nonceHeader],
      clock,
    });
    expect(asResponse).toEqual({ ok: false, reason: 'bad signature' });
  });
});

describe('replay cache', () => {
  it('forgets nonces after they expire', () => {
    const cache = createReplayCache();
    expect(cache.remember('n1', 100, 0)).toBe('fresh');
    expect(cache.remember('n1', 100, 50)).toBe('replayed');
    expect(cache.remember('n2', 200, 150)).toBe('fresh');
    expect(cache.size).toBe(1); // n1 swept
    expect(cache.remember('n1', 300, 150)).toBe('fresh');
  });

  it('when full, forgets the oldest second and refuses anything that old, never a fresh request', () => {
    const cache = createReplayCache({ maxEntries: 2 });
    expect(cache.remember('a', 100, 0)).toBe('fresh');
    expect(cache.remember('b', 101, 1)).toBe('fresh');
    // Full: the second expiring at 100 is dropped, so `a` could be replayed; anything that old is refused.
    expect(cache.remember('c', 102, 2)).toBe('fresh');
    expect(cache.size).toBe(2);
    expect(cache.remember('a', 100, 3)).toBe('stale');
    expect(cache.remember('z', 99, 3)).toBe('stale');
    expect(cache.remember('b', 101, 3)).toBe('replayed');
    expect(cache.remember('c', 102, 3)).toBe('replayed');
    // A single second that fills the cache by itself is refused, for that second only.
    expect(cache.remember('d', 103, 3)).toBe('fresh');
    expect(cache.remember('e', 103, 3)).toBe('fresh');
    expect(cache.remember('f', 103, 3)).toBe('full');
    expect(cache.remember('g', 104, 4)).toBe('fresh');
  });

  it('stays usable under a flood far larger than it holds', () => {
    const cache = createReplayCache({ maxEntries: 1000 });
    for (let i = 0; i < 50_000; i += 1) {
      const now = Math.floor(i / 100);
      expect(cache.remember(`n${i}`, now + 300, now)).toBe('fresh');
    }
    expect(cache.size).toBeLessThanOrEqual(1000);
  });
});
