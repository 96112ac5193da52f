import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { createVaultClient, isVaultClientError, VaultClientError } from '../../src/sdk/index.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, grant } from '../retrieval/retrieval-fixtures.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A real local HTTP server whose answers each test scripts, counting the requests it gets. */
const scriptedServer = async () => {
  let handlers: Handler[] = [];
  const requests: { url: string; authorization: string | undefined }[] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ url: req.url ?? '', authorization: req.headers.authorization });
    const handler = handlers.length > 1 ? handlers.shift()! : handlers[0];
    if (!handler) {
      res.writeHead(500).end();
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** Answers in order; the last one repeats. */
    script(...next: Handler[]) {
      handlers = next;
      requests.length = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

const json =
  (status: number, body: unknown, delayMs = 0): Handler =>
  (_req, res) => {
    setTimeout(() => {
      res
        .writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'req_test_1234' })
        .end(JSON.stringify(body));
    }, delayMs);
  };
const token = (expiresAt: string | null, accessToken = 'tok-1', delayMs = 0) =>
  json(
    200,
    { access_token: accessToken, token_type: 'Bearer', expires_at: expiresAt, scopes: ['read'] },
    delayMs,
  );
const refusal = (status: number, code: string) =>
  json(status, { error: { code, message: `refused: ${code}`, request_id: 'req_refused_42' } });
const dropConnection: Handler = (req) => req.socket.destroy();

const start = '2026-06-01T12:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(start) + seconds * 1000).toISOString();

describe('SDK: createVaultClient', () => {
  let server: Awaited<ReturnType<typeof scriptedServer>>;
  const clock = fixedClock(start);
  const sleeps: number[] = [];

  const client = (extra: Partial<Parameters<typeof createVaultClient>[0]> = {}) =>
    createVaultClient({
      url: server.url,
      agentId: 'agent-42',
      token: 'tv_agent_test',
      clock,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...extra,
    });

  beforeAll(async () => {
    server = await scriptedServer();
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(() => {
    clock.set(start);
    sleeps.length = 0;
  });

  it('calls the seed contract’s endpoint with the agent’s bearer token and the scopes', async () => {
    server.script(token(null));
    const vault = client();
    const credential = await vault.getCredential('slack', { scope: ['write', 'read'] });
    // The wire's own names: what the README destructures, and nothing else when serialized.
    expect(credential).toEqual({
      access_token: 'tok-1',
      token_type: 'Bearer',
      expires_at: null,
      scopes: ['read'],
    });
    expect(Object.keys(credential).sort()).toEqual(['access_token', 'expires_at', 'scopes', 'token_type']);
    expect(server.requests).toEqual([
      {
        url: '/v1/agents/agent-42/credentials/slack?scope=read%2Cwrite',
        authorization: 'Bearer tv_agent_test',
      },
    ]);
  });

  it('caches until refreshSkewSeconds before expires_at (injected clock)', async () => {
    server.script(token(at(120), 'first'), token(at(400), 'second'));
    const vault = client({ refreshSkewSeconds: 30 });
    expect((await vault.getCredential('slack')).access_token).toBe('first');
    clock.set(at(89));
    expect((await vault.getCredential('slack')).access_token).toBe('first');
    expect(server.requests).toHaveLength(1);
    clock.set(at(90));
    expect((await vault.getCredential('slack')).access_token).toBe('second');
    expect(server.requests).toHaveLength(2);
    // Another scope set is another cache entry.
    await vault.getCredential('slack', { scope: 'read' });
    expect(server.requests).toHaveLength(3);
  });

  it('keeps an answer without expires_at for defaultTtlSeconds (60 s)', async () => {
    server.script(token(null));
    const vault = client();
    await vault.getCredential('slack');
    clock.set(at(59));
    await vault.getCredential('slack');
    expect(server.requests).toHaveLength(1);
    clock.set(at(60));
    await vault.getCredential('slack');
    expect(server.requests).toHaveLength(2);
  });

  it('shares one request among concurrent callers', async () => {
    server.script(token(at(3600), 'shared', 50));
    const vault = client();
    const results = await Promise.all(Array.from({ length: 10 }, () => vault.getCredential('slack')));
    expect(new Set(results.map((r) => r.access_token))).toEqual(new Set(['shared']));
    expect(server.requests).toHaveLength(1);
  });

  it('retries 5xx and dropped connections with exponential backoff and jitter, then succeeds', async () => {
    server.script(
      refusal(503, 'audit_unavailable'),
      dropConnection,
      refusal(500, 'internal_error'),
      token(null, 'finally'),
    );
    const vault = client({ random: () => 1, backoff: { baseMs: 100, maxMs: 1000 } });
    expect((await vault.getCredential('slack')).access_token).toBe('finally');
    expect(server.requests).toHaveLength(4);
    expect(sleeps).toEqual([100, 200, 400]);
  });

  it('gives up after `retries` and throws the last error, typed', async () => {
    server.script(refusal(503, 'audit_unavailable'));
    const vault = client({ retries: 2, random: () => 0 });
    const error = await vault.getCredential('slack').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VaultClientError);
    expect(error).toMatchObject({
      code: 'audit_unavailable',
      status: 503,
      requestId: 'req_refused_42',
      retryable: true,
    });
    expect(server.requests).toHaveLength(3);
    expect(sleeps).toEqual([50, 100]);
  });

  it('never retries a 4xx, and never caches a refusal', async () => {
    server.script(refusal(403, 'grant_revoked'), token(null, 'granted-again'));
    const vault = client();
    const error = await vault.getCredential('slack').catch((e: unknown) => e);
    expect(isVaultClientError(error)).toBe(true);
    expect(error).toMatchObject({
      code: 'grant_revoked',
      status: 403,
      requestId: 'req_refused_42',
      retryable: false,
    });
    expect(server.requests).toHaveLength(1);
    expect((await vault.getCredential('slack')).access_token).toBe('granted-again');
    expect(server.requests).toHaveLength(2);
  });

  it('drops a cached credential when a forced refresh is refused', async () => {
    server.script(token(at(3600), 'cached'), refusal(403, 'grant_revoked'), token(at(3600), 'new'));
    const vault = client();
    await vault.getCredential('slack');
    await expect(vault.getCredential('slack', { forceRefresh: true })).rejects.toMatchObject({
      code: 'grant_revoked',
    });
    expect((await vault.getCredential('slack')).access_token).toBe('new');
  });

  it('reports an unreachable vault as network_error after retrying', async () => {
    const vault = createVaultClient({
      url: 'http://127.0.0.1:9',
      agentId: 'agent-42',
      token: 't',
      retries: 1,
      sleep: async () => {},
    });
    await expect(vault.getCredential('slack')).rejects.toMatchObject({
      code: 'network_error',
      status: 0,
      requestId: null,
    });
  });

  it('asks getToken for a token on every request', async () => {
    server.script(token(null));
    let n = 0;
    const vault = client({ token: undefined, getToken: async () => `tv_agent_${++n}` });
    await vault.getCredential('a');
    await vault.getCredential('b');
    expect(server.requests.map((r) => r.authorization)).toEqual(['Bearer tv_agent_1', 'Bearer tv_agent_2']);
  });

  it('refuses bad options up front', () => {
    expect(() => createVaultClient({ url: 'vault:8200', agentId: 'a', token: 't' })).toThrow(
      /http\(s\) base URL/,
    );
    expect(() => createVaultClient({ url: 'http://x', agentId: 'a' })).toThrow(
      /exactly one of token and getToken/,
    );
  });
});

describe('SDK against a real vault', () => {
  let t: TestVault;
  let url: string;
  let apiKey: string;

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
    await addCredential(t, {
      name: 'slack',
      type: 'api_key',
      secret: { api_key: 'xoxb-sdk' },
      scopes: ['read', 'write'],
    });
    apiKey = (await addAgent(t, 'agent-42')).apiKey;
    await grant(t, { agent: 'agent-42', credential: 'slack', ttl: '1h', reveal: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('gets a granted credential, narrowed, and throws the vault’s code for a refusal', async () => {
    const vault = createVaultClient({ url, agentId: 'agent-42', token: apiKey });
    const slack = await vault.getCredential('slack', { scope: 'read' });
    expect(slack).toMatchObject({ access_token: 'xoxb-sdk', token_type: 'Bearer', scopes: ['read'] });
    expect(Date.parse(slack.expires_at!)).toBeGreaterThan(Date.now());
    // The first release's camelCase names still answer, as deprecated getters.
    expect(slack.accessToken).toBe('xoxb-sdk');
    expect(slack.tokenType).toBe('Bearer');
    expect(slack.expiresAt).toEqual(new Date(slack.expires_at!));
    expect(JSON.parse(JSON.stringify(slack))).not.toHaveProperty('accessToken');
    const refused = await vault.getCredential('github').catch((e: unknown) => e as VaultClientError);
    expect(refused).toMatchObject({ code: 'credential_not_granted', status: 403 });
    expect((refused as VaultClientError).requestId).toMatch(/^req_/);
    await expect(vault.getCredential('slack', { scope: 'admin' })).rejects.toMatchObject({
      code: 'scope_not_granted',
    });
  });

  it('is importable as `token-vault/sdk` from the built package', async () => {
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const script = `import('token-vault/sdk').then(async (sdk) => { const v = sdk.createVaultClient({ url: process.env.URL, agentId: 'agent-42', token: process.env.KEY }); const c = await v.getCredential('slack'); process.stdout.write(c.access_token + ' ' + typeof sdk.VaultClientError); })`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: root,
      env: { PATH: process.env.PATH, URL: url, KEY: apiKey },
    });
    expect(stdout).toBe('xoxb-sdk function');
  });
});
