import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
} from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  auditEvents,
  childPids,
  eventually,
  everythingBin,
  running,
  setUpHttpProxy,
  setUpStdioProxy,
} from './mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from './sdk-upstream.js';

/**
 * Issue 16 item 4: an upstream restart is survived. A stdio upstream that was killed is started again
 * on the session's next request; a Streamable HTTP upstream that restarted (and forgot its sessions)
 * is initialized again once. Either way the vault re-checks the tool pins and tells the client to list
 * again (`list_changed` for each list the upstream has), and the client's next call works — with the
 * official v1 and v2 clients. Idle sessions are closed, their stdio children with them.
 */

interface Counts {
  tools: number;
  resources: number;
  prompts: number;
}

interface Agent {
  counts: Counts;
  call(name: string, args?: Record<string, unknown>): Promise<string>;
  list(): Promise<string[]>;
  sessionId(): string | undefined;
  close(): Promise<void>;
}

const connectAs = async (version: 'v1' | 'v2', url: URL, key: string): Promise<Agent> => {
  const counts: Counts = { tools: 0, resources: 0, prompts: 0 };
  const headers = { Authorization: `Bearer ${key}` };
  if (version === 'v1') {
    const client = new ClientV1({ name: 'v1-agent', version: '1.0.0' });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void (counts.tools += 1));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void (counts.resources += 1));
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => void (counts.prompts += 1));
    const transport = new TransportV1(url, { requestInit: { headers } });
    await client.connect(transport);
    return {
      counts,
      call: async (name, args = {}) => JSON.stringify(await client.callTool({ name, arguments: args })),
      list: async () => (await client.listTools()).tools.map((tool) => tool.name),
      sessionId: () => transport.sessionId,
      close: async () => {
        await transport.terminateSession().catch(() => undefined);
        await client.close();
      },
    };
  }
  const client = new ClientV2({ name: 'v2-agent', version: '1.0.0' });
  client.setNotificationHandler('notifications/tools/list_changed', () => void (counts.tools += 1));
  client.setNotificationHandler('notifications/resources/list_changed', () => void (counts.resources += 1));
  client.setNotificationHandler('notifications/prompts/list_changed', () => void (counts.prompts += 1));
  const transport = new TransportV2(url, { requestInit: { headers } });
  await client.connect(transport);
  return {
    counts,
    call: async (name, args = {}) => JSON.stringify(await client.callTool({ name, arguments: args })),
    list: async () => (await client.listTools()).tools.map((tool) => tool.name),
    sessionId: () => transport.sessionId,
    close: async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    },
  };
};

describe('MCP proxy: an upstream restart is survived', () => {
  let t: TestVault;
  let addr: string;
  let upstream: SdkUpstream;
  let port: number;
  let stdioKey: string;
  let httpKey: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream();
    port = Number(new URL(upstream.url).port);
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    stdioKey = (await setUpStdioProxy(t)).key;
    httpKey = (await setUpHttpProxy(t, { name: 'sdk', url: upstream.url, agent: 'restart-agent', key: true }))
      .key as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: a killed stdio upstream is started again on the next request, and the client told to list again`, async () => {
      const before = new Set(childPids(everythingBin));
      const agent = await connectAs(version, new URL(`${addr}/mcp/everything`), stdioKey);
      expect(await agent.list()).toContain('echo');
      expect(await agent.call('echo', { message: 'before' })).toContain('before');
      const [child] = childPids(everythingBin).filter((pid) => !before.has(pid));
      expect(child).toBeDefined();

      // server-everything announces its own tools/list_changed when it starts: counted from here.
      const toolsBefore = agent.counts.tools;
      process.kill(child!, 'SIGKILL');
      await eventually(() => !running(child!));
      // The vault learns of the exit from the child's closed pipes, just after.
      await new Promise((resolve) => setTimeout(resolve, 300));

      expect(await agent.call('echo', { message: 'after the restart' })).toContain('after the restart');
      // server-everything has tools, resources and prompts: the client is told to list each again.
      expect(agent.counts.tools).toBeGreaterThan(toolsBefore);
      expect(agent.counts).toMatchObject({ resources: 1, prompts: 1 });
      const toolsAfter = agent.counts.tools;
      const [respawned] = childPids(everythingBin).filter((pid) => !before.has(pid));
      expect(respawned).toBeDefined();
      expect(respawned).not.toBe(child);
      expect(await agent.call('echo', { message: 'and again' })).toContain('and again');
      expect(agent.counts.tools).toBe(toolsAfter);

      // One reconnect, a decision at the decision point, found by the agent and credential filters.
      const found = (
        (await t.request('GET', '/v1/admin/audit/events?agent=everything-agent&action=mcp_proxy.reconnect'))
          .body as { items: { decision: string; details: Record<string, unknown> }[] }
      ).items;
      const byCredential = (
        (
          await t.request(
            'GET',
            '/v1/admin/audit/events?credential=everything-token&action=mcp_proxy.reconnect',
          )
        ).body as { items: unknown[] }
      ).items;
      expect(byCredential).toHaveLength(found.length);
      expect(found[0]).toMatchObject({
        decision: 'allow',
        details: { after: 'mcp_upstream_exited', list_changed: ['tools', 'resources', 'prompts'] },
      });
      await agent.close();
      await eventually(() => !running(respawned!));
    }, 60_000);
  }

  it('a killed stdio upstream is subscribed again to the resources the client subscribed to', async () => {
    const before = new Set(childPids(everythingBin));
    const client = new ClientV2({ name: 'v2-agent', version: '1.0.0' });
    const transport = new TransportV2(new URL(`${addr}/mcp/everything`), {
      requestInit: { headers: { Authorization: `Bearer ${stdioKey}` } },
    });
    await client.connect(transport);
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (note) => {
      updates.push(note.params.uri);
    });
    const uri = (await client.listResources()).resources[0]!.uri;
    await client.subscribeResource({ uri });
    const [child] = childPids(everythingBin).filter((pid) => !before.has(pid));
    process.kill(child!, 'SIGKILL');
    await eventually(() => !running(child!));
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(JSON.stringify(await client.callTool({ name: 'echo', arguments: { message: 'x' } }))).toContain(
      'x',
    );
    // The new server-everything sends updates of the resources subscribed on it once this is on.
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await eventually(() => updates.length > 0);
    expect(updates[0]).toBe(uri);
    await client.callTool({ name: 'toggle-subscriber-updates', arguments: {} });
    await transport.terminateSession().catch(() => undefined);
    await client.close();
  }, 60_000);

  for (const version of ['v1', 'v2'] as const) {
    it(`${version}: an HTTP upstream stopped and started again on its port is initialized again once`, async () => {
      const agent = await connectAs(version, new URL(`${addr}/mcp/sdk`), httpKey);
      expect(await agent.list()).toEqual(['whoami']);
      expect(await agent.call('whoami')).toContain('authorization=[REDACTED]');

      await upstream.stop();
      // While it is down, a call is refused with its own code (and the session goes on).
      const down = await agent.call('whoami').catch((error: unknown) => String(error));
      expect(down).toMatch(/could not be reached/);

      upstream = await startSdkUpstream({ port });
      // The restarted upstream knows no session: the vault initializes once and sends the call.
      expect(await agent.call('whoami')).toContain('authorization=[REDACTED]');
      expect(upstream.initializeCount()).toBe(1);
      // Only the list the upstream has: tools.
      expect(agent.counts).toEqual({ tools: 1, resources: 0, prompts: 0 });
      expect(await agent.list()).toEqual(['whoami']);
      expect(await agent.call('whoami')).toContain('authorization=[REDACTED]');
      expect(upstream.initializeCount()).toBe(1);

      // Restarted again while idle: the vault's next request meets a 404 for its session, and
      // connects again without failing the call.
      await upstream.stop();
      upstream = await startSdkUpstream({ port });
      expect(await agent.call('whoami')).toContain('authorization=[REDACTED]');
      expect(upstream.initializeCount()).toBe(1);
      expect(agent.counts.tools).toBe(2);

      // One refused while it was down, one on its return, one for the 404: each one event.
      const reconnects = (await auditEvents(t, 'mcp_proxy.reconnect'))
        .filter((e) => e.details.proxy_name === 'sdk')
        .map((e) => `${e.decision} ${e.reason}`);
      expect(reconnects.filter((e) => e === 'allow ok')).toHaveLength(version === 'v1' ? 2 : 4);
      expect(reconnects.filter((e) => e === 'deny mcp_upstream_unavailable')).toHaveLength(
        version === 'v1' ? 1 : 2,
      );
      const calls = (await auditEvents(t, 'mcp_proxy.call')).filter((e) => e.details.proxy_name === 'sdk');
      expect(calls.map((e) => e.reason)).toContain('mcp_upstream_unavailable');
      await agent.close();
    }, 60_000);
  }
});

describe('MCP proxy: an HTTP upstream that goes away mid-call', () => {
  let t: TestVault;
  let addr: string;
  let upstream: SdkUpstream;
  let key: string;

  beforeAll(async () => {
    upstream = await startSdkUpstream({ hang: true });
    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    key = (
      await setUpHttpProxy(t, {
        name: 'slow',
        url: upstream.url,
        agent: 'slow-agent',
        credential: 'slow-token',
        key: true,
      })
    ).key as string;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
    await upstream?.stop();
  });

  it('refuses the call in flight at once (not at the agent’s timeout), and the next call works', async () => {
    const agent = await connectAs('v2', new URL(`${addr}/mcp/slow`), key);
    expect((await agent.list()).sort()).toEqual(['hang', 'whoami']);
    const pending = agent.call('hang').catch((error: unknown) => String(error));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const port = Number(new URL(upstream.url).port);
    const stoppedAt = Date.now();
    await upstream.stop();
    expect(await pending).toMatch(/could not be reached/);
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);
    upstream = await startSdkUpstream({ port, hang: true });
    expect(await agent.call('whoami')).toContain('authorization=[REDACTED]');
    const calls = (await auditEvents(t, 'mcp_proxy.call')).map((e) => `${e.details.tool} ${e.reason}`);
    expect(calls).toContain('hang mcp_upstream_unavailable');
    await agent.close();
  }, 30_000);
});

describe('MCP proxy: idle sessions', () => {
  let t: TestVault;
  let addr: string;
  let key: string;
  let offsetMs = 0;
  const clock: Clock = { now: () => new Date(Date.now() + offsetMs) };

  beforeAll(async () => {
    t = await startTestVault({ settings: { mcpSessionIdleSeconds: '1' }, clock });
    addr = await t.vault.listen();
    key = (await setUpStdioProxy(t, 'idle')).key;
  }, 30_000);

  afterAll(async () => {
    await t?.stop();
  });

  it('closes a session left idle, killing its stdio child; the store forgets it after a while', async () => {
    const before = new Set(childPids(everythingBin));
    const agent = await connectAs('v2', new URL(`${addr}/mcp/idle`), key);
    expect(await agent.list()).toContain('echo');
    const [child] = childPids(everythingBin).filter((pid) => !before.has(pid));
    expect(child).toBeDefined();

    await eventually(() => !running(child!), 15_000);
    const ends = (await auditEvents(t, 'mcp_proxy.session.end')).filter(
      (e) => e.details.proxy_name === 'idle',
    );
    expect(ends.map((e) => [e.decision, e.reason])).toEqual([['allow', 'ok']]);

    // Unused everywhere for longer than the idle time (and the minute `last_seen_at` may lag), the
    // stored session is removed by the sweep: the session id is refused from then on.
    offsetMs += 3 * 60_000;
    const stored = () => t.vault.store.db.selectFrom('mcp_sessions').select('id_hash').execute();
    await eventually(async () => (await stored()).length === 0, 15_000);
    const refused = await fetch(`${addr}/mcp/idle`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'mcp-session-id': String(agent.sessionId()),
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('mcp_session_not_found');
    expect(childPids(everythingBin).filter((pid) => !before.has(pid))).toEqual([]);
  }, 60_000);
});
