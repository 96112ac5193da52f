#!/usr/bin/env node
// `audit verify` over a large log (issue 3: 1,000,000 events in under 10 s on SQLite). Writes N keyed
// (HMAC-SHA-256, as a vault writes them since the keyed chain) events into a fresh SQLite store through the audit writer's own code path (validation, hashing, head
// lock), batched many events per transaction, then times `verify()` over them and checks it passes.
// `npm run bench` runs it as a child process (section `audit`); standalone: `npm run build && node
// bench/audit-verify.mjs`; or imported: `benchAuditVerify()`.
//
// BENCH_AUDIT_EVENTS  events to write and verify (default 1000000)

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import {
  auditChainStateKey,
  createAuditService,
  createAuditWriter,
  deriveChainKey,
  openStore,
  switchMac,
  systemClock,
} from './vault-modules.mjs';

// One transaction per batch: one durable commit per 10,000 events, as group commit does under load.
const eventsPerTransaction = 10_000;

const sampleEvent = (i) => ({
  namespace: 'default',
  actor: i % 4 === 0 ? { type: 'anonymous', id: null } : { type: 'agent', id: `agent-${i % 97}` },
  action: i % 4 === 0 ? 'agent.authenticate' : 'credential.retrieve',
  target: { type: 'credential', id: `service-${i % 31}` },
  decision: i % 4 === 0 ? 'deny' : 'allow',
  reason: i % 4 === 0 ? 'agent_key_invalid' : 'ok',
  client: { ip: `10.0.${(i >> 8) & 255}.${i & 255}`, userAgent: 'node-fetch/3.3.2' },
  requestId: `req_${i}`,
  details: { auth_method: 'api_key', scopes: ['chat:read', 'chat:write'] },
});

const rate = (n, seconds) => Math.round(n / seconds);

/** CPU seconds this process used: on a busy machine, what the wall clock alone cannot show. */
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** Writes `events` events into a fresh store and times `verify()`; returns the figures. */
export const benchAuditVerify = async ({ events = 1_000_000, log = console.log } = {}) => {
  const dir = mkdtempSync(join(os.tmpdir(), 'tokenvault-bench-audit-'));
  const store = await openStore({ dataDir: dir });
  try {
    // An audit key as a vault makes one (src/audit/audit-keys.ts), keyed from the first event.
    const chainKey = deriveChainKey('bench-audit-key', randomBytes(32));
    await store.db
      .insertInto('vault_state')
      .values({
        key: auditChainStateKey,
        value: JSON.stringify({ keyId: chainKey.keyId, fromSeq: 1, mac: switchMac(chainKey, 1) }),
        updated_at: new Date().toISOString(),
      })
      .execute();
    const writer = createAuditWriter({
      store,
      chainKey,
      clock: systemClock,
      logger: { error: (object, message) => log(`audit writer: ${message} ${String(object.err ?? '')}`) },
    });

    const writeStart = performance.now();
    for (let start = 0; start < events; start += eventsPerTransaction) {
      const batch = [];
      for (let i = start; i < Math.min(events, start + eventsPerTransaction); i++) batch.push(sampleEvent(i));
      await store.db.transaction().execute((trx) => writer.recordManyInTransaction(trx, batch));
      if ((start / eventsPerTransaction) % 20 === 19) log(`  wrote ${start + batch.length} events`);
    }
    const writeSeconds = (performance.now() - writeStart) / 1000;
    await writer.close();
    log(
      `wrote ${events} chained events in ${writeSeconds.toFixed(1)} s (${rate(events, writeSeconds)} events/s)`,
    );

    const service = createAuditService({ db: store.db, dialect: store.dialect, chainKey });
    const verifyStart = performance.now();
    const cpuStart = cpuSeconds();
    const result = await service.verify();
    const verifySeconds = (performance.now() - verifyStart) / 1000;
    const verifyCpuSeconds = cpuSeconds() - cpuStart;
    if (!result.ok || result.checked !== events || result.keyedFrom !== 1) {
      throw new Error(`verify did not pass: ${JSON.stringify(result)}`);
    }
    log(
      `verified ${result.checked} events in ${verifySeconds.toFixed(2)} s, ${verifyCpuSeconds.toFixed(2)} s of CPU (${rate(result.checked, verifySeconds)} events/s); target: under 10 s for 1,000,000`,
    );
    return {
      events,
      writeSeconds,
      writeEventsPerSecond: rate(events, writeSeconds),
      verifySeconds,
      verifyCpuSeconds,
      verifyEventsPerSecond: rate(result.checked, verifySeconds),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const raw = process.env.BENCH_AUDIT_EVENTS;
  const events = raw === undefined || raw === '' ? 1_000_000 : Number(raw);
  if (!Number.isInteger(events) || events <= 0)
    throw new Error('BENCH_AUDIT_EVENTS must be a positive integer');
  if (process.send) {
    // Forked by run.mjs: progress and the result go back over the IPC channel.
    const figures = await benchAuditVerify({
      events,
      log: (line) => process.send({ type: 'progress', text: line }),
    });
    process.send({ type: 'result', result: figures });
    process.disconnect();
  } else {
    const figures = await benchAuditVerify({ events, log: (line) => console.log(`[bench] ${line}`) });
    console.log(JSON.stringify({ audit_verify: figures }));
  }
}
