import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Clock, systemClock } from '../lib/clock.js';
import { aeadKeyLength, decodeBase64, open, seal } from './aead.js';
import {
  createReplayCache,
  minWebhookSecretLength,
  signResponse,
  verifyRequest,
  webhookKeyIdPattern,
} from './webhook-signature.js';

/**
 * The reference key webhook (`tokenvault webhook-kms serve`): it holds the key and wraps/unwraps DEKs
 * for a vault in webhook mode, speaking the contract in docs/webhook-kms.md. Plain node:http, no
 * framework, so operators can read all of it. It never logs keys, plaintexts or ciphertexts.
 *
 * Each ciphertext is base64(iv | ct | tag) under AES-256-GCM with AAD binding the key id, so a
 * ciphertext presented under another key id fails even if both ids name the same key bytes.
 */
export interface WebhookKmsKey {
  id: string;
  key: Buffer;
}

export interface WebhookKmsLogEntry {
  method: string;
  path: string;
  status: number;
  items?: number;
  reason?: string;
}

export interface WebhookKmsServerOptions {
  /** Every key that may still unwrap; the active one also wraps. */
  keys: WebhookKmsKey[];
  activeKeyId: string;
  secret: string;
  host?: string;
  port?: number;
  clock?: Clock;
  log?: (entry: WebhookKmsLogEntry) => void;
  /**
   * Most nonces remembered against replay (default 100,000). A flood beyond it shortens the window a
   * request must arrive in rather than refusing requests (see createReplayCache).
   */
  replayCapacity?: number;
}

export interface WebhookKmsServer {
  start(): Promise<{ url: string }>;
  stop(): Promise<void>;
}

export const webhookKmsMaxBodyBytes = 1024 * 1024;
export const webhookKmsMaxBatchItems = 10_000;

const kmsAad = (keyId: string) => Buffer.from(JSON.stringify(['tokenvault-kms', 'v1', keyId]), 'utf8');

interface Reply {
  status: number;
  body: unknown;
  reason?: string;
  items?: number;
}

const failure = (
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): Reply => ({
  status,
  body: { error: { code, message, ...extra } },
  reason: message,
});

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const checkOptions = (options: WebhookKmsServerOptions): Map<string, Buffer> => {
  if (typeof options.secret !== 'string' || options.secret.length < minWebhookSecretLength) {
    throw new Error(`The webhook secret must be at least ${minWebhookSecretLength} characters.`);
  }
  const keys = new Map<string, Buffer>();
  for (const { id, key } of options.keys) {
    if (!webhookKeyIdPattern.test(id)) {
      throw new Error(`Key id "${id}" must be 1-64 characters of [A-Za-z0-9._-].`);
    }
    if (keys.has(id)) throw new Error(`Key id "${id}" is given twice.`);
    if (key.length !== aeadKeyLength) throw new Error(`Key "${id}" must be ${aeadKeyLength} bytes.`);
    keys.set(id, key);
  }
  if (!keys.has(options.activeKeyId)) {
    throw new Error(`The active key id "${options.activeKeyId}" is not among the keys.`);
  }
  return keys;
};

export const createWebhookKmsServer = (options: WebhookKmsServerOptions): WebhookKmsServer => {
  const keys = checkOptions(options);
  const { activeKeyId, secret } = options;
  const activeKey = keys.get(activeKeyId)!;
  const clock = options.clock ?? systemClock;
  const host = options.host ?? '127.0.0.1';
  const replayCache = createReplayCache({ maxEntries: options.replayCapacity });

  const wrap = (json: Record<string, unknown>): Reply => {
    const { plaintexts } = json;
    if (!Array.isArray(plaintexts) || plaintexts.length === 0) {
      return failure(400, 'invalid_request', '`plaintexts` must be a non-empty array of base64 strings.');
    }
    if (plaintexts.length > webhookKmsMaxBatchItems) {
      return failure(400, 'batch_too_large', `At most ${webhookKmsMaxBatchItems} items per request.`);
    }
    const ciphertexts: string[] = [];
    for (const [index, item] of plaintexts.entries()) {
      const bytes = typeof item === 'string' ? decodeBase64(item) : undefined;
      if (!bytes) {
        return failure(400, 'invalid_request', `plaintexts[${index}] is not a base64 string.`, { index });
      }
      ciphertexts.push(seal(activeKey, bytes, kmsAad(activeKeyId)).toString('base64'));
    }
    return { status: 200, body: { key_id: activeKeyId, ciphertexts }, items: ciphertexts.length };
  };

  const unwrap = (json: Record<string, unknown>): Reply => {
    const { items } = json;
    if (!Array.isArray(items) || items.length === 0) {
      return failure(400, 'invalid_request', '`items` must be a non-empty array of {key_id, ciphertext}.');
    }
    if (items.length > webhookKmsMaxBatchItems) {
      return failure(400, 'batch_too_large', `At most ${webhookKmsMaxBatchItems} items per request.`);
    }
    const plaintexts: string[] = [];
    for (const [index, item] of items.entries()) {
      const keyId = isRecord(item) ? item.key_id : undefined;
      const sealed =
        isRecord(item) && typeof item.ciphertext === 'string' ? decodeBase64(item.ciphertext) : undefined;
      if (typeof keyId !== 'string' || !sealed) {
        return failure(
          400,
          'invalid_request',
          `items[${index}] must be {key_id: string, ciphertext: base64}.`,
          { index },
        );
      }
      const key = keys.get(keyId);
      if (!key) {
        return failure(
          422,
          'decryption_failed',
          `items[${index}] names a key id this server does not hold.`,
          { index },
        );
      }
      try {
        plaintexts.push(open(key, sealed, kmsAad(keyId)).toString('base64'));
      } catch {
        return failure(422, 'decryption_failed', `items[${index}] failed authentication.`, { index });
      }
    }
    return { status: 200, body: { plaintexts }, items: plaintexts.length };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const send = (reply: Reply, requestNonce?: string) => {
      const body = JSON.stringify(reply.body);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'cache-control': 'no-store',
      };
      // Only answers to authenticated requests are signed, so the server is no signing oracle.
      if (requestNonce) Object.assign(headers, signResponse({ secret, body, requestNonce, clock }));
      if (reply.status === 413) headers.connection = 'close';
      res.writeHead(reply.status, headers).end(body);
      options.log?.({
        method,
        path,
        status: reply.status,
        ...(reply.items === undefined ? {} : { items: reply.items }),
        ...(reply.reason === undefined ? {} : { reason: reply.reason }),
      });
    };

    if (path === '/healthz') {
      return send(
        method === 'GET' || method === 'HEAD' ? { status: 200, body: { status: 'ok' } } : notAllowed,
      );
    }
    if (path !== '/wrap' && path !== '/unwrap') return send(failure(404, 'not_found', 'No such endpoint.'));
    if (method !== 'POST') return send(notAllowed);

    const raw = await readBody(req, webhookKmsMaxBodyBytes);
    if (raw === 'too_large') {
      return send(failure(413, 'body_too_large', `The body is larger than ${webhookKmsMaxBodyBytes} bytes.`));
    }
    const verified = verifyRequest({ secret, headers: req.headers, body: raw, clock, replayCache });
    if (!verified.ok) return send(failure(401, 'invalid_signature', `Request rejected: ${verified.reason}.`));

    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return send(failure(400, 'invalid_json', 'The body is not valid JSON.'), verified.nonce);
    }
    if (!isRecord(json)) {
      return send(failure(400, 'invalid_request', 'The body must be a JSON object.'), verified.nonce);
    }
    send(path === '/wrap' ? wrap(json) : unwrap(json), verified.nonce);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // The error itself may carry request data, so only the fact is reported.
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'internal_error', message: 'The key server failed.' } }));
      options.log?.({
        method: req.method ?? 'GET',
        path: req.url ?? '',
        status: 500,
        reason: 'internal error',
      });
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  return {
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port ?? 0, host, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          resolve({ url: `http://${host.includes(':') ? `[${host}]` : host}:${port}` });
        });
      }),
    stop: () =>
      new Promise((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((error) => (error ? reject(error) : resolve()));
        // Keep-alive connections from the vault's fetch would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
};

const notAllowed = failure(405, 'method_not_allowed', 'This endpoint does not accept that method.');

const readBody = (req: IncomingMessage, limit: number): Promise<Buffer | 'too_large'> =>
  new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > limit) {
      req.resume();
      return resolve('too_large');
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        chunks.length = 0;
        return resolve('too_large');
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
