import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { systemClock } from '../lib/clock.js';
import { createWebhookKeyProvider, parseWebhookRef } from './webhook-key-provider.js';
import {
  createWebhookKmsServer,
  type WebhookKmsLogEntry,
  type WebhookKmsServer,
} from './webhook-kms-server.js';
import { nonceHeader, signRequest, signResponse } from './webhook-signature.js';

const secret = randomBytes(32).toString('base64url');
const kmsKey = { id: 'kms-1', key: randomBytes(32) };
const clock = systemClock;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const startKms = async (opts: Partial<Parameters<typeof createWebhookKmsServer>[0]> = {}) => {
  const log: WebhookKmsLogEntry[] = [];
  const server: WebhookKmsServer = createWebhookKmsServer({
    keys: [kmsKey],
    activeKeyId: kmsKey.id,
    secret,
    log: (entry) => log.push(entry),
    ...opts,
  });
  const { url } = await server.start();
  cleanups.push(() => server.stop());
  return { url, log, server };
};

/** A tiny node:http server for peers that misbehave on purpose. */
const startRaw = async (handler: Parameters<typeof createServer>[1]): Promise<string> => {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

const provider = (url: string, extra: Partial<Parameters<typeof createWebhookKeyProvider>[0]> = {}) =>
  createWebhookKeyProvider({ url, secret, clock, timeoutMs: 1000, retryDelayMs: 10, ...extra });

const failure = async (promise: Promise<unknown>): Promise<{ code: string; message: string }> => {
  try {
    await promise;
  } catch (error) {
    if (isVaultError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a VaultError');
};

const readAll = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

describe('webhook key provider against the reference server', () => {
  it('wraps and unwraps a batch, with refs naming the webhook key', async () => {
    const { url, log } = await startKms();
    const keys = provider(url);
    const deks = [randomBytes(32), randomBytes(32)];
    const wrapped = await keys.wrap(deks);
    expect(wrapped.map((w) => w.ref)).toEqual(['webhook:kms-1', 'webhook:kms-1']);
    for (const w of wrapped) expect(w.wrapped).not.toContain(deks[0]!.toString('base64'));
    expect(await keys.unwrap(wrapped)).toEqual(deks);
    await keys.check();
    expect(await keys.wrap([])).toEqual([]);
    // The server's log holds request facts only, never key material.
    const logText = JSON.stringify(log);
    expect(logText).not.toContain(deks[0]!.toString('base64'));
    expect(logText).not.toContain(kmsKey.key.toString('base64'));
    expect(log[0]).toEqual({ method: 'POST', path: '/wrap', status: 200, items: 2 });
  });

  it('splits large batches into several calls', async () => {
    const { url, log } = await startKms();
    const deks = Array.from({ length: 2500 }, () => randomBytes(32));
    const keys = provider(url);
    expect(await keys.unwrap(await keys.wrap(deks))).toEqual(deks);
    expect(log.filter((e) => e.path === '/wrap').map((e) => e.items)).toEqual([1000, 1000, 500]);
  });

  it('unwraps keys wrapped under a retired key id after the webhook rotates', async () => {
    const first = await startKms();
    const old = await provider(first.url).wrap([randomBytes(32)]);
    await first.server.stop();
    const next = { id: 'kms-2', key: randomBytes(32) };
    const { url } = await startKms({ keys: [kmsKey, next], activeKeyId: 'kms-2' });
    const keys = provider(url);
    expect((await keys.wrap([randomBytes(32)]))[0]?.ref).toBe('webhook:kms-2');
    expect(await keys.unwrap(old)).toHaveLength(1);
  });

  it('turns a tampered ciphertext or unknown key id into decryption_failed', async () => {
    const { url } = await startKms();
    const keys = provider(url);
    const [w] = await keys.wrap([randomBytes(32)]);
    const bytes = Buffer.from(w!.wrapped, 'base64');
    bytes[20]! ^= 1;
    const tampered = { ref: w!.ref, wrapped: bytes.toString('base64') };
    const result = await failure(keys.unwrap([w!, tampered]));
    expect(result.code).toBe('decryption_failed');
    expect(result.message).toContain('webhook:kms-1');
    expect((await failure(keys.unwrap([{ ref: 'webhook:kms-9', wrapped: w!.wrapped }]))).code).toBe(
      'decryption_failed',
    );
    expect((await failure(keys.unwrap([{ ref: 'platform:1', wrapped: w!.wrapped }]))).code).toBe(
      'decryption_failed',
    );
  });

  it('fails closed with key_provider_unavailable on the wrong secret', async () => {
    const { url } = await startKms();
    const keys = provider(url, { secret: randomBytes(32).toString('base64url') });
    const result = await failure(keys.wrap([randomBytes(32)]));
    expect(result.code).toBe('key_provider_unavailable');
    expect(result.message).toContain(url);
    expect(result.message).toContain('HTTP 401 invalid_signature');
    expect(result.message).not.toContain(secret);
  });

  it('has the server reject a replayed request', async () => {
    const { url } = await startKms();
    const body = JSON.stringify({ plaintexts: [randomBytes(32).toString('base64')] });
    const headers = { ...signRequest({ secret, body, clock }), 'content-type': 'application/json' };
    const first = await fetch(`${url}/wrap`, { method: 'POST', headers, body });
    expect(first.status).toBe(200);
    const second = await fetch(`${url}/wrap`, { method: 'POST', headers, body });
    expect(second.status).toBe(401);
    expect(await second.json()).toMatchObject({
      error: { code: 'invalid_signature', message: expect.stringMatching(/replay/) },
    });
  });

  it('has the server reject stale timestamps, missing signatures, bad JSON and oversized input', async () => {
    const { url } = await startKms();
    const post = (path: string, body: string, headers: Record<string, string>) =>
      fetch(`${url}${path}`, { method: 'POST', headers, body });
    const signed = (body: string, c = clock) => signRequest({ secret, body, clock: c });
    const stale = { now: () => new Date(Date.now() - 301_000) };

    expect((await post('/wrap', '{}', {})).status).toBe(401);
    expect(
      (await post('/wrap', '{"plaintexts":["AA=="]}', signed('{"plaintexts":["AA=="]}', stale))).status,
    ).toBe(401);
    expect((await post('/wrap', '{nope', signed('{nope'))).status).toBe(400);
    expect((await post('/wrap', '{"plaintexts":["*"]}', signed('{"plaintexts":["*"]}'))).status).toBe(400);
    expect((await post('/unwrap', '{"items":[{}]}', signed('{"items":[{}]}'))).status).toBe(400);

    const tooMany = JSON.stringify({ plaintexts: Array.from({ length: 10_001 }, () => 'AA==') });
    const batch = await post('/wrap', tooMany, signed(tooMany));
    expect(batch.status).toBe(400);
    expect(await batch.json()).toMatchObject({ error: { code: 'batch_too_large' } });

    const huge = JSON.stringify({ plaintexts: ['A'.repeat(1024 * 1024)] });
    expect((await post('/wrap', huge, signed(huge))).status).toBe(413);

    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/wrap`)).status).toBe(405);
    expect((await fetch(`${url}/nope`, { method: 'POST' })).status).toBe(404);
  });

  it('has the server cut off a streamed body past 1 MiB', async () => {
    const { url } = await startKms();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${url}/wrap`, { method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      // No content-length: the limit has to hold while streaming, not only on the header.
      const chunk = Buffer.alloc(64 * 1024, 'A');
      for (let i = 0; i < 17; i++) req.write(chunk);
      req.end();
    });
    expect(status).toBe(413);
  });

  it('rejects an unsigned response', async () => {
    const url = await startRaw(async (req, res) => {
      await readAll(req);
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"key_id":"kms-1","ciphertexts":["AAAA"]}');
    });
    const result = await failure(provider(url).wrap([randomBytes(32)]));
    expect(result).toMatchObject({ code: 'key_provider_unavailable' });
    expect(result.message).toMatch(/failed verification \(missing signature headers\)/);
  });

  it('rejects a response signed with another secret, or made for another request', async () => {
    const body = '{"key_id":"kms-1","ciphertexts":["AAAA"]}';
    const captured = signResponse({ secret, body, requestNonce: 'captured-nonce-0000000', clock });
    const replayUrl = await startRaw(async (req, res) => {
      await readAll(req);
      res.writeHead(200, { ...captured, 'content-type': 'application/json' }).end(body);
    });
    const replayed = await failure(provider(replayUrl).wrap([randomBytes(32)]));
    expect(replayed.message).toMatch(/answers another request/);

    const forgedUrl = await startRaw(async (req, res) => {
      await readAll(req);
      const requestNonce = String(req.headers[nonceHeader]);
      const headers = signResponse({ secret: 'x'.repeat(32), body, requestNonce, clock });
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(body);
    });
    const forged = await failure(provider(forgedUrl).wrap([randomBytes(32)]));
    expect(forged).toMatchObject({
      code: 'key_provider_unavailable',
      message: expect.stringMatching(/bad signature/),
    });
  });

  it('rejects a signed but malformed response', async () => {
    const url = await startRaw(async (req, res) => {
      await readAll(req);
      const body = '{"key_id":"kms 1","ciphertexts":[]}';
      const headers = signResponse({ secret, body, requestNonce: String(req.headers[nonceHeader]), clock });
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(body);
    });
    const result = await failure(provider(url).wrap([randomBytes(32)]));
    expect(result).toMatchObject({
      code: 'key_provider_unavailable',
      message: expect.stringMatching(/malformed/),
    });
  });

  it('fails closed within the timeout when the server is stopped', async () => {
    const { url, server } = await startKms();
    const keys = provider(url, { timeoutMs: 500, retries: 2 });
    await keys.check();
    await server.stop();
    const started = performance.now();
    const result = await failure(keys.wrap([randomBytes(32)]));
    expect(result.code).toBe('key_provider_unavailable');
    // Every attempt ended on the refused connection, none by waiting out its timeout (that would say
    // "no answer within 500 ms"): this, not a stopwatch, is what shows it fails at once.
    expect(result.message).toContain('cannot connect');
    expect(result.message).not.toContain('no answer within');
    expect(result.message).toContain('3 attempts');
    // Only against a hang: generous, since a loaded machine stretches every step.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('gives up on a server that never answers after timeout × attempts', async () => {
    let calls = 0;
    const url = await startRaw(() => {
      calls++; // never responds
    });
    const started = performance.now();
    const result = await failure(provider(url, { timeoutMs: 200, retries: 1 }).wrap([randomBytes(32)]));
    const elapsed = performance.now() - started;
    expect(result.message).toContain('no answer within 200 ms');
    expect(calls).toBe(2);
    // Each of the two attempts waited its full timeout (timers never fire early, so this holds under
    // any load); the upper bound is only against a hang, generous because load stretches timers.
    expect(elapsed).toBeGreaterThanOrEqual(2 * 200 - 5);
    expect(elapsed).toBeLessThan(10_000);
  });

  it('retries a 500 and then succeeds, with a fresh signature each time', async () => {
    const { url: kmsUrl } = await startKms();
    const nonces: string[] = [];
    const url = await startRaw(async (req, res) => {
      const body = await readAll(req);
      nonces.push(String(req.headers[nonceHeader]));
      if (nonces.length === 1) return res.writeHead(500).end();
      const upstream = await fetch(`${kmsUrl}${req.url}`, {
        method: 'POST',
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => k.startsWith('x-tokenvault-')),
        ) as Record<string, string>,
        body,
      });
      const headers = Object.fromEntries(
        [...upstream.headers].filter(([k]) => k.startsWith('x-tokenvault-')),
      );
      res
        .writeHead(upstream.status, { ...headers, 'content-type': 'application/json' })
        .end(await upstream.text());
    });
    const keys = provider(url);
    const deks = [randomBytes(32)];
    const wrapped = await keys.wrap(deks);
    expect(nonces).toHaveLength(2);
    expect(nonces[0]).not.toBe(nonces[1]);
    expect(await provider(kmsUrl).unwrap(wrapped)).toEqual(deks);
  });

  it('never retries a 4xx', async () => {
    let calls = 0;
    const url = await startRaw(async (req, res) => {
      await readAll(req);
      calls++;
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"code":"invalid_request"}}');
    });
    const result = await failure(provider(url).wrap([randomBytes(32)]));
    expect(result.message).toContain('HTTP 400 invalid_request');
    expect(calls).toBe(1);
  });

  it('does not follow redirects', async () => {
    let followed = false;
    const target = await startRaw(async (_req, res) => {
      followed = true;
      res.writeHead(500).end();
    });
    const url = await startRaw((_req, res) => {
      res.writeHead(307, { location: `${target}/wrap` }).end();
    });
    const result = await failure(provider(url).wrap([randomBytes(32)]));
    expect(result.message).toContain('redirect');
    expect(followed).toBe(false);
  });

  it('refuses plain http off loopback, credentials in the URL and short secrets', () => {
    expect(() => provider('http://kms.example.com')).toThrow(/https/);
    expect(() => provider('https://user:pw@kms.example.com')).toThrow(/credentials/);
    expect(() => provider('https://kms.example.com', { secret: 'short' })).toThrow(/32 characters/);
    expect(() => provider('https://kms.example.com/base/')).not.toThrow();
    expect(() => provider('http://localhost:8300')).not.toThrow();
  });

  it('parses webhook refs', () => {
    expect(parseWebhookRef('webhook:kms-1')).toBe('kms-1');
    expect(parseWebhookRef('webhook:')).toBeUndefined();
    expect(parseWebhookRef('platform:1')).toBeUndefined();
    expect(parseWebhookRef('webhook:a b')).toBeUndefined();
  });
});
