import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EveryStore, FreshDatabase } from '../helpers/stores.js';
import {
  addAgent,
  auditEventsOf,
  breakAuditWrites,
  errorOf,
  grant,
  retrieve,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { call, rawCall, startUpstream, streamOf } from './proxy-upstream.js';

/**
 * The HTTP proxy end to end, on one store: a real vault listening on a socket, a real upstream on
 * 127.0.0.1 (named in each credential's allowed hosts, so the outbound guard lets the loopback address
 * through), and the audit log read back from the store.
 */

const canary = 'canary-secret-7f3a9c1d2e';
const basicPassword = 'basic-canary-pw-91ab';

/** The upstream's `/slow` outlasts this: the proxy answers `upstream_timeout` first. */
const proxyTimeoutMs = 1500;

export const proxyContract = (store: EveryStore) => {
  let database: FreshDatabase;
  let t: TestVault;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let base: URL;
  let agent: TestAgent;

  const addCredential = async (body: Record<string, unknown>) => {
    const response = await t.request('POST', '/v1/admin/credentials', { body });
    expect(response.status, response.text).toBe(201);
  };
  /** A credential at the local upstream, granted to the agent proxy-only. */
  const proxied = async (name: string, extra: Record<string, unknown> = {}) => {
    await addCredential({
      name,
      type: 'api_key',
      secret: { api_key: canary },
      base_url: `http://${upstream.host}/api`,
      allowed_hosts: [upstream.host],
      ...extra,
    });
    return grant(t, { agent: agent.name, credential: name, until_revoked: true });
  };
  const auth = (key = agent.apiKey) => ({ authorization: `Bearer ${key}` });
  const eventsOf = (response: { headers: Record<string, unknown> }) =>
    auditEventsOf(t, String(response.headers['x-request-id']));
  const onlyEventOf = async (response: { headers: Record<string, unknown> }) => {
    const events = await eventsOf(response);
    expect(events, JSON.stringify(events)).toHaveLength(1);
    return events[0]!;
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    database = await store.fresh();
    t = await startTestVault({
      databaseUrl: database.databaseUrl,
      settings: { proxyTimeoutMs: String(proxyTimeoutMs) },
    });
    base = new URL(await t.vault.listen());
    agent = await addAgent(t, 'proxy-agent');
  });
  afterAll(async () => {
    await t?.stop();
    await database?.cleanup();
    await upstream?.close();
  });

  it('injects the credential, never forwards the agent’s key, and redacts an echoed secret', async () => {
    await proxied('echo');
    const before = upstream.seen.length;
    const response = await call(base, 'GET', '/v1/proxy/echo/v1/echo?x=1&x=2', {
      headers: {
        ...auth(),
        cookie: 'vault=1',
        'x-tokenvault-namespace': 'default',
        'x-custom': 'kept',
        connection: 'x-hop',
        'x-hop': 'dropped',
      },
    });
    expect(response.status, response.text).toBe(200);
    const seen = upstream.seen[before]!;
    expect(seen.url).toBe('/api/v1/echo?x=1&x=2');
    expect(seen.headers.authorization).toBe(`Bearer ${canary}`);
    expect(seen.headers.host).toBe(upstream.host);
    expect(seen.headers['x-custom']).toBe('kept');
    for (const dropped of ['cookie', 'x-tokenvault-namespace', 'x-hop']) {
      expect(seen.headers[dropped], dropped).toBeUndefined();
    }
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(agent.apiKey);

    // The upstream echoed the secret in a header and in the body: the agent gets neither.
    expect(response.text).not.toContain(canary);
    expect(JSON.stringify(response.headers)).not.toContain(canary);
    expect(response.headers['x-echo-authorization']).toBe('Bearer [REDACTED]');
    expect(response.text).toContain('Bearer [REDACTED]');
    expect(response.headers['set-cookie']).toBeUndefined();
    expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(response.text));

    const event = await onlyEventOf(response);
    expect(event).toMatchObject({ action: 'credential.proxy', decision: 'allow', target_id: 'echo' });
    expect(event.details).toMatchObject({
      method: 'GET',
      upstream_host: upstream.host,
      path: '/api/v1/echo',
      status: 200,
      bytes_in: 0,
      bytes_out: Buffer.byteLength(response.text),
      body_scanned: true,
      // The echo holds the Authorization header twice (parsed and raw), plus the echoed header.
      redactions: 3,
    });
    expect(typeof event.details.latency_ms).toBe('number');
    expect(JSON.stringify(event)).not.toContain(canary);
    expect(t.logs()).not.toContain(canary);
  });

  it('injects Basic auth and redacts its base64 and the password', async () => {
    await addCredential({
      name: 'basic',
      type: 'basic',
      secret: { username: 'alice', password: basicPassword },
      base_url: `http://${upstream.host}/api`,
      allowed_hosts: [upstream.host],
    });
    await grant(t, { agent: agent.name, credential: 'basic', until_revoked: true });
    const before = upstream.seen.length;
    const response = await call(base, 'GET', `/v1/proxy/basic/echo?p=${basicPassword}`, { headers: auth() });
    expect(response.status, response.text).toBe(200);
    const encoded = Buffer.from(`alice:${basicPassword}`).toString('base64');
    expect(upstream.seen[before]!.headers.authorization).toBe(`Basic ${encoded}`);
    expect(response.text).not.toContain(encoded);
    expect(response.text).not.toContain(basicPassword);
    expect(t.logs()).not.toContain(basicPassword);
  });

  it('injects a query parameter, replacing one the agent sent, and keeps ?user= for the vault', async () => {
    await proxied('query', { injection: { in: 'query', name: 'key', template: '{{api_key}}' } });
    const before = upstream.seen.length;
    const response = await call(base, 'GET', '/v1/proxy/query/echo?key=mine&q=a%20b', { headers: auth() });
    expect(response.status, response.text).toBe(200);
    const seen = upstream.seen[before]!;
    expect(seen.url).toBe(`/api/echo?q=a%20b&key=${canary}`);
    expect(seen.headers.authorization).toBeUndefined();
    expect(response.text).not.toContain(canary);
    const event = await onlyEventOf(response);
    expect(JSON.stringify(event)).not.toContain(canary);

    // No per-user credential matches this user.
    const forUser = await call(base, 'GET', '/v1/proxy/query/echo?user=bob', { headers: auth() });
    expect(forUser.status).toBe(403);
    expect(errorOf(JSON.parse(forUser.text)).code).toBe('credential_not_granted');
    expect(upstream.seen.length).toBe(before + 1);
  });

  it('applies several injections: a key and a secret in two headers, plus a query parameter', async () => {
    const apiSecret = 'second-canary-4b7e21';
    await addCredential({
      name: 'two-part',
      type: 'custom',
      secret: { api_key: canary, api_secret: apiSecret },
      base_url: `http://${upstream.host}/api`,
      allowed_hosts: [upstream.host],
      injections: [
        { in: 'header', name: 'X-Api-Key', template: '{{api_key}}' },
        { in: 'header', name: 'X-Api-Secret', template: '{{api_secret}}' },
        { in: 'query', name: 'sig', template: '{{api_secret}}' },
      ],
    });
    await grant(t, { agent: agent.name, credential: 'two-part', until_revoked: true });
    const shown = await t.request('GET', '/v1/admin/credentials/two-part');
    expect(shown.body).toMatchObject({
      injection: { in: 'header', name: 'X-Api-Key' },
      injections: [{ name: 'X-Api-Key' }, { name: 'X-Api-Secret' }, { in: 'query', name: 'sig' }],
    });

    const before = upstream.seen.length;
    const response = await call(base, 'GET', '/v1/proxy/two-part/echo?q=1', {
      headers: { ...auth(), 'x-api-secret': 'agent-chosen' },
    });
    expect(response.status, response.text).toBe(200);
    const seen = upstream.seen[before]!;
    expect(seen.headers['x-api-key']).toBe(canary);
    // The agent cannot choose the value of an injected header.
    expect(seen.headers['x-api-secret']).toBe(apiSecret);
    expect(seen.url).toBe(`/api/echo?q=1&sig=${apiSecret}`);
    expect(seen.headers.authorization).toBeUndefined();
    for (const secret of [canary, apiSecret]) {
      expect(response.text).not.toContain(secret);
      expect(JSON.stringify(response.headers)).not.toContain(secret);
      expect(JSON.stringify(await eventsOf(response))).not.toContain(secret);
      expect(t.logs()).not.toContain(secret);
    }

    // Back to one: the list is replaced, and reads back as one.
    const updated = await t.request('PATCH', '/v1/admin/credentials/two-part', {
      body: { injection: { in: 'header', name: 'X-Api-Key', template: '{{api_key}}' } },
    });
    expect(updated.status, updated.text).toBe(200);
    expect((updated.body as { injections: unknown[] }).injections).toHaveLength(1);
    const both = await t.request('PATCH', '/v1/admin/credentials/two-part', {
      body: {
        injection: { in: 'header', name: 'X-Api-Key', template: '{{api_key}}' },
        injections: [{ in: 'header', name: 'X-Api-Key', template: '{{api_key}}' }],
      },
    });
    expect(both.status).toBe(400);
    expect(errorOf(both.body).code).toBe('invalid_injection');
  });

  it('answers 504 upstream_timeout when the upstream does not answer in time, and records it', async () => {
    await proxied('slow');
    const started = Date.now();
    const response = await call(base, 'GET', `/v1/proxy/slow/slow?ms=${proxyTimeoutMs * 20}`, {
      headers: auth(),
    });
    expect(response.status, response.text).toBe(504);
    expect(errorOf(JSON.parse(response.text)).code).toBe('upstream_timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(proxyTimeoutMs - 50);
    expect(await onlyEventOf(response)).toMatchObject({
      action: 'credential.proxy',
      decision: 'deny',
      reason: 'upstream_timeout',
    });
    // An upstream that answers within the timeout is not cut off.
    expect((await call(base, 'GET', '/v1/proxy/slow/slow?ms=50', { headers: auth() })).status).toBe(200);
  });

  it('does not follow a redirect to another host, so the credential never reaches it', async () => {
    const other = await startUpstream();
    try {
      await proxied('redirect-away', { allowed_hosts: [upstream.host, other.host] });
      const to = encodeURIComponent(`http://${other.host}/api/echo`);
      const response = await call(base, 'GET', `/v1/proxy/redirect-away/redirect?to=${to}`, {
        headers: auth(),
      });
      expect(response.status).toBe(302);
      expect(response.headers.location).toBe(`http://${other.host}/api/echo`);
      // Even a host the credential lists is not called on the upstream's say-so.
      expect(other.seen).toHaveLength(0);
    } finally {
      await other.close();
    }
  });

  it('works with a proxy-only grant, which retrieval still refuses', async () => {
    await proxied('proxy-only');
    expect((await call(base, 'GET', '/v1/proxy/proxy-only/echo', { headers: auth() })).status).toBe(200);
    const revealed = await retrieve(t, agent, { agent: agent.name, service: 'proxy-only' });
    expect(revealed.status).toBe(403);
    expect(errorOf(revealed.body).code).toBe('reveal_not_granted');
  });

  it('passes a 429 and its Retry-After through', async () => {
    await proxied('limited');
    const response = await call(base, 'GET', '/v1/proxy/limited/limited', { headers: auth() });
    expect(response.status).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.text).toBe('slow down');
  });

  it('returns a redirect as it is and follows none', async () => {
    await proxied('redirect');
    const before = upstream.seen.length;
    const response = await call(base, 'GET', '/v1/proxy/redirect/redirect', { headers: auth() });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('http://other.invalid/next');
    expect(upstream.seen.length).toBe(before + 1);
  });

  it('stops on the next call after the grant is revoked, and after the kill switch', async () => {
    const created = await proxied('revocable');
    const path = '/v1/proxy/revocable/echo';
    expect((await call(base, 'GET', path, { headers: auth() })).status).toBe(200);
    expect((await t.request('DELETE', `/v1/admin/grants/${created.id}`)).status).toBe(200);
    const before = upstream.seen.length;
    const revoked = await call(base, 'GET', path, { headers: auth() });
    expect(revoked.status).toBe(403);
    expect(errorOf(JSON.parse(revoked.text)).code).toBe('grant_revoked');
    expect(await onlyEventOf(revoked)).toMatchObject({ decision: 'deny', reason: 'grant_revoked' });

    const other = await addAgent(t, 'kill-switch-agent');
    await grant(t, { agent: other.name, credential: 'revocable', until_revoked: true });
    expect((await call(base, 'GET', path, { headers: auth(other.apiKey) })).status).toBe(200);
    expect((await t.request('POST', '/v1/admin/revoke-all')).status).toBe(200);
    const killed = await call(base, 'GET', path, { headers: auth(other.apiKey) });
    expect(killed.status).toBe(401);
    expect(upstream.seen.length).toBe(before + 1);
    // The kill switch revoked the first agent's key too: a fresh one for the rest of the suite.
    agent = await addAgent(t, 'proxy-agent-2');
  });

  describe('refusals, each with its own code, audited, and nothing sent upstream', () => {
    const refused = async (
      path: string,
      code: string,
      status: number,
      options: { headers?: Record<string, string> } = {},
    ) => {
      const before = upstream.seen.length;
      const response = await call(base, 'GET', path, { headers: { ...auth(), ...options.headers } });
      expect(response.status, response.text).toBe(status);
      expect(errorOf(JSON.parse(response.text)).code).toBe(code);
      const event = await onlyEventOf(response);
      expect(event).toMatchObject({ action: 'credential.proxy', decision: 'deny', reason: code });
      expect(JSON.stringify(event)).not.toContain(canary);
      expect(upstream.seen.length).toBe(before);
      return event;
    };

    it('refuses a path that could leave the base URL', async () => {
      await proxied('paths');
      for (const path of [
        '/v1/proxy/paths/a/../../admin',
        '/v1/proxy/paths/%2e%2e/admin',
        '/v1/proxy/paths/a/.%2E/b',
        '/v1/proxy/paths/a%2Fb',
        '/v1/proxy/paths/a%5cb',
        '/v1/proxy/paths/https://evil.example/x',
        '/v1/proxy/paths//evil.example/x',
      ]) {
        await refused(path, 'proxy_path_refused', 400);
      }
    });

    it('refuses an encoded CR or LF in the path (header splitting upstream), with its own code', async () => {
      await proxied('crlf');
      for (const path of ['/v1/proxy/crlf/a%0d%0aX-Injected:%201', '/v1/proxy/crlf/a%0Ab']) {
        await refused(path, 'proxy_path_refused', 400);
      }
    });

    it('refuses a base URL host outside the credential’s allowed hosts', async () => {
      await addCredential({
        name: 'elsewhere',
        type: 'api_key',
        secret: { api_key: canary },
        base_url: 'https://api.elsewhere.example/v1',
        allowed_hosts: ['api.github.com'],
      });
      await grant(t, { agent: agent.name, credential: 'elsewhere', until_revoked: true });
      const event = await refused('/v1/proxy/elsewhere/x', 'proxy_host_not_allowed', 403);
      expect(event.details).toMatchObject({ upstream_host: 'api.elsewhere.example', path: '/v1/x' });
    });

    it('refuses a loopback upstream the credential does not list', async () => {
      await addCredential({
        name: 'unlisted',
        type: 'api_key',
        secret: { api_key: canary },
        base_url: `https://${upstream.host}/api`,
      });
      await grant(t, { agent: agent.name, credential: 'unlisted', until_revoked: true });
      await refused('/v1/proxy/unlisted/echo', 'proxy_destination_refused', 403);
    });

    it('refuses a credential with no base URL', async () => {
      await addCredential({ name: 'nowhere', type: 'api_key', secret: { api_key: canary } });
      await grant(t, { agent: agent.name, credential: 'nowhere', until_revoked: true });
      await refused('/v1/proxy/nowhere/echo', 'proxy_not_configured', 409);
    });

    it('refuses a request with two Host headers, and one with a CR in a header', async () => {
      await proxied('hosts');
      const before = upstream.seen.length;
      const twoHosts = await rawCall(
        base,
        `GET /v1/proxy/hosts/echo HTTP/1.1\r\nHost: ${base.host}\r\nHost: evil.example\r\nAuthorization: Bearer ${agent.apiKey}\r\nConnection: close\r\n\r\n`,
      );
      expect(twoHosts).toMatch(/^HTTP\/1\.1 400/);
      expect(twoHosts).toContain('proxy_header_refused');
      const requestId = /x-request-id: (\S+)/i.exec(twoHosts)?.[1] ?? '';
      expect(await auditEventsOf(t, requestId)).toMatchObject([
        { action: 'credential.proxy', decision: 'deny', reason: 'proxy_header_refused' },
      ]);

      // One Host naming another server is the agent's view of the vault: it never goes upstream.
      const overridden = await call(base, 'GET', '/v1/proxy/hosts/echo', {
        headers: { ...auth(), host: 'evil.example', 'x-forwarded-host': 'evil.example' },
      });
      expect(overridden.status, overridden.text).toBe(200);
      expect(upstream.seen[before]!.headers.host).toBe(upstream.host);
      expect(upstream.seen[before]!.headers['x-forwarded-host']).toBeUndefined();
      upstream.seen.pop();

      // Node's parser refuses a bare CR in a header value before the vault sees the request.
      const crlf = await rawCall(
        base,
        `GET /v1/proxy/hosts/echo HTTP/1.1\r\nHost: ${base.host}\r\nX-Evil: a\rInjected: b\r\nAuthorization: Bearer ${agent.apiKey}\r\nConnection: close\r\n\r\n`,
      );
      expect(crlf).toMatch(/^HTTP\/1\.1 400/);
      expect(upstream.seen.length).toBe(before);
    });
  });

  it('answers 502 upstream_unreachable when nothing listens, and records it', async () => {
    const closed = await startUpstream();
    await closed.close();
    await addCredential({
      name: 'gone',
      type: 'api_key',
      secret: { api_key: canary },
      base_url: `http://${closed.host}`,
      allowed_hosts: [closed.host],
    });
    await grant(t, { agent: agent.name, credential: 'gone', until_revoked: true });
    const response = await call(base, 'GET', '/v1/proxy/gone/x', { headers: auth() });
    expect(response.status).toBe(502);
    expect(errorOf(JSON.parse(response.text)).code).toBe('upstream_unreachable');
    expect(await onlyEventOf(response)).toMatchObject({ decision: 'deny', reason: 'upstream_unreachable' });
  });

  it('fails closed when the event cannot be written: the upstream’s answer does not reach the agent', async () => {
    await proxied('unaudited');
    const restore = await breakAuditWrites(t);
    try {
      const response = await call(base, 'GET', '/v1/proxy/unaudited/echo', { headers: auth() });
      expect(response.status).toBe(503);
      expect(errorOf(JSON.parse(response.text)).code).toBe('audit_unavailable');
      expect(response.text).not.toContain('Bearer');
    } finally {
      await restore();
    }
  });

  it('streams a large upload and download, recording the bytes of each', async () => {
    // Memory is measured on a separate server process in proxy-memory.test.ts.
    await proxied('bulk');
    const size = 8 * 1024 * 1024;
    const upload = await call(base, 'POST', '/v1/proxy/bulk/upload', {
      headers: { ...auth(), 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: streamOf(size),
    });
    expect(upload.status, upload.text).toBe(200);
    expect(JSON.parse(upload.text)).toEqual({ bytes: size });
    expect((await onlyEventOf(upload)).details).toMatchObject({ bytes_in: size, status: 200 });

    const download = await call(base, 'GET', `/v1/proxy/bulk/download?bytes=${size}`, {
      headers: auth(),
      keep: false,
    });
    expect(download.status).toBe(200);
    expect(download.bytes).toBe(size);
    expect((await onlyEventOf(download)).details).toMatchObject({ bytes_out: size, body_scanned: false });
  });
};
