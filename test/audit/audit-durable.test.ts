import { afterEach, describe, expect, it } from 'vitest';
import { createAuditWriter } from '../../src/audit/audit-writer.js';
import { systemClock } from '../../src/lib/clock.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

const event = (n: number) => ({
  namespace: 'default',
  actor: { type: 'system' as const, id: null },
  action: 'test.event',
  decision: 'allow' as const,
  reason: 'ok',
  details: { n },
});

describe('audit writer durability', () => {
  let dir: TempDataDir;
  let store: Store;
  afterEach(async () => {
    await store?.close();
    await dir?.cleanup();
  });

  it('waits for one durable sync per group commit before any caller is told', async () => {
    dir = await createTempDataDir();
    store = await openStore({ dataDir: dir.dir });
    const syncs: number[] = [];
    const writer = createAuditWriter({
      db: store.db,
      dialect: store.dialect,
      clock: systemClock,
      logger: { error: () => {} },
      durable: async () => {
        syncs.push(Date.now());
        await store.durable();
      },
    });
    await Promise.all(Array.from({ length: 100 }, (_, n) => writer.record(event(n))));
    expect(syncs.length).toBeGreaterThanOrEqual(1);
    expect(syncs.length).toBeLessThan(10);
    await writer.close();
  });

  it('fails every caller of the batch closed when the sync fails', async () => {
    dir = await createTempDataDir();
    store = await openStore({ dataDir: dir.dir });
    const writer = createAuditWriter({
      db: store.db,
      dialect: store.dialect,
      clock: systemClock,
      logger: { error: () => {} },
      durable: async () => {
        throw new Error('EIO');
      },
    });
    const results = await Promise.allSettled([writer.record(event(1)), writer.record(event(2))]);
    for (const result of results) {
      expect(result).toMatchObject({ status: 'rejected', reason: { code: 'audit_unavailable' } });
    }
    await writer.close();
  });
});
