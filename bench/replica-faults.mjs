#!/usr/bin/env node
// Replica faults on PostgreSQL, reproducible: two `tokenvault serve` processes on one fresh database,
// both under retrieval load; replica B is paused (SIGSTOP) and killed (SIGKILL) over and over while A is
// measured. Prints one JSON object of figures:
//   pause   per trial: A's answers, failures and slowest answer while B was stopped
//   kill    per kill: A's answers, failures and slowest answer around the kill; B's restart time
//   audit   every 200 answer (matched by request id, on both replicas) against the audit log: answers
//           without their `credential.retrieve` event are violations; then `audit verify`
//
// Needs `npm run build` and a PostgreSQL admin URL (a role allowed to CREATE DATABASE) in
// TOKENVAULT_BENCH_DATABASE_URL or TOKENVAULT_TEST_DATABASE_URL.
//
// FAULTS_PAUSES      pause trials (default 12)
// FAULTS_PAUSE_MS    how long B stays stopped (default 4000)
// FAULTS_KILLS       kills of B (default 10)
// FAULTS_CONNECTIONS concurrent retrieval loops per replica (default 8)

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const adminUrl = process.env.TOKENVAULT_BENCH_DATABASE_URL || process.env.TOKENVAULT_TEST_DATABASE_URL;
if (!adminUrl) {
  console.error('Set TOKENVAULT_BENCH_DATABASE_URL to a PostgreSQL admin URL (see the header of this file).');
  process.exit(2);
}
const pauses = Number(process.env.FAULTS_PAUSES ?? 12);
const pauseMs = Number(process.env.FAULTS_PAUSE_MS ?? 4000);
const kills = Number(process.env.FAULTS_KILLS ?? 10);
const connections = Number(process.env.FAULTS_CONNECTIONS ?? 8);
const bin = fileURLToPath(new URL('../bin/tokenvault', import.meta.url));

const withAdmin = async (query) => {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(query);
  } finally {
    await client.end();
  }
};
const dbName = `tv_faults_${randomBytes(6).toString('hex')}`;
await withAdmin(`CREATE DATABASE "${dbName}"`);
const dbUrl = new URL(adminUrl);
dbUrl.pathname = `/${dbName}`;
const env = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  TOKENVAULT_MASTER_KEY: randomBytes(32).toString('base64'),
  TOKENVAULT_LOG_LEVEL: 'warn',
};
const dirs = [];

/** Starts a replica; resolves once it listens, with how long that took. */
const startReplica = (dataDir) =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--port', '0', '--data-dir', dataDir, '--database-url', dbUrl.toString()],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let output = '';
    child.stderr.on('data', (chunk) => {
      output += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) resolve({ child, url: match[1], startMs: Math.round(performance.now() - started) });
    });
    child.on('exit', (code) => reject(new Error(`replica exited (${code}) before listening:\n${output}`)));
  });

const answered = new Set();
let apiKey;

/** Retrieval loops against one replica until stopped; every 200 answer's request id is kept. */
const load = (url) => {
  let running = true;
  const figures = { answered: 0, failed: 0, slowestMs: 0 };
  const loop = async () => {
    while (running) {
      const started = performance.now();
      try {
        const response = await fetch(`${url}/v1/agents/agent-42/credentials/slack`, {
          headers: { authorization: `Bearer ${apiKey}` },
        });
        await response.arrayBuffer();
        if (response.status === 200) {
          figures.answered += 1;
          answered.add(response.headers.get('x-request-id'));
        } else figures.failed += 1;
      } catch {
        figures.failed += 1;
        await sleep(20);
      }
      figures.slowestMs = Math.max(figures.slowestMs, Math.round(performance.now() - started));
    }
  };
  const loops = Array.from({ length: connections }, loop);
  return async () => {
    running = false;
    await Promise.all(loops);
    return figures;
  };
};

const replicaDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenvault-faults-'));
  dirs.push(dir);
  return dir;
};

let a;
let b;
try {
  const dirA = replicaDir();
  a = await startReplica(dirA);
  const rootToken = readFileSync(join(dirA, 'admin-token'), 'utf8').trim();
  const admin = async (method, path, body) => {
    const response = await fetch(`${a.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${rootToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json();
    if (response.status >= 300) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
    return json;
  };
  await admin('POST', '/v1/admin/credentials', { name: 'slack', type: 'api_key', secret: { api_key: 'x' } });
  apiKey = (await admin('POST', '/v1/admin/agents', { name: 'agent-42' })).api_key;
  await admin('POST', '/v1/admin/grants', {
    agent: 'agent-42',
    credential: 'slack',
    ttl: '24h',
    reveal: true,
  });
  const dirB = replicaDir();
  b = await startReplica(dirB);

  const pauseTrials = [];
  for (let trial = 0; trial < pauses; trial += 1) {
    const stopB = load(b.url);
    await sleep(300);
    const stopA = load(a.url);
    b.child.kill('SIGSTOP');
    await sleep(pauseMs);
    const onA = await stopA();
    b.child.kill('SIGCONT');
    await stopB();
    pauseTrials.push(onA);
  }

  const killTrials = [];
  for (let trial = 0; trial < kills; trial += 1) {
    const stopB = load(b.url);
    const stopA = load(a.url);
    await sleep(300 + Math.random() * 400);
    b.child.kill('SIGKILL');
    await sleep(1000);
    const onA = await stopA();
    await stopB();
    b = await startReplica(dirB);
    killTrials.push({ ...onA, restartMs: b.startMs });
  }

  const client = new pg.Client({ connectionString: dbUrl.toString() });
  await client.connect();
  const { rows } = await client.query(
    "select request_id from audit_events where action = 'credential.retrieve' and decision = 'allow'",
  );
  await client.end();
  const recorded = new Set(rows.map((row) => row.request_id));
  const violations = [...answered].filter((id) => !recorded.has(id)).length;
  const verify = await admin('POST', '/v1/admin/audit/verify');

  const worst = (trials, key) => Math.max(...trials.map((t) => t[key]));
  console.log(
    JSON.stringify(
      {
        pause: {
          trials: pauseTrials.length,
          pauseMs,
          slowestMs: worst(pauseTrials, 'slowestMs'),
          fewestAnswers: Math.min(...pauseTrials.map((t) => t.answered)),
          failures: pauseTrials.reduce((n, t) => n + t.failed, 0),
          perTrial: pauseTrials,
        },
        kill: {
          kills: killTrials.length,
          slowestMs: worst(killTrials, 'slowestMs'),
          failuresOnA: killTrials.reduce((n, t) => n + t.failed, 0),
          slowestRestartMs: worst(killTrials, 'restartMs'),
          perKill: killTrials,
        },
        audit: { answered: answered.size, violations, verify: { ok: verify.ok, checked: verify.checked } },
      },
      null,
      2,
    ),
  );
} finally {
  for (const replica of [a, b]) {
    replica?.child.kill('SIGCONT');
    replica?.child.kill('SIGKILL');
  }
  await sleep(200);
  await withAdmin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
