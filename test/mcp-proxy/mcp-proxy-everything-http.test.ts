import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  connectV1,
  everythingContract,
  type EverythingProxy,
  itNeverLeaksTheSecret,
} from './everything-contract.js';
import { type EverythingHttp, startEverythingHttp } from './everything-http.js';
import { auditEvents, setUpStdioProxy } from './mcp-proxy-fixtures.js';

/**
 * server-everything as an HTTP upstream, started on a free loopback port for the test: in its
 * Streamable HTTP mode, and in the deprecated HTTP+SSE mode (`--transport sse`, upstream.ts's
 * `SSEClientTransport`). Each passes the same contract as the stdio upstream (everything-contract.ts):
 * tools, resources, prompts, completions, progress, cancellation, sampling and elicitation, with the
 * official v1 and v2 clients, and the secret (in the server's environment, and injected as its
 * Authorization header) never reaching the agent.
 */
for (const kind of ['streamable-http', 'sse'] as const) {
  describe(`MCP proxy to server-everything as a ${kind} upstream`, () => {
    let t: TestVault;
    let upstream: EverythingHttp;
    let ctx: EverythingProxy;

    beforeAll(async () => {
      upstream = await startEverythingHttp(kind === 'sse' ? 'sse' : 'streamableHttp');
      t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
      const addr = await t.vault.listen();
      const { key } = await setUpStdioProxy(t, 'everything', { kind, url: upstream.url });
      ctx = {
        t,
        addr,
        proxy: 'everything',
        key,
        agent: 'everything-agent',
        credential: 'everything-token',
        seen: [],
      };
    }, 30_000);

    afterAll(async () => {
      await t?.stop();
      await upstream?.stop();
    });

    everythingContract(() => ctx);

    it('opens one upstream session per agent session, not one per call', async () => {
      const before = (await auditEvents(t, 'mcp_proxy.connect')).length;
      const { client } = await connectV1(ctx);
      await client.listTools();
      for (let i = 0; i < 3; i += 1) await client.callTool({ name: 'echo', arguments: { message: `${i}` } });
      expect((await auditEvents(t, 'mcp_proxy.connect')).length - before).toBe(1);
      await client.close();
    }, 30_000);

    it('ends the session with an upstream that goes away, with its own code', async () => {
      const { client } = await connectV1(ctx);
      await client.listTools();
      await client.callTool({ name: 'echo', arguments: { message: 'before' } });
      await upstream.stop();
      const refused = await client
        .callTool({ name: 'echo', arguments: { message: 'after' } })
        .catch((e: unknown) => e);
      ctx.seen.push(String(refused));
      expect(String(refused)).toMatch(/could not be reached|did not answer/);
      await client.close().catch(() => undefined);
    }, 30_000);

    itNeverLeaksTheSecret(() => ctx);
  });
}
