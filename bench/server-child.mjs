// The servers under load, each in its own process so the load generator never shares their event loop:
//   node bench/server-child.mjs ceiling   a bare node:http server answering a fixed JSON body
//   node bench/server-child.mjs vault     the vault (SQLite in BENCH_DATA_DIR, or BENCH_CHILD_DATABASE_URL)
// Both listen on 127.0.0.1 only and take commands from the parent over the IPC channel.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { percentile } from './load.mjs';

const kind = process.argv[2];

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

const startCeiling = async () => {
  const server = createServer((req, res) => {
    // Read the body to the end, as a real server must before it answers.
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(req.method === 'POST' ? 201 : 200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(fixedBody),
      });
      res.end(fixedBody);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
};

const startVault = async () => {
  const { loadConfig } = await import('../dist/config/load-config.js');
  const { createVault } = await import('../dist/main.js');
  const dataDir = process.env.BENCH_DATA_DIR;
  // The environment is not passed on: loadConfig rejects TOKENVAULT_* variables it does not know,
  // and TOKENVAULT_BENCH_DATABASE_URL is one of those.
  const config = loadConfig(
    {
      dataDir,
      databaseUrl: process.env.BENCH_CHILD_DATABASE_URL || undefined,
      host: '127.0.0.1',
      port: '0',
      logLevel: 'silent',
      // Every request authenticates with the same token from the same address; failures are bugs.
      authFailureLimit: '100000',
    },
    {},
  );
  const vault = await createVault(config);
  const url = await vault.listen();
  const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return { vault, url, token, dataDir, stop: () => vault.stop() };
};

/** Sequential reads through app.inject(): the whole Fastify lifecycle and the store, no socket, no queue. */
const injectReads = async ({ vault, token }, { n, warmup, targets, prefix }) => {
  const read = (i) =>
    vault.app.inject({
      method: 'GET',
      url: `/v1/admin/credentials/${prefix}${i % targets}`,
      headers: { authorization: `Bearer ${token}` },
    });
  for (let i = 0; i < warmup; i++) await read(i * 7919);
  const times = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const response = await read(i * 7919);
    times.push(performance.now() - started);
    if (response.statusCode !== 200) throw new Error(`inject read answered ${response.statusCode}`);
  }
  times.sort((a, b) => a - b);
  return { n, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99) };
};

const server = kind === 'ceiling' ? await startCeiling() : await startVault();
let mark;
const commands = {
  /** Starts a measurement window: this process's CPU time and event-loop utilization. */
  mark: () => {
    mark = { cpu: process.cpuUsage(), elu: performance.eventLoopUtilization() };
    return true;
  },
  /** CPU milliseconds used and event-loop utilization since `mark`. */
  measure: () => {
    const cpu = process.cpuUsage(mark.cpu);
    return {
      cpuMs: (cpu.user + cpu.system) / 1000,
      eventLoopUtilization: performance.eventLoopUtilization(mark.elu).utilization,
    };
  },
  seed: async ({ count, prefix }) => {
    const { seedCredentials } = await import('./seed.mjs');
    await seedCredentials(server.vault, server.dataDir, { count, prefix });
    return count;
  },
  injectReads: (args) => injectReads(server, args),
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
