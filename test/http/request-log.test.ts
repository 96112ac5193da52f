import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { loggerOptions } from '../../src/http/logger-options.js';
import { installRequestLog, logsEveryRequest } from '../../src/http/request-log.js';
import { type TestVault, startTestVault } from '../helpers/vault.js';

interface LogLine {
  level: number;
  msg: string;
  request_id?: string;
  req?: { method: string; path: string };
  res?: { status: number };
}

const linesOf = (text: string): LogLine[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);

/** What the vault logs while `act` runs, as parsed lines. */
const loggedDuring = async (t: TestVault, act: () => Promise<unknown>): Promise<LogLine[]> => {
  const before = t.logs().length;
  await act();
  return linesOf(t.logs().slice(before));
};

describe('request logging at the default level', () => {
  let t: TestVault | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('writes no line for a successful request', async () => {
    t = await startTestVault({ settings: { logLevel: 'info' } });
    const vault = t;
    const lines = await loggedDuring(vault, async () => {
      expect((await vault.request('GET', '/v1/admin/credentials')).status).toBe(200);
      expect((await vault.request('GET', '/healthz', { token: null })).status).toBe(200);
    });
    expect(lines).toEqual([]);
  });

  it('writes a 5xx with its request id', async () => {
    t = await startTestVault({ settings: { logLevel: 'info' } });
    const vault = t;
    // A store that lost a table: the next read fails inside the handler.
    await sql`drop table credentials`.execute(vault.vault.store.db);
    let requestId: unknown;
    const lines = await loggedDuring(vault, async () => {
      const response = await vault.request('GET', '/v1/admin/credentials');
      expect(response.status).toBe(500);
      requestId = response.headers['x-request-id'];
    });
    expect(requestId).toEqual(expect.any(String));
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: 'request failed',
        request_id: requestId,
        req: { method: 'GET', path: '/v1/admin/credentials' },
        res: { status: 500 },
      }),
    );
  });

  it('writes both lines of every request with --access-log', async () => {
    t = await startTestVault({ settings: { logLevel: 'info', accessLog: 'true' } });
    const vault = t;
    let requestId: unknown;
    const lines = await loggedDuring(vault, async () => {
      const response = await vault.request('GET', '/v1/admin/credentials');
      expect(response.status).toBe(200);
      requestId = response.headers['x-request-id'];
    });
    expect(lines.map((l) => [l.msg, l.request_id])).toEqual([
      ['incoming request', requestId],
      ['request completed', requestId],
    ]);
  });
});

describe('slow requests', () => {
  it('are logged at warn with the access log off; fast ones are not', async () => {
    const written: string[] = [];
    const logger: FastifyBaseLogger = pino(loggerOptions('info'), {
      write: (line: string) => void written.push(line),
    });
    const app = Fastify({ loggerInstance: logger, disableRequestLogging: true });
    installRequestLog(app, { accessLog: false, slowMs: 30 });
    app.get('/slow', async () => {
      await sleep(60);
      return { ok: true };
    });
    app.get('/fast', async () => ({ ok: true }));
    try {
      expect((await app.inject({ method: 'GET', url: '/fast' })).statusCode).toBe(200);
      expect(written).toEqual([]);
      expect((await app.inject({ method: 'GET', url: '/slow' })).statusCode).toBe(200);
      expect(linesOf(written.join(''))).toEqual([
        expect.objectContaining({
          level: 40,
          msg: 'slow request',
          req: { method: 'GET', path: '/slow' },
          res: { status: 200 },
        }),
      ]);
    } finally {
      await app.close();
    }
  });
});

describe('the access-log setting', () => {
  it('is off by default, on when set, and on at debug and trace', () => {
    const at = (flags: Parameters<typeof loadConfig>[0]) => logsEveryRequest(loadConfig(flags, {}));
    expect(at({})).toBe(false);
    expect(at({ accessLog: true })).toBe(true);
    expect(at({ accessLog: 'on' })).toBe(true);
    expect(at({ accessLog: 'off', logLevel: 'warn' })).toBe(false);
    expect(at({ logLevel: 'debug' })).toBe(true);
    expect(loadConfig({}, { TOKENVAULT_ACCESS_LOG: '1' }).accessLog).toBe(true);
    expect(() => loadConfig({ accessLog: 'yes please' }, {})).toThrow(/--access-log/);
  });
});
