import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestVault, startTestVault } from '../helpers/vault.js';

describe('operations endpoints', () => {
  let t: TestVault;
  beforeAll(async () => {
    t = await startTestVault({ settings: { authFailureLimit: '3' } });
  });
  afterAll(() => t.stop());

  it('/healthz answers without a token', async () => {
    const response = await t.request('GET', '/healthz', { token: null });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok' });
  });

  it('/readyz checks the database and the key provider', async () => {
    const response = await t.request('GET', '/readyz', { token: null });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({
      status: 'ready',
      checks: [
        { name: 'database', ok: true },
        { name: 'key_provider', ok: true },
      ],
    });
  });

  it('/metrics speaks Prometheus and counts requests by route and error code', async () => {
    await t.request('GET', '/v1/admin/credentials/missing');
    const response = await t.request('GET', '/metrics', { token: null });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.text).toMatch(
      /tokenvault_http_requests_total\{method="GET",route="\/v1\/admin\/credentials\/:name",status="404"\} 1/,
    );
    expect(response.text).toMatch(/tokenvault_errors_total\{code="credential_not_found"\} 1/);
    expect(response.text).toContain('tokenvault_http_request_duration_seconds_bucket');
    expect(response.text).toContain('tokenvault_process_cpu_seconds_total');
  });

  it('serves OpenAPI at /docs, describing the admin API and its error shape', async () => {
    const ui = await t.request('GET', '/docs/', { token: null });
    expect(ui.status).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
    const spec = (await t.request('GET', '/docs/json', { token: null })).body as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toEqual(
      expect.arrayContaining([
        '/v1/admin/credentials',
        '/v1/admin/credentials/{name}',
        '/v1/admin/tokens',
        '/v1/admin/keys/rotate',
        '/v1/admin/keys/mode',
      ]),
    );
    expect(spec.paths['/v1/admin/credentials']?.post?.responses).toHaveProperty('409');
  });

  it('keeps a caller’s request id and makes one otherwise', async () => {
    const given = await t.request('GET', '/healthz', {
      token: null,
      headers: { 'x-request-id': 'trace-1234abcd' },
    });
    expect(given.headers['x-request-id']).toBe('trace-1234abcd');
    const bad = await t.request('GET', '/healthz', { token: null, headers: { 'x-request-id': 'no\u00e9' } });
    expect(bad.headers['x-request-id']).toMatch(/^req_/);
  });

  it('keeps a short caller id (1 to 128 visible ASCII characters) and replaces one that is not safe', async () => {
    const idFor = async (id: string) =>
      (await t.request('GET', '/healthz', { token: null, headers: { 'x-request-id': id } })).headers[
        'x-request-id'
      ];
    expect(await idFor('ab/1')).toBe('ab/1');
    expect(await idFor('x')).toBe('x');
    const longest = 'a'.repeat(128);
    expect(await idFor(longest)).toBe(longest);
    expect(await idFor('a'.repeat(129))).toMatch(/^req_/);
    expect(await idFor('two words')).toMatch(/^req_/);
    const refused = await t.request('GET', '/v1/admin/tokens', {
      token: 'tv_admin_other_wrong',
      headers: { 'x-request-id': 'c0ff' },
    });
    expect((refused.body as { error: { request_id: string } }).error.request_id).toBe('c0ff');
  });

  it('refuses a body that is not JSON with 415 unsupported_media_type', async () => {
    const response = await t.request('POST', '/v1/admin/credentials', {
      rawBody: 'name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(response.status).toBe(415);
    expect((response.body as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });

  it('marks admin responses no-store', async () => {
    const response = await t.request('GET', '/v1/admin/credentials');
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('rate-limits a failing admin token, without locking out the right token from the same address', async () => {
    for (let i = 0; i < 3; i++) {
      expect((await t.request('GET', '/v1/admin/credentials', { token: 'tv_admin_wrong' })).status).toBe(401);
    }
    const limited = await t.request('GET', '/v1/admin/credentials', { token: 'tv_admin_wrong' });
    expect(limited.status).toBe(429);
    expect((limited.body as { error: { code: string } }).error.code).toBe('too_many_auth_failures');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    // Issue 12 item 6: someone else's wrong token does not refuse the right one from the same address.
    expect((await t.request('GET', '/v1/admin/credentials')).status).toBe(200);
  });

  it('refuses every token from an address that fails with many different tokens (brute force)', async () => {
    const address = '127.0.0.9';
    const asAddress = (token: string) =>
      t.vault.app.inject({
        method: 'GET',
        url: '/v1/admin/credentials',
        remoteAddress: address,
        headers: { authorization: `Bearer ${token}` },
      });
    // The limit is 3 per token; the address as a whole may fail 3 × 10 times.
    for (let i = 0; i < 30; i++) expect((await asAddress(`tv_admin_guess${i}`)).statusCode).toBe(401);
    expect((await asAddress(`tv_admin_guess-next`)).statusCode).toBe(429);
    expect((await asAddress(t.rootToken)).statusCode).toBe(429);
    const other = await t.vault.app.inject({
      method: 'GET',
      url: '/v1/admin/credentials',
      remoteAddress: '127.0.0.2',
      headers: { authorization: `Bearer ${t.rootToken}` },
    });
    expect(other.statusCode).toBe(200);
  });
});
