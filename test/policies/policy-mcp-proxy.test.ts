import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { auditEvents, canary, ok, setUpHttpProxy } from '../mcp-proxy/mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from '../mcp-proxy/sdk-upstream.js';
import { attach, createPolicy, detach } from './policy-fixtures.js';

/**
 * Issue 15: "policy attach NAME … --proxy P | --proxy-key ID". A policy attached to an MCP proxy (or
 * to one of its keys) binds every `tools/call` through `/mcp/{proxy}` (or made with that key), and an
 * attachment to a proxy or key that does not exist is refused like any other unknown target.
 */
describe('policies attached to MCP proxies and proxy keys', () => {
  let t: TestVault;
  let upstream: SdkUpstream;
  let addr: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream();
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    await setUpHttpProxy(t, { name: 'sdk', url: upstream.url, agent: 'mcp-agent' });
    // Nothing here comes from 203.0.113.0/24: a policy allowing only that range refuses every call.
    await createPolicy(t, 'name: office-only\nrules:\n  - ip_allowlist: { cidrs: [203.0.113.0/24] }\n');
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  const newKey = async () => {
    const created = await ok(t, 'POST', '/v1/admin/mcp-proxies/sdk/keys', { agent: 'mcp-agent' });
    return { key: created.key as string, id: created.id as string };
  };

  const connect = async (key: string) => {
    const client = new Client({ name: 'agent', version: '1.0.0' }, { capabilities: {} });
    const transport = new StreamableHTTPClientTransport(new URL(`${addr}/mcp/sdk`), {
      requestInit: { headers: { Authorization: `Bearer ${key}` } },
    });
    await client.connect(transport);
    await client.listTools();
    return client;
  };

  /** A `tools/call` as the agent sees it: the tool's answer, or the refusal it got instead. */
  const call = async (client: Client) => {
    try {
      const result = await client.callTool({ name: 'whoami', arguments: {} });
      return { refused: result.isError === true, text: JSON.stringify(result) };
    } catch (error) {
      return { refused: true, text: String(error) };
    }
  };

  it('refuses to attach to an MCP proxy or a proxy key that does not exist', async () => {
    const proxy = await t.request('POST', '/v1/admin/policies/office-only/attach', {
      body: { kind: 'proxy', target: 'no-such-proxy' },
    });
    expect([proxy.status, (proxy.body as { error: { code: string } }).error.code]).toEqual([
      404,
      'mcp_proxy_not_found',
    ]);
    const key = await t.request('POST', '/v1/admin/policies/office-only/attach', {
      body: { kind: 'proxy_key', target: 'no-such-key' },
    });
    expect([key.status, (key.body as { error: { code: string } }).error.code]).toEqual([
      404,
      'proxy_key_not_found',
    ]);
    const shown = await t.request('GET', '/v1/admin/policies/office-only');
    expect(JSON.stringify(shown.body)).not.toContain('no-such');
  });

  it('refuses a tools/call through the proxy while the policy is attached to it, on the next call', async () => {
    const { key } = await newKey();
    const client = await connect(key);
    const before = await call(client);
    expect(before.refused, before.text).toBe(false);

    await attach(t, 'office-only', 'proxy', 'sdk');
    const refused = await call(client);
    expect(refused.refused, refused.text).toBe(true);
    expect(refused.text).toContain('office-only');
    expect(refused.text).not.toContain(canary);
    const denied = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.reason === 'policy_denied');
    expect(denied).toHaveLength(1);
    // The dry run, naming the proxy by name, finds the attachment (stored by the proxy's id).
    const dryRun = await t.request('POST', '/v1/admin/policies/test', {
      body: { agent: 'mcp-agent', credential: 'upstream-token', proxy: 'sdk', ip: '127.0.0.1' },
    });
    // (Its channel is reveal, which this grant lacks; the policies it explains are the same on all.)
    expect(dryRun.body).toMatchObject({
      decision: 'deny',
      policies: [{ name: 'office-only' }],
      rules: [{ policy: 'office-only', rule: 'rules[0].ip_allowlist', verdict: 'fail' }],
    });

    await detach(t, 'office-only', 'proxy', 'sdk');
    const after = await call(client);
    expect(after.refused, after.text).toBe(false);
    await client.close();
  }, 30_000);

  it('binds only the proxy key it is attached to', async () => {
    const bound = await newKey();
    const free = await newKey();
    await attach(t, 'office-only', 'proxy_key', bound.id);
    // A session with the bound key is refused (at listing or calling, whichever asks first).
    const refused = await connect(bound.key)
      .then(async (client) => {
        const answer = await call(client);
        await client.close();
        return answer;
      })
      .catch((error: unknown) => ({ refused: true, text: String(error) }));
    expect(refused.refused, refused.text).toBe(true);
    expect(refused.text).toContain('Refused by policy "office-only"');
    const freeClient = await connect(free.key);
    const allowed = await call(freeClient);
    expect(allowed.refused, allowed.text).toBe(false);
    await detach(t, 'office-only', 'proxy_key', bound.id);
    const boundClient = await connect(bound.key);
    const after = await call(boundClient);
    expect(after.refused, after.text).toBe(false);
    await boundClient.close();
    await freeClient.close();
  }, 30_000);
});
