import * as jose from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditAction, type AuditEvent, auditActions } from '../../src/audit/audit-types.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startOidcIssuer, type TestIssuer } from '../agents/oidc-issuer.js';
import { everythingBin } from '../mcp-proxy/mcp-proxy-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/**
 * Issue 12 item 4: every event about an agent or a credential is found by `--agent` and
 * `--credential`, by id and by name, even once the agent and the credential are deleted (their names
 * then no longer resolve to ids, so each event must carry both: audit-subjects.ts).
 *
 * `concerns` covers the whole `AuditAction` union: an action added to it without a line here does not
 * compile, and the first test fails at run time too.
 */
type Concerns = 'agent' | 'credential' | 'both' | { none: string };
const concerns: Record<AuditAction, Concerns> = {
  'credential.retrieve': 'both',
  'credential.proxy': 'both',
  'credential.create': 'credential',
  'credential.update': 'credential',
  'credential.delete': 'credential',
  'credential.prune': 'credential',
  'credential.refresh': 'credential',
  'agent.authenticate': 'agent',
  'agent.create': 'agent',
  'agent.update': 'agent',
  'agent.delete': 'agent',
  'agent.disable': 'agent',
  'agent.enable': 'agent',
  'agent.key.create': 'agent',
  'agent.key.revoke': 'agent',
  'agent.jwks.set': 'agent',
  'agent.jwks.clear': 'agent',
  'agent.bind': 'agent',
  'agent.unbind': 'agent',
  'grant.create': 'both',
  'grant.revoke': 'both',
  'issuer.trust': { none: 'about an issuer' },
  'issuer.delete': { none: 'about an issuer (its bindings go with it)' },
  'grant.import': { none: 'its grants are each recorded as grant.create and grant.revoke' },
  'namespace.revoke_all': { none: 'the namespace kill switch: about every grant and key at once' },
  'admin.authenticate': { none: 'an admin token' },
  'admin.authorize': { none: 'an admin token and its role' },
  'admin_token.create': { none: 'an admin token' },
  'admin_token.revoke': { none: 'an admin token' },
  'admin_token.reset_root': { none: 'an admin token' },
  'keys.rotate': { none: 'the key hierarchy' },
  'keys.mode_set': { none: 'the key hierarchy' },
  'keys.verify': { none: 'the key hierarchy' },
  'policy.create': { none: 'a policy (what it is attached to is policy.attach)' },
  'policy.update': { none: 'a policy' },
  'policy.delete': { none: 'a policy' },
  'policy.attach': { none: 'a policy and the entity it is attached to, named by kind and id' },
  'policy.detach': { none: 'a policy and the entity it is detached from, named by kind and id' },
  'policy.usage_reset': { none: 'a policy’s counters (the agent and credential filtered on, by id)' },
  'event.undeliverable': { none: 'an outbound event (its own data names what it announced)' },
  'oauth_app.create': { none: 'an OAuth app' },
  'oauth_app.delete': { none: 'an OAuth app (refused while credentials use it)' },
  'connect.create': { none: 'a connect session (agent, user and app in its details)' },
  'connect.authorize': { none: 'a person continuing a connect session to the provider (or refused)' },
  'connect.complete': { none: 'a connect session; the credential and grant it made have their own events' },
  'mcp_proxy.create': { none: 'about an MCP proxy' },
  'mcp_proxy.update': { none: 'about an MCP proxy' },
  'mcp_proxy.delete': { none: 'about an MCP proxy' },
  'mcp_proxy.key.create': 'agent',
  'mcp_proxy.key.revoke': 'agent',
  'mcp_proxy.authenticate': 'agent',
  'mcp_proxy.connect': 'both',
  'mcp_proxy.call': 'both',
  'mcp_proxy.redact': 'agent',
  'mcp_proxy.session.end': 'agent',
  // Each needs an upstream that restarted or refused its token: mcp-proxy-resilience.test.ts and
  // mcp-proxy-reauthorize.test.ts check that --agent and --credential find them.
  'mcp_proxy.reconnect': { none: 'needs an upstream restart: mcp-proxy-resilience.test.ts checks' },
  'mcp_proxy.reauthorize': { none: 'needs an upstream 401: mcp-proxy-reauthorize.test.ts checks' },
  'mcp_proxy.tools.pin': { none: 'about an MCP proxy’s upstream tools' },
  'mcp_proxy.tools.change': { none: 'about an MCP proxy’s upstream tools' },
  'mcp_proxy.tools.accept': { none: 'about an MCP proxy’s upstream tools' },
  // Approval events carry the agent's and the credential's subject keys; parking a request needs an
  // approval policy, so test/approvals/approval-flow.test.ts checks that the filters find them.
  'approval.request': { none: 'needs a parked request: approval-flow.test.ts checks its subjects' },
  'approval.notify': { none: 'needs a parked request: approval-flow.test.ts checks its subjects' },
  'approval.approve': { none: 'needs a parked request: approval-flow.test.ts checks its subjects' },
  'approval.deny': { none: 'needs a parked request: approval-flow.test.ts checks its subjects' },
  'approval.expire': { none: 'needs a parked request: approval-flow.test.ts checks its subjects' },
  'approval.subscribe': { none: 'an approver’s browser subscribing to Web Push' },
};
const about = (kind: 'agent' | 'credential') =>
  auditActions.filter((a) => concerns[a] === kind || concerns[a] === 'both');

describe('audit filters find every event about an agent or a credential', () => {
  let t: TestVault;
  let issuer: TestIssuer;
  let agentId: string;
  let credentialId: string;

  const ok = async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, body?: unknown) => {
    // The helper's type lists no PUT; inject() takes any method.
    const answer = await t.request(method as 'POST', url, body === undefined ? {} : { body });
    expect(answer.status, `${method} ${url}: ${answer.text}`).toBeLessThan(300);
    return answer.body as Record<string, unknown>;
  };

  const actionsFound = async (query: string): Promise<Set<string>> => {
    const page = (await ok('GET', `/v1/admin/audit/events?limit=1000&${query}`)) as unknown as {
      items: AuditEvent[];
    };
    return new Set(page.items.map((e) => e.action));
  };

  beforeAll(async () => {
    issuer = await startOidcIssuer({ wl: {} });
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    // Bystanders: events about them must not be found by the filters below.
    await ok('POST', '/v1/admin/agents', { name: 'other' });
    await ok('POST', '/v1/admin/credentials', { name: 'github', type: 'api_key', secret: { api_key: 'x' } });

    const created = await ok('POST', '/v1/admin/credentials', {
      name: 'slack',
      type: 'api_key',
      scopes: ['read', 'write'],
      secret: { api_key: 'xoxb-subjects' },
    });
    credentialId = created.id as string;
    await ok('PATCH', '/v1/admin/credentials/slack', { description: 'chat' });
    await ok('POST', '/v1/admin/credentials/slack/prune', { keep: 1 });
    // Not an OAuth credential: refused, and recorded against it.
    expect((await t.request('POST', '/v1/admin/credentials/slack/refresh')).status).toBe(409);

    const agent = await ok('POST', '/v1/admin/agents', { name: 'agent-42' });
    agentId = agent.id as string;
    await ok('PATCH', '/v1/admin/agents/agent-42', { description: 'reports' });
    await ok('POST', '/v1/admin/agents/agent-42/disable');
    await ok('POST', '/v1/admin/agents/agent-42/enable');
    const key = await ok('POST', '/v1/admin/agents/agent-42/keys', { name: 'ci' });
    const { publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
    await ok('PUT', '/v1/admin/agents/agent-42/jwks', { jwks: await jose.exportJWK(publicKey) });
    await ok('DELETE', '/v1/admin/agents/agent-42/jwks');
    await ok('POST', '/v1/admin/issuers', { name: 'ci', issuer: issuer.issuer, audience: 'https://vault' });
    const binding = await ok('POST', '/v1/admin/agents/agent-42/bindings', {
      issuer: 'ci',
      claims: { sub: 'wl' },
    });
    await ok('DELETE', `/v1/admin/agents/agent-42/bindings/${binding.id as string}`);

    await ok('POST', '/v1/admin/grants', { agent: 'agent-42', credential: 'slack', ttl: '1h' });
    // A second grant supersedes the first (a grant.revoke recorded by grant.create's change).
    const grant = await ok('POST', '/v1/admin/grants', {
      agent: agentId,
      credential: 'slack',
      ttl: '1h',
      reveal: true,
    });
    const retrieved = await t.request('GET', '/v1/agents/agent-42/credentials/slack', {
      token: key.api_key as string,
    });
    expect(retrieved.status).toBe(200);
    // Through the HTTP proxy: slack has no base URL, so the call is refused, and recorded as such.
    const proxied = await t.request('GET', '/v1/proxy/slack/api/auth.test', {
      token: key.api_key as string,
    });
    expect(proxied.status, proxied.text).toBe(409);
    // A session through an MCP proxy on slack: connect, a call whose answer holds the secret
    // (redacted), and the session's end.
    await ok('POST', '/v1/admin/mcp-proxies', {
      name: 'slack-stdio',
      command: process.execPath,
      args: [everythingBin, 'stdio'],
      credential: 'slack',
      injections: [{ in: 'env', name: 'SLACK_TOKEN', template: '{{api_key}}' }],
    });
    const stdioKey = await ok('POST', '/v1/admin/mcp-proxies/slack-stdio/keys', { agent: 'agent-42' });
    const addr = await t.vault.listen();
    const client = new Client({ name: 'subjects', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${addr}/mcp/slack-stdio`), {
      requestInit: { headers: { Authorization: `Bearer ${stdioKey.key as string}` } },
    });
    await client.connect(transport);
    await client.listTools();
    await client.callTool({ name: 'get-env', arguments: {} });
    // An answer that is not a call's, echoing the secret: redacted, and recorded on its own.
    await client.getPrompt({ name: 'args-prompt', arguments: { city: 'xoxb-subjects' } });
    await transport.terminateSession();
    await client.close();
    // The key revoked, the next request is refused, naming the key's agent.
    await ok('DELETE', `/v1/admin/mcp-proxies/slack-stdio/keys/${stdioKey.id as string}`);
    const refusedMcp = await t.request('POST', '/mcp/slack-stdio', {
      token: stdioKey.key as string,
      body: { jsonrpc: '2.0', id: 1, method: 'ping' },
    });
    expect(refusedMcp.status).toBe(401);
    await ok('DELETE', `/v1/admin/grants/${grant.id as string}`);
    await ok('POST', '/v1/admin/grants', { agent: 'agent-42', credential: 'slack', ttl: '1h' });
    await ok('POST', '/v1/admin/grants/revoke', { agent: 'agent-42' });
    await ok('POST', '/v1/admin/grants', { agent: 'agent-42', credential: 'slack', ttl: '1h' });
    await ok('POST', '/v1/admin/grants/revoke', { credential: 'slack' });

    // An MCP proxy key belongs to the agent: its creation and revocation are events about it.
    await ok('POST', '/v1/admin/mcp-proxies', {
      name: 'slack-mcp',
      url: 'http://127.0.0.1:9/mcp',
      credential: 'slack',
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    });
    const proxyKey = await ok('POST', '/v1/admin/mcp-proxies/slack-mcp/keys', { agent: 'agent-42' });
    await ok('DELETE', `/v1/admin/mcp-proxies/slack-mcp/keys/${proxyKey.id as string}`);

    await ok('DELETE', `/v1/admin/agents/agent-42/keys/${key.id as string}`);
    // A refused authentication that names the agent (its key is revoked).
    const refused = await t.request('GET', '/v1/agents/agent-42/credentials/slack', {
      token: key.api_key as string,
    });
    expect(refused.status).toBe(401);

    // Gone: from now on only what the events themselves carry can tie them to these names and ids.
    await ok('DELETE', '/v1/admin/agents/agent-42');
    await ok('DELETE', '/v1/admin/credentials/slack');
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await issuer?.stop();
  });

  it('classifies every action of the AuditAction union', () => {
    expect(Object.keys(concerns).sort()).toEqual([...auditActions].sort());
  });

  const queries: ['agent' | 'credential', string, () => string][] = [
    ['agent', 'name', () => 'agent-42'],
    ['agent', 'id', () => agentId],
    ['credential', 'name', () => 'slack'],
    ['credential', 'id', () => credentialId],
  ];
  it.each(queries)('--%s by %s finds an event of every action about it', async (kind, _by, value) => {
    const found = await actionsFound(`${kind}=${encodeURIComponent(value())}`);
    expect([...found].sort()).toEqual(about(kind).sort());
  });

  it('every grant.revoke names its agent and its credential, whatever revoked it', async () => {
    const page = (await ok('GET', `/v1/admin/audit/events?limit=100&action=grant.revoke`)) as unknown as {
      items: AuditEvent[];
    };
    expect(page.items.map((e) => e.details.revoked_reason).sort()).toEqual([
      'agent_revoked',
      'credential_revoked',
      'revoked',
      'superseded',
    ]);
    for (const event of page.items) {
      expect(event.details).toMatchObject({
        agent_id: agentId,
        agent_name: 'agent-42',
        credential_id: credentialId,
        credential_name: 'slack',
      });
    }
    const both = await actionsFound(`agent=agent-42&credential=slack&action=grant.*`);
    expect([...both].sort()).toEqual(['grant.create', 'grant.revoke']);
  });
});
