import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSqliteChainAppender } from '../../src/audit/audit-chain.js';
import { toChainedFields } from '../../src/audit/audit-event.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

const eventCount = 100_000;
const healthzBudgetMs = 200;

/**
 * `audit verify` and `audit export` on SQLite run on a thread of their own: however long the log, a
 * verify does not show in the latency of the requests served meanwhile.
 */
describe('audit verify and export off the event loop (SQLite)', () => {
  let t: TestVault;
  beforeAll(async () => {
    t = await startTestVault();
    // The log is filled directly on a connection of the test's own, the way the audit thread writes
    // (with the vault's audit key: its log is keyed from the first event).
    const sqlite = new SQLite(t.vault.store.location);
    sqlite.pragma('busy_timeout = 5000');
    const append = createSqliteChainAppender(sqlite);
    const batch = 5000;
    for (let start = 0; start < eventCount; start += batch) {
      append(
        Array.from({ length: batch }, (_, i) =>
          toChainedFields(
            {
              namespace: 'default',
              actor: { type: 'system', id: null },
              action: 'credential.retrieve',
              decision: 'allow',
              reason: 'ok',
              details: { n: start + i },
            },
            { id: `ev-${start + i}`, time: new Date(Date.UTC(2026, 0, 1) + start + i).toISOString() },
          ),
        ),
        t.vault.services.auditChainKey.hmacKey,
      );
    }
    sqlite.close();
    // Warm up: the app's first request loads its plugins, and the token's last_used_at is written now.
    expect((await t.request('GET', '/v1/admin/tokens')).status).toBe(200);
  }, 120_000);
  afterAll(() => t?.stop());

  /** Runs `work` while polling /healthz back to back; returns its result and the slowest answer. */
  const whilePolling = async <T>(work: Promise<T>) => {
    let done = false;
    const settled = work.finally(() => {
      done = true;
    });
    let slowest = 0;
    let polls = 0;
    while (!done) {
      const started = performance.now();
      const health = await t.request('GET', '/healthz', { token: null });
      expect(health.status).toBe(200);
      slowest = Math.max(slowest, performance.now() - started);
      polls += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return { result: await settled, slowest, polls };
  };

  it(`verifies ${eventCount} events while /healthz answers under ${healthzBudgetMs} ms`, async () => {
    const { result, slowest, polls } = await whilePolling(t.request('POST', '/v1/admin/audit/verify'));
    expect(result.status, result.text).toBe(200);
    const body = result.body as { ok: boolean; checked: number };
    expect(body.ok).toBe(true);
    expect(body.checked).toBeGreaterThanOrEqual(eventCount);
    expect(polls).toBeGreaterThan(1);
    expect(slowest).toBeLessThan(healthzBudgetMs);
  });

  it('exports the log a page at a time from its thread, with every event in order', async () => {
    const { result, slowest } = await whilePolling(
      t.request('GET', '/v1/admin/audit/export?format=jsonl&action=credential.retrieve'),
    );
    expect(result.status).toBe(200);
    const lines = result.text.trimEnd().split('\n');
    expect(lines).toHaveLength(eventCount);
    expect((JSON.parse(lines[0]!) as { id: string }).id).toBe('ev-0');
    expect((JSON.parse(lines.at(-1)!) as { id: string }).id).toBe(`ev-${eventCount - 1}`);
    expect(slowest).toBeLessThan(healthzBudgetMs);
  });
});
