import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { createOutboundGuard } from '../../src/net/outbound-guard.js';
import { shippedProviderCatalog } from '../../src/oauth/provider-catalog.js';
import { type ApiBaseQuery, catalogApiBase } from '../../src/proxy/api-base.js';
import { createProxyService, type ProxyRequest } from '../../src/proxy/proxy-service.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, auditEventsOf, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { startUpstream } from './proxy-upstream.js';

/**
 * The proxy's `apiBase` hook on a real vault's services: an OAuth credential with no base URL of its
 * own goes where its provider's API is (the catalog's, here through a fallback pointed at the local
 * upstream, as the OAuth apps will point it at a provider's), still within its allowed hosts and
 * still one audited call; its own base URL, once set, wins.
 */
describe('HTTP proxy: the API base URL fallback', () => {
  let t: TestVault;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let agent: TestAgent;
  const asked: ApiBaseQuery[] = [];

  const proxyWith = (apiBase: Parameters<typeof createProxyService>[0]['apiBase']) => {
    const { access, credentials, audit, policyEnforcement } = t.vault.services;
    return createProxyService({
      store: t.vault.store,
      access,
      credentials,
      audit,
      policiesFor: policyEnforcement.policiesFor,
      clock: systemClock,
      outbound: createOutboundGuard(),
      apiBase,
    });
  };
  const call = async (proxy: ReturnType<typeof proxyWith>, service: string, requestId: string) => {
    const principal = await t.vault.services.agentAuthenticator.authenticate({
      token: agent.apiKey,
      clientIp: '127.0.0.1',
    });
    const request: ProxyRequest = {
      principal,
      service,
      method: 'GET',
      rawPath: '/echo',
      rawQuery: 'q=1',
      endUser: undefined,
      rawHeaders: [],
      body: undefined,
      client: { ip: '127.0.0.1', userAgent: null },
      requestId,
    };
    return proxy.forward(request);
  };
  const addOAuth = async (name: string, extra: Record<string, unknown> = {}) => {
    const response = await t.request('POST', '/v1/admin/credentials', {
      body: { name, type: 'oauth2', secret: { access_token: 'oauth-canary-token-61b2' }, ...extra },
    });
    expect(response.status, response.text).toBe(201);
    await grant(t, { agent: agent.name, credential: name, until_revoked: true });
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    t = await startTestVault();
    agent = await addAgent(t, 'api-base-agent');
  });
  afterAll(async () => {
    await t?.stop();
    await upstream?.close();
  });

  it('sends an OAuth credential without a base URL to its provider’s API', async () => {
    await addOAuth('linked', { allowed_hosts: [upstream.host] });
    // The catalog entry a linked credential names, with the local upstream standing in for the API.
    const catalog = {
      get: (name: string) => {
        const github = shippedProviderCatalog().get('github')!;
        return name === 'local'
          ? { ...github, api: { ...github.api!, baseUrl: `http://${upstream.host}/api` } }
          : undefined;
      },
    };
    const proxy = proxyWith(
      catalogApiBase(catalog, async (credential) => {
        asked.push(credential);
        return { provider: 'local' };
      }),
    );
    const before = upstream.seen.length;
    const answer = await call(proxy, 'linked', 'req_api_base_1');
    expect(answer.status).toBe(200);
    expect(upstream.seen[before]).toMatchObject({
      url: '/api/echo?q=1',
      headers: { authorization: 'Bearer oauth-canary-token-61b2' },
    });
    expect(asked).toEqual([{ namespace: 'default', credentialId: expect.any(String), type: 'oauth2' }]);
    expect(await auditEventsOf(t, 'req_api_base_1')).toMatchObject([
      { action: 'credential.proxy', decision: 'allow', details: { upstream_host: upstream.host } },
    ]);

    // The credential's own base URL wins: the hook is not asked again.
    const updated = await t.request('PATCH', '/v1/admin/credentials/linked', {
      body: { base_url: `http://${upstream.host}/own` },
    });
    expect(updated.status, updated.text).toBe(200);
    await call(proxy, 'linked', 'req_api_base_2');
    expect(upstream.seen.at(-1)?.url).toBe('/own/echo?q=1');
    expect(asked).toHaveLength(1);
  });

  it('still checks the allowed hosts and the outbound guard; without a hook it is not configured', async () => {
    const toUpstream = proxyWith(async () => `http://${upstream.host}/api`);
    await addOAuth('unlisted');
    const before = upstream.seen.length;
    // No allowed hosts: the loopback upstream is not reachable, whoever named it.
    await expect(call(toUpstream, 'unlisted', 'req_api_base_3')).rejects.toMatchObject({
      code: 'proxy_destination_refused',
    });
    await addOAuth('elsewhere', { allowed_hosts: ['api.github.com'] });
    await expect(call(toUpstream, 'elsewhere', 'req_api_base_4')).rejects.toMatchObject({
      code: 'proxy_host_not_allowed',
    });
    expect(upstream.seen.length).toBe(before);
    await expect(call(proxyWith(undefined), 'unlisted', 'req_api_base_5')).rejects.toMatchObject({
      code: 'proxy_not_configured',
    });
  });
});
