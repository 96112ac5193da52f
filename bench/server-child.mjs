// The servers under load, each in its own process so the load generator never shares their event loop:
//   node bench/server-child.mjs ceiling   a bare node:http server answering a fixed JSON body
//   node bench/server-child.mjs fastify   Fastify alone with the retrieval route: the framework's floor
//   node bench/server-child.mjs vault     the vault (SQLite in BENCH_DATA_DIR, or BENCH_CHILD_DATABASE_URL)
//   node bench/server-child.mjs upstream  an API for the HTTP proxy to forward to (proxy-upstream.mjs)
//   node bench/server-child.mjs mcp-upstream  an MCP server for the MCP proxy (mcp-upstream.mjs)
//   node bench/server-child.mjs op        an OAuth server for the refresh bench (oauth-provider.mjs)
// All listen on 127.0.0.1 only and take commands from the parent over the IPC channel.

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { mainThreadCpuSeconds } from './cpu.mjs';
import { percentile } from './load.mjs';

const kind = process.argv[2];

/**
 * Statements sent to the database, counted by wrapping the drivers' own entry points (better-sqlite3's
 * Statement run/all/get/iterate, pg's Client#query) before the vault is loaded: BEGIN and COMMIT count
 * too. One counter increment per statement; nothing else changes.
 */
let statements = 0;
/**
 * BENCH_STATEMENT_TIMES=1: also the wall time each SQLite statement holds the main thread, by its
 * text (a write waiting there for another connection's lock blocks the event loop meanwhile).
 */
const timeStatements = process.env.BENCH_STATEMENT_TIMES === '1';
/** @type {Map<string, { n: number, ms: number, maxMs: number }>} */
const statementTimes = new Map();
const countCalls = (proto, names) => {
  for (const name of names) {
    const original = proto[name];
    proto[name] = function counted(...args) {
      statements += 1;
      if (!timeStatements || typeof this.source !== 'string') return original.apply(this, args);
      const started = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const ms = performance.now() - started;
        const entry = statementTimes.get(this.source) ?? { n: 0, ms: 0, maxMs: 0 };
        statementTimes.set(this.source, {
          n: entry.n + 1,
          ms: entry.ms + ms,
          maxMs: Math.max(entry.maxMs, ms),
        });
      }
    };
  }
};
{
  const probe = new SQLite(':memory:');
  countCalls(Object.getPrototypeOf(probe.prepare('select 1')), ['run', 'all', 'get', 'iterate']);
  probe.close();
  countCalls(pg.Client.prototype, ['query']);
}

// The same shape and about the same size as a credential view, so both servers serialize and send
// comparable bytes.
const fixedBody = JSON.stringify({
  id: '0b6c1f5e-3d0a-4b8e-9a51-6f2d2c1e7a90',
  namespace: 'default',
  name: 'read-42',
  type: 'api_key',
  description: '',
  scopes: [],
  allowed_hosts: [],
  injection: { in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' },
  status: 'active',
  expires_at: null,
  subject: null,
  version: 1,
  secret_fields: ['api_key'],
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

// The same shape and size as a retrieval answer for a seeded credential (`seed.mjs`).
const retrievalBody = JSON.stringify({
  access_token: 'sk-bench-4242-0b6c1f5e-3d0a-4b8e-9a51-6f2d2c1e7a90',
  token_type: 'Bearer',
  expires_at: '2026-01-31T00:00:00.000Z',
  scopes: [],
});

const startCeiling = async () => {
  const server = createServer((req, res) => {
    // Read the body to the end, as a real server must before it answers.
    req.on('data', () => {});
    req.on('end', () => {
      const body = req.url.startsWith('/v1/agents/') ? retrievalBody : fixedBody;
      const headers = {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
      };
      // The vault's retrieval answer carries these two as well.
      if (body === retrievalBody) Object.assign(headers, { 'cache-control': 'no-store', pragma: 'no-cache' });
      res.writeHead(req.method === 'POST' ? 201 : 200, headers);
      res.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
};

/**
 * Fastify by itself: the retrieval route with the vault's own schemas (path, query, response) and Ajv
 * options, answering the ceiling's retrieval body with the same two headers. No logger, no hooks, no
 * authentication, no audit, no vault code at all: what the framework the vault is built on (DESIGN.md)
 * costs per request before the vault does anything.
 */
const startFastify = async () => {
  const { default: Fastify } = await import('fastify');
  const { CredentialToken, RetrievalParams, RetrievalQuery } = await import('./vault-modules.mjs');
  const app = Fastify({
    logger: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  const answer = JSON.parse(retrievalBody);
  app.get(
    '/v1/agents/:agentId/credentials/:service',
    { schema: { params: RetrievalParams, querystring: RetrievalQuery, response: { 200: CredentialToken } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      return answer;
    },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${app.server.address().port}`, stop: () => app.close() };
};

const startVault = async () => {
  const { createVault, loadConfig } = await import('./vault-modules.mjs');
  const dataDir = process.env.BENCH_DATA_DIR;
  // The environment is not passed on: loadConfig rejects TOKENVAULT_* variables it does not know,
  // and TOKENVAULT_BENCH_DATABASE_URL is one of those.
  const config = loadConfig(
    {
      dataDir,
      databaseUrl: process.env.BENCH_CHILD_DATABASE_URL || undefined,
      host: '127.0.0.1',
      port: '0',
      // The default configuration unless the bench asks for another level (`silent`: logging off).
      logLevel: process.env.BENCH_VAULT_LOG_LEVEL || undefined,
      // Every request authenticates with the same token from the same address; failures are bugs.
      authFailureLimit: '100000',
      // The MCP proxy's upstream listens on the loopback address (BENCH_VAULT_OUTBOUND_ALLOW=127.0.0.1).
      outboundAllow: process.env.BENCH_VAULT_OUTBOUND_ALLOW || undefined,
      // The oauth-refresh section: its OAuth server is on loopback over http, and the refresh margin
      // is the section's (each seeded token expires one margin after it is due).
      ...(process.env.BENCH_VAULT_OAUTH_MARGIN
        ? {
            oauthAllowHttp: true,
            outboundAllow: '127.0.0.1',
            oauthRefreshMargin: process.env.BENCH_VAULT_OAUTH_MARGIN,
          }
        : {}),
    },
    {},
  );
  const vault = await createVault(config);
  const url = await vault.listen();
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return { vault, url, token, dataDir, stop: () => vault.stop() };
};

/**
 * `send(i)` for i = 0 … n-1, one after the other, after `warmup` unmeasured ones: the whole Fastify
 * lifecycle and the store through `app.inject()`, no socket, no queue. Every answer must be a 200.
 */
const timeSequential = async (what, send, { n, warmup }) => {
  for (let i = 0; i < warmup; i++) await send(i * 7919);
  const times = [];
  const before = statements;
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const response = await send(i * 7919);
    times.push(performance.now() - started);
    if (response.statusCode !== 200) throw new Error(`inject ${what} answered ${response.statusCode}`);
  }
  times.sort((a, b) => a - b);
  return {
    n,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
    statementsPerRequest: (statements - before) / n,
  };
};

/** Sequential admin reads of `${prefix}0` … (see `timeSequential`). */
const injectReads = ({ vault, token }, { n, warmup, targets, prefix }) =>
  timeSequential(
    'read',
    (i) =>
      vault.app.inject({
        method: 'GET',
        url: `/v1/admin/credentials/${prefix}${i % targets}`,
        headers: { authorization: `Bearer ${token}` },
      }),
    { n, warmup },
  );

/** Sequential agent retrievals of `${prefix}0` … (see `timeSequential`). */
const injectRetrievals = ({ vault }, { n, warmup, targets, prefix, agentId, apiKey }) =>
  timeSequential(
    'retrieval',
    (i) =>
      vault.app.inject({
        method: 'GET',
        url: `/v1/agents/${agentId}/credentials/${prefix}${i % targets}`,
        headers: { authorization: `Bearer ${apiKey}` },
      }),
    { n, warmup },
  );

/**
 * The retrieval set-up, through the admin REST API as an operator would do it (`app.inject()`, the
 * root admin token): one agent with its first API key, and reveal grants (30 days) on the credentials
 * `${prefix}0` to `${prefix}${targets - 1}`, imported 1,000 at a time. One retrieval is checked.
 */
const setupRetrieval = async ({ vault, token }, { targets, prefix, agentName }) => {
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
  const agent = await admin('POST', '/v1/admin/agents', { name: agentName }, 201);
  for (let start = 0; start < targets; start += 1000) {
    const names = [];
    for (let i = start; i < Math.min(targets, start + 1000); i++) names.push(`${prefix}${i}`);
    const imported = await admin(
      'POST',
      '/v1/admin/grants/import',
      { document: { agent_id: agent.id, allowed_credentials: names }, ttl: '30d', reveal: true },
      201,
    );
    if (imported.items.length !== names.length)
      throw new Error(`the grant import created ${imported.items.length} grants, not ${names.length}`);
  }
  const check = await vault.app.inject({
    method: 'GET',
    url: `/v1/agents/${agent.id}/credentials/${prefix}0`,
    headers: { authorization: `Bearer ${agent.api_key}` },
  });
  const answer = check.statusCode === 200 ? check.json() : undefined;
  if (!answer?.access_token?.startsWith('sk-bench-0-')) {
    throw new Error(`a test retrieval answered ${check.statusCode}: ${check.body.slice(0, 300)}`);
  }
  return { agentId: agent.id, agentName: agent.name, apiKey: agent.api_key };
};

/** The audit log's last seq (0 when empty): the start of a measured window. */
const auditHead = async ({ vault }) => {
  const row = await vault.store.db
    .selectFrom('audit_head')
    .select('seq')
    .where('id', '=', 1)
    .executeTakeFirst();
  return Number(row?.seq ?? 0);
};

/** `action` events (default `credential.retrieve`) after `afterSeq`, by decision, and the head counted up to. */
const auditCount = async (server, { afterSeq, action = 'credential.retrieve' }) => {
  const head = await auditHead(server);
  const rows = await server.vault.store.db
    .selectFrom('audit_events')
    .select(['decision', 'reason', (eb) => eb.fn.countAll().as('n')])
    .where('seq', '>', afterSeq)
    .where('seq', '<=', head)
    .where('action', '=', action)
    .groupBy(['decision', 'reason'])
    .execute();
  const count = (/** @type {(r: { decision: string, reason: string | null }) => boolean} */ pick) =>
    rows.filter(pick).reduce((sum, r) => sum + Number(r.n), 0);
  return {
    head,
    events: head - afterSeq,
    allow: count((r) => r.decision === 'allow'),
    deny: count((r) => r.decision === 'deny' && r.reason !== 'mcp_request_cancelled'),
    // A call in flight when the load generator stops is cancelled by its closed connection: audited
    // as refused with this reason, and not a gap.
    cancelled: count((r) => r.decision === 'deny' && r.reason === 'mcp_request_cancelled'),
  };
};

const startUpstream = async () => (await import('./proxy-upstream.mjs')).startUpstream();
const startMcpUpstream = async () => (await import('./mcp-upstream.mjs')).startMcpUpstream();
const startOp = async () => (await import('./oauth-provider.mjs')).startOAuthProvider();
const starters = {
  ceiling: startCeiling,
  fastify: startFastify,
  vault: startVault,
  upstream: startUpstream,
  'mcp-upstream': startMcpUpstream,
  op: startOp,
};
if (!starters[kind]) throw new Error(`server-child: unknown kind ${kind}`);
const server = await starters[kind]();
let mark;
const eventLoopDelay = monitorEventLoopDelay({ resolution: 1 });
eventLoopDelay.enable();
let profiler;
let heapProfiler;
/** Stops a profiler session with `method`, writes the profile it returns to `file`. */
const finishProfile = async (session, method, file) => {
  const { profile } = await session.post(method);
  session.disconnect();
  writeFileSync(file, JSON.stringify(profile));
  return file;
};
const commands = {
  /** Starts a measurement window: CPU time (the process's, the main thread's), event-loop use and delay. */
  mark: () => {
    eventLoopDelay.reset();
    mark = {
      cpu: process.cpuUsage(),
      mainThread: mainThreadCpuSeconds(),
      elu: performance.eventLoopUtilization(),
      statements,
    };
    return true;
  },
  /** CPU milliseconds used, event-loop utilization and delay, and statements since `mark`. */
  measure: () => {
    const cpu = process.cpuUsage(mark.cpu);
    const mainThread = mainThreadCpuSeconds();
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      mainThreadCpuMs:
        mainThread === undefined || mark.mainThread === undefined
          ? undefined
          : (mainThread - mark.mainThread) * 1000,
      eventLoopUtilization: performance.eventLoopUtilization(mark.elu).utilization,
      // How late the event loop ran a 1 ms timer: its stalls (garbage collections, synchronous work).
      eventLoopDelayMs: {
        p99: eventLoopDelay.percentile(99) / 1e6,
        max: eventLoopDelay.max / 1e6,
      },
      statements: statements - mark.statements,
    };
  },
  seed: async ({ count, prefix }) => {
    const { seedCredentials } = await import('./seed.mjs');
    await seedCredentials(server.vault, server.dataDir, { count, prefix });
    return count;
  },
  injectReads: (args) => injectReads(server, args),
  setupRetrieval: (args) => setupRetrieval(server, args),
  injectRetrievals: (args) => injectRetrievals(server, args),
  /** V8's sampling profiler, in this process, from now until `profileStop` (BENCH_CPU_PROF). */
  profileStart: async () => {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    await profiler.post('Profiler.start');
    return true;
  },
  profileStop: ({ file }) => finishProfile(profiler, 'Profiler.stop', file),
  /**
   * V8's sampling heap profiler (BENCH_HEAP_PROF): allocations sampled every 4 KiB on average, kept in
   * the profile if they outlived a young-generation collection (promoted, whether a full collection
   * freed them later or not): what makes the scavenges slow and fills the old generation.
   */
  heapProfileStart: async () => {
    heapProfiler = new Session();
    heapProfiler.connect();
    await heapProfiler.post('HeapProfiler.enable');
    await heapProfiler.post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: false,
    });
    return true;
  },
  heapProfileStop: ({ file }) => finishProfile(heapProfiler, 'HeapProfiler.stopSampling', file),
  setupProxy: async (args) => (await import('./proxy-upstream.mjs')).setupProxy(server, args),
  /** Peak resident memory since the last reset (`resetPeakRss`), for the proxy's streaming run. */
  peakRss: async () => (await import('./proxy-upstream.mjs')).peakRss(),
  resetPeakRss: async () => (await import('./proxy-upstream.mjs')).resetPeakRss(),
  setupMcpProxy: async (args) => (await import('./mcp-upstream.mjs')).setupMcpProxy(server, args),
  /** The MCP upstream's counters: initialize requests, sessions ended, sessions held. */
  mcpCounts: () => server.counts(),
  /** Resident and heap memory after full collections, and the MCP proxy's open sessions. */
  memoryAfterGc: async () => ({
    ...(await (await import('./mcp-upstream.mjs')).memoryAfterGc()),
    sessions: server.vault?.services.mcpEndpoint.sessionCount(),
  }),
  durableAppends: async (args) => (await import('./mcp-upstream.mjs')).durableAppends(server, args),
  /** The statements that held the main thread longest (BENCH_STATEMENT_TIMES=1), and a fresh start. */
  statementTimes: ({ top = 10 }) => {
    const rows = [...statementTimes].sort((a, b) => b[1].ms - a[1].ms).slice(0, top);
    statementTimes.clear();
    return rows.map(([sql, t]) => ({ sql: sql.slice(0, 160), ...t }));
  },
  // The oauth-refresh section (oauth-provider.mjs in the `op` child, oauth-seed.mjs in the vault).
  opClient: () => ({ url: server.url, client: server.client, resource: server.resource }),
  mint: (args) => server.mint(args),
  opStats: () => server.stats(),
  setupOAuthApp: async (args) => (await import('./oauth-seed.mjs')).setupOAuthApp(server, args),
  seedOAuth: async (args) => (await import('./oauth-seed.mjs')).seedOAuthCredentials(server, args),
  refreshProgress: async (args) => (await import('./oauth-seed.mjs')).refreshProgress(server, args),
  refreshOutcome: async (args) => (await import('./oauth-seed.mjs')).refreshOutcome(server, args),
  idlePasses: async (args) => (await import('./oauth-seed.mjs')).idlePasses(server, args),
  refreshAtRate: async (args) => (await import('./oauth-seed.mjs')).refreshAtRate(server, args),
  auditHead: () => auditHead(server),
  auditCount: (args) => auditCount(server, args),
  stop: async () => {
    await server.stop();
    setImmediate(() => process.exit(0));
    return true;
  },
};

process.on('message', async ({ id, cmd, args }) => {
  try {
    process.send({ id, result: await commands[cmd](args ?? {}) });
  } catch (error) {
    process.send({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', url: server.url, token: server.token });
