// The MCP proxy's bench fixtures, loaded by server-child.mjs: the upstream MCP server the proxy forwards
// to (its own process, `server-child.mjs mcp-upstream`), written with the official SDK (v2), and the
// vault-side set-up of a proxy to it.

import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import { z } from 'zod';

/**
 * A Streamable HTTP MCP server with sessions and one tool, `echo` (answers its `text`), as the SDK's
 * examples build it: one `McpServer` and transport per session, the SDK's default answers (an SSE
 * stream per request). It counts what the target needs counted: `initialize` requests (one per
 * session through the proxy, not one per call), sessions ended with `DELETE`, and sessions still held.
 * A session unused for `idleMs` is dropped, so a client that never ends its sessions cannot fill the
 * process during the 10,000-session run; those are counted apart (`idleDropped`).
 */
export const startMcpUpstream = async ({ idleMs = 60_000 } = {}) => {
  /** @type {Map<string, { transport: WebStandardStreamableHTTPServerTransport, lastSeen: number }>} */
  const sessions = new Map();
  const counts = { initialize: 0, deleted: 0, idleDropped: 0, calls: 0, requests: 0, connections: 0 };

  const newSession = async () => {
    const server = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
    server.registerTool(
      'echo',
      { description: 'Answers with the text it was given.', inputSchema: z.object({ text: z.string() }) },
      async ({ text }) => {
        counts.calls += 1;
        return { content: [{ type: 'text', text }] };
      },
    );
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, { transport, lastSeen: Date.now() }),
      onsessionclosed: (id) => {
        counts.deleted += 1;
        sessions.delete(id);
      },
    });
    await server.connect(transport);
    return transport;
  };

  const sweeper = setInterval(() => {
    const oldest = Date.now() - idleMs;
    for (const [id, held] of sessions) {
      if (held.lastSeen >= oldest) continue;
      sessions.delete(id);
      counts.idleDropped += 1;
      void held.transport.close().catch(() => undefined);
    }
  }, 5_000);
  sweeper.unref();

  const http = createServer((req, res) => {
    counts.requests += 1;
    void (async () => {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = body === '' ? undefined : JSON.parse(body);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string') headers.set(name, value);
      const request = new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        ...(body === '' ? {} : { body }),
      });
      const sessionId = req.headers['mcp-session-id'];
      const held = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
      let transport = held?.transport;
      if (held) held.lastSeen = Date.now();
      if (!transport && parsed?.method === 'initialize') {
        counts.initialize += 1;
        transport = await newSession();
      }
      if (!transport) {
        res.writeHead(404).end();
        return;
      }
      const response = await transport.handleRequest(request, { parsedBody: parsed });
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) Readable.fromWeb(/** @type {any} */ (response.body)).pipe(res);
      else res.end();
    })().catch((error) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  });
  http.on('connection', () => (counts.connections += 1));
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${/** @type {import('node:net').AddressInfo} */ (http.address()).port}/mcp`,
    counts: () => ({ ...counts, held: sessions.size }),
    stop: async () => {
      clearInterval(sweeper);
      for (const { transport } of sessions.values()) await transport.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
};

/**
 * Through the admin REST API, as an operator would: an api_key credential, an agent granted it
 * (proxy-only), a Streamable HTTP proxy to the upstream injecting `Authorization: Bearer {{api_key}}`,
 * and a proxy key (`tv_proxy_…`). The vault runs with the loopback address allowed outbound.
 */
export const setupMcpProxy = async ({ vault, token }, { upstreamUrl, proxy, agentName }) => {
  /** @param {string} method @param {string} url @param {unknown} payload @param {number} expected */
  const admin = async (method, url, payload, expected) => {
    const response = await vault.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}` },
      payload,
    });
    if (response.statusCode !== expected) {
      throw new Error(`${method} ${url} answered ${response.statusCode}: ${response.body.slice(0, 300)}`);
    }
    return response.json();
  };
  const credential = `${proxy}-token`;
  await admin(
    'POST',
    '/v1/admin/credentials',
    { name: credential, type: 'api_key', secret: { api_key: 'sk-bench-mcp-7d1e0c4b9a2f4e61' } },
    201,
  );
  await admin('POST', '/v1/admin/agents', { name: agentName }, 201);
  await admin('POST', '/v1/admin/grants', { agent: agentName, credential, until_revoked: true }, 201);
  await admin(
    'POST',
    '/v1/admin/mcp-proxies',
    {
      name: proxy,
      url: upstreamUrl,
      credential,
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    },
    201,
  );
  const key = await admin('POST', `/v1/admin/mcp-proxies/${proxy}/keys`, { agent: agentName }, 201);
  return { key: key.key };
};

/**
 * This process's memory after full garbage collections (bytes): resident, V8 heap used, and memory
 * outside the heap (buffers). `gc` is exposed at run time, so the vault runs with its usual flags.
 */
export const memoryAfterGc = async () => {
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = /** @type {() => void} */ (runInNewContext('gc'));
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
};

/**
 * `n` audit events appended one after the other, each awaited until durable, as every `tools/call`'s
 * `mcp_proxy.call` event is: the wait a call cannot be answered before. Milliseconds per event.
 */
export const durableAppends = async ({ vault }, { n }) => {
  /** @type {number[]} */
  const times = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await vault.services.audit.record({
      namespace: 'default',
      actor: { type: 'system', id: null },
      action: 'mcp_proxy.session.end',
      target: { type: 'mcp_proxy', id: 'bench-durable-probe' },
      decision: 'allow',
      reason: 'ok',
      details: {},
    });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times;
};
