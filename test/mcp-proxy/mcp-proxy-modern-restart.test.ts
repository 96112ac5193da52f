import { Client, type McpSubscription, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  auditEvents,
  childPids,
  eventually,
  everythingBin,
  running,
  setUpHttpProxy,
  setUpStdioProxy,
  stopCuttingLeftovers,
} from './mcp-proxy-fixtures.js';
import { type SdkUpstream, startSdkUpstream } from './sdk-upstream.js';

/**
 * Issue 16 item 4 for the 2026-07-28 revision: an upstream restart is survived by the shared
 * upstream session of a proxy key, and its clients are told through their `subscriptions/listen`
 * streams. The official v2 client pinned to 2026-07-28 listens for `toolsListChanged`; the upstream
 * (server-everything over stdio, killed; an SDK server over Streamable HTTP, stopped and started
 * again on its port) restarts while the client is idle; the client's next request works, the vault
 * connects again exactly once (one upstream `initialize`, one `mcp_proxy.reconnect` event), and the
 * open listen stream carries `notifications/tools/list_changed` — it stays open throughout, also while
 * the upstream is down and calls are refused. The resources the stream names are subscribed again on
 * the new upstream connection.
 */

interface Listening {
  client: Client;
  subscription: McpSubscription;
  /** How many `notifications/tools/list_changed` the listen stream has delivered. */
  toolsChanged(): number;
  /** The resource the stream names (with `resource`), and the updates of it the stream delivered. */
  uri: string | undefined;
  updates: string[];
  /** How the subscription ended, or 'open'. */
  state(): string;
  close(): Promise<void>;
}

const reconnectsOf = async (t: TestVault, proxy: string) =>
  (await auditEvents(t, 'mcp_proxy.reconnect')).filter((e) => e.details.proxy_name === proxy);

/** What is in `after` and not in `before` (each of `before` taken out once). */
const added = (before: string[], after: string[]) => {
  const left = [...after];
  for (const seen of before) left.splice(left.indexOf(seen), 1);
  return left;
};

const outcomes = async (t: TestVault, proxy: string) =>
  (await reconnectsOf(t, proxy)).map((e) => `${e.decision} ${e.reason}`);

describe('MCP proxy, revision 2026-07-28: an upstream restart is survived and announced', () => {
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
    // The closed listen streams leave spare client connections behind.
    await stopCuttingLeftovers(t);
    await upstream?.stop();
  });

  /**
   * A v2 client pinned to 2026-07-28, its tools listed (pinned), listening for tool list changes
   * (and, with `resource`, for updates of the upstream's first resource).
   */
  const listening = async (proxy: string, token: string, resource = false): Promise<Listening> => {
    const client = new Client(
      { name: 'modern-agent', version: '1.0.0' },
      { versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${addr}/mcp/${proxy}`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    await client.listTools();
    let toolsChanged = 0;
    client.setNotificationHandler('notifications/tools/list_changed', () => void (toolsChanged += 1));
    const uri = resource ? (await client.listResources()).resources[0]!.uri : undefined;
    const updates: string[] = [];
    client.setNotificationHandler('notifications/resources/updated', (note) => {
      updates.push(note.params.uri);
    });
    const filter = { toolsListChanged: true as const, ...(uri ? { resourceSubscriptions: [uri] } : {}) };
    const subscription = await client.listen(filter);
    expect(subscription.honoredFilter).toEqual(filter);
    let state = 'open';
    void subscription.closed.then((how) => void (state = how));
    return {
      client,
      subscription,
      toolsChanged: () => toolsChanged,
      uri,
      updates,
      state: () => state,
      close: async () => {
        await subscription.close();
        await client.close();
      },
    };
  };

  const call = async (client: Client, name: string, args: Record<string, unknown> = {}) =>
    JSON.stringify(await client.callTool({ name, arguments: args }));

  it('a killed stdio upstream: started again on the next request, list_changed on the listen stream', async () => {
    const before = new Set(childPids(everythingBin));
    const agent = await listening('everything', stdioKey);
    expect(await call(agent.client, 'echo', { message: 'before' })).toContain('before');
    const [child] = childPids(everythingBin).filter((pid) => !before.has(pid));
    expect(child).toBeDefined();
    // server-everything announces its own tools/list_changed when it starts: counted from here.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const changedBefore = agent.toolsChanged();
    expect(await reconnectsOf(t, 'everything')).toEqual([]);

    process.kill(child!, 'SIGKILL');
    await eventually(() => !running(child!));
    // The vault learns of the exit from the child's closed pipes, just after.
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect(await call(agent.client, 'echo', { message: 'after the restart' })).toContain('after the restart');
    await eventually(() => agent.toolsChanged() > changedBefore);
    const [respawned] = childPids(everythingBin).filter((pid) => !before.has(pid));
    expect(respawned).toBeDefined();
    expect(respawned).not.toBe(child);
    expect(await call(agent.client, 'echo', { message: 'and again' })).toContain('and again');
    // Exactly one reconnect (one new child, one upstream initialize), decided and audited once.
    expect(childPids(everythingBin).filter((pid) => !before.has(pid))).toEqual([respawned]);
    const reconnects = await reconnectsOf(t, 'everything');
    expect(reconnects.map((e) => [e.decision, e.details.after])).toEqual([['allow', 'mcp_upstream_exited']]);
    expect(reconnects[0]!.details.list_changed).toEqual(['tools', 'resources', 'prompts']);
    expect(agent.state()).toBe('open');
    await agent.close();
  }, 60_000);

  it('a killed stdio upstream: the resources a listen stream names are subscribed again on the new one', async () => {
    const agent = await listening('everything', stdioKey, true);
    const before = new Set(childPids(everythingBin));
    expect(await call(agent.client, 'echo', { message: 'before' })).toContain('before');
    const [child] = childPids(everythingBin);
    expect(child).toBeDefined();
    process.kill(child!, 'SIGKILL');
    await eventually(() => !running(child!));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await call(agent.client, 'echo', { message: 'after' })).toContain('after');
    expect(childPids(everythingBin).filter((pid) => !before.has(pid))).toHaveLength(1);

    // The new server-everything sends updates of the resources subscribed on it once this is on.
    await call(agent.client, 'toggle-subscriber-updates');
    await eventually(() => agent.updates.length > 0);
    expect(agent.updates[0]).toBe(agent.uri);
    expect(agent.state()).toBe('open');
    await call(agent.client, 'toggle-subscriber-updates');
    await agent.close();
  }, 60_000);

  it('an HTTP upstream restarted on its port: initialized again once, list_changed on the listen stream', async () => {
    const agent = await listening('sdk', httpKey);
    expect(await call(agent.client, 'whoami')).toContain('authorization=[REDACTED]');
    expect(agent.toolsChanged()).toBe(0);

    // Restarted while the client is idle: it forgot the vault's upstream session.
    await upstream.stop();
    upstream = await startSdkUpstream({ port });
    expect(await call(agent.client, 'whoami')).toContain('authorization=[REDACTED]');
    expect(upstream.initializeCount()).toBe(1);
    await eventually(() => agent.toolsChanged() === 1);
    expect(await call(agent.client, 'whoami')).toContain('authorization=[REDACTED]');
    expect(upstream.initializeCount()).toBe(1);

    const reconnects = await reconnectsOf(t, 'sdk');
    expect(reconnects.map((e) => [e.decision, e.details.after, e.details.list_changed])).toEqual([
      ['allow', 'mcp_upstream_unavailable', ['tools']],
    ]);
    // Only the list the upstream has, and only once.
    expect(agent.toolsChanged()).toBe(1);
    expect(agent.state()).toBe('open');
    await agent.close();
  }, 60_000);
  it('an HTTP upstream down for a while: calls refused meanwhile, the listen stream kept and told on its return', async () => {
    const agent = await listening('sdk', httpKey);
    expect(await call(agent.client, 'whoami')).toContain('authorization=[REDACTED]');
    const before = await outcomes(t, 'sdk');

    await upstream.stop();
    // While it is down, a call is refused with its own code; the shared session and its listeners stay.
    const down = await call(agent.client, 'whoami').catch((error: unknown) => String(error));
    expect(down).toMatch(/could not be reached/);
    expect(agent.state()).toBe('open');

    upstream = await startSdkUpstream({ port });
    expect(await call(agent.client, 'whoami')).toContain('authorization=[REDACTED]');
    expect(upstream.initializeCount()).toBe(1);
    await eventually(() => agent.toolsChanged() === 1);
    expect(agent.state()).toBe('open');
    // One refused while it was down, one on its return.
    expect(added(before, await outcomes(t, 'sdk')).sort()).toEqual([
      'allow ok',
      'deny mcp_upstream_unavailable',
    ]);
    await agent.close();
  }, 60_000);
});
