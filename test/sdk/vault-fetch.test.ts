import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVaultClient, type VaultClient, VaultClientError } from '../../src/sdk/index.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startUpstream } from '../proxy/proxy-upstream.js';
import { addAgent, auditEventsOf, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';

/**
 * `vault.fetch` against a real vault listening on a socket and a real upstream on 127.0.0.1: calls go
 * through the HTTP proxy, the vault's refusals come back as the SDK's typed errors, and only
 * idempotent calls with a replayable body are retried (the waits are recorded, not slept).
 */

const canary = 'sdk-fetch-canary-5d2e9a';

describe('SDK: vault.fetch through the HTTP proxy', () => {
  let t: TestVault;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let url: string;
  let agent: TestAgent;
  let waits: number[];

  const client = (options: { retries?: number } = {}): VaultClient =>
    createVaultClient({
      url,
      agentId: agent.name,
      token: agent.apiKey,
      retries: options.retries ?? 2,
      sleep: async (ms) => void waits.push(ms),
      random: () => 0.5,
    });
  const proxied = async (name: string, baseHost = upstream.host) => {
    await t.request('POST', '/v1/admin/credentials', {
      body: {
        name,
        type: 'api_key',
        secret: { api_key: canary },
        base_url: `http://${baseHost}/api`,
        allowed_hosts: [baseHost],
      },
    });
    // Proxy-only: the agent never holds the key.
    return grant(t, { agent: agent.name, credential: name, until_revoked: true });
  };
  const refusalOf = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected a refusal');
      },
      (error: unknown) => error as VaultClientError,
    );

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await startTestVault();
    url = await t.vault.listen();
    agent = await addAgent(t, 'sdk-fetch-agent');
    await proxied('api');
  });
  afterAll(async () => {
    await t?.stop();
    await upstream?.close();
  });

  it('calls the API with the credential injected by the vault, never the agent’s key', async () => {
    waits = [];
    const before = upstream.seen.length;
    const response = await client().fetch('api', '/echo?q=1', { headers: { 'x-custom': 'kept' } });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-tokenvault-proxied')).toBe('1');
    const seen = upstream.seen[before]!;
    expect(seen.url).toBe('/api/echo?q=1');
    expect(seen.headers.authorization).toBe(`Bearer ${canary}`);
    expect(seen.headers['x-custom']).toBe('kept');
    expect(JSON.stringify(seen.rawHeaders)).not.toContain(agent.apiKey);
    // The upstream echoed the key: the vault redacted it.
    const text = await response.text();
    expect(text).toContain('Bearer [REDACTED]');
    expect(text).not.toContain(canary);
    expect(waits).toEqual([]);
  });

  it('throws the vault’s refusals typed, as getCredential does, and retries none of them', async () => {
    waits = [];
    const vault = client();
    const notGranted = await refusalOf(vault.fetch('nope', '/echo'));
    expect(notGranted).toBeInstanceOf(VaultClientError);
    expect(notGranted).toMatchObject({ code: 'credential_not_granted', status: 403, retryable: false });
    expect(notGranted.requestId).toMatch(/^req_/);
    expect(await auditEventsOf(t, notGranted.requestId!)).toMatchObject([
      { action: 'credential.proxy', decision: 'deny', reason: 'credential_not_granted' },
    ]);
    // fetch would resolve `..` (and `%2e%2e`) before sending: the SDK refuses them; the vault the rest.
    for (const path of ['/a/../../../v1/admin/credentials', '/a/%2E%2e/b', '/./x']) {
      expect(await refusalOf(vault.fetch('api', path)), path).toMatchObject({ code: 'invalid_options' });
    }
    expect(await refusalOf(vault.fetch('api', '/a%2Fb'))).toMatchObject({ code: 'proxy_path_refused' });
    expect(await refusalOf(vault.fetch('api', '/echo', { user: 'bob' }))).toMatchObject({
      code: 'credential_not_granted',
    });
    expect(await refusalOf(vault.fetch('api', 'no-slash'))).toMatchObject({ code: 'invalid_options' });
    expect(waits).toEqual([]);
  });

  it('stops on the next call after the grant is revoked', async () => {
    const created = await proxied('revocable');
    const vault = client();
    expect((await vault.fetch('revocable', '/echo')).status).toBe(200);
    expect((await t.request('DELETE', `/v1/admin/grants/${created.id}`)).status).toBe(200);
    expect(await refusalOf(vault.fetch('revocable', '/echo'))).toMatchObject({
      code: 'grant_revoked',
      status: 403,
    });
  });

  it('returns the upstream’s own errors as responses; retries an idempotent 429 after its Retry-After', async () => {
    waits = [];
    let before = upstream.seen.length;
    const limited = await client().fetch('api', '/limited');
    // Two retries, each after the upstream's Retry-After: 7, then the last answer as it is.
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    expect(await limited.text()).toBe('slow down');
    expect(waits).toEqual([7000, 7000]);
    expect(upstream.seen.length).toBe(before + 3);

    // POST is not idempotent: one call, the 429 returned.
    waits = [];
    before = upstream.seen.length;
    const posted = await client().fetch('api', '/limited', { method: 'POST', body: '{}' });
    expect(posted.status).toBe(429);
    expect(waits).toEqual([]);
    expect(upstream.seen.length).toBe(before + 1);

    // A redirect is the upstream's answer too: returned, not followed (and not thrown).
    const redirect = await client().fetch('api', '/redirect');
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get('location')).toBe('http://other.invalid/next');
  });

  it('retries a vault 5xx (upstream unreachable) only for an idempotent method', async () => {
    const closed = await startUpstream();
    await closed.close();
    await proxied('gone', closed.host);
    waits = [];
    const get = await refusalOf(client().fetch('gone', '/x'));
    expect(get).toMatchObject({ code: 'upstream_unreachable', status: 502, retryable: true });
    // Backoff 100 ms then 200 ms, with half of each random (random() = 0.5).
    expect(waits).toEqual([75, 150]);

    waits = [];
    const put = await refusalOf(client().fetch('gone', '/x', { method: 'PUT', body: 'same' }));
    expect(put.code).toBe('upstream_unreachable');
    expect(waits).toHaveLength(2);

    waits = [];
    const patch = await refusalOf(client().fetch('gone', '/x', { method: 'PATCH', body: 'once' }));
    expect(patch).toMatchObject({ code: 'upstream_unreachable', retryable: false });
    expect(waits).toEqual([]);
  });

  it('reports an unreachable vault as network_error, retried only when idempotent', async () => {
    const vault = createVaultClient({
      url: `http://${(await startUpstream().then(async (u) => (await u.close(), u))).host}`,
      agentId: agent.name,
      token: agent.apiKey,
      retries: 1,
      sleep: async (ms) => void waits.push(ms),
    });
    waits = [];
    expect(await refusalOf(vault.fetch('api', '/echo'))).toMatchObject({ code: 'network_error', status: 0 });
    expect(waits).toHaveLength(1);
    waits = [];
    expect(await refusalOf(vault.fetch('api', '/echo', { method: 'POST' }))).toMatchObject({
      code: 'network_error',
      retryable: false,
    });
    expect(waits).toEqual([]);
  });

  it('streams a multi-megabyte upload and download, never retrying a streamed body', async () => {
    const size = 8 * 1024 * 1024;
    const chunk = new Uint8Array(64 * 1024).fill(0x62);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });
    waits = [];
    const upload = await client().fetch('api', '/upload', {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(upload.status).toBe(200);
    expect(await upload.json()).toEqual({ bytes: size });

    const download = await client().fetch('api', `/download?bytes=${size}`);
    expect(download.status).toBe(200);
    let received = 0;
    const reader = download.body!.getReader();
    for (let next = await reader.read(); !next.done; next = await reader.read())
      received += next.value.length;
    expect(received).toBe(size);
    expect(waits).toEqual([]);
  });
});
