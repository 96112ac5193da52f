import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMemoryCounters, type CounterRequirement } from '../../src/policy/counters.js';
import { createStoreCounters } from '../../src/policy/store-counters.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir } from '../helpers/sqlite.js';
import { describeOnEveryStore, type FreshDatabase } from '../helpers/stores.js';
import { countersContract } from './counters-contract.js';

describe('memory counters', () => {
  countersContract(async () => createMemoryCounters());
});

/**
 * The store's counters: the same contract on SQLite and PostgreSQL, no move of the access generation,
 * pruning, and exactness between two separate connections to one PostgreSQL database (two replicas).
 */
describeOnEveryStore('store counters', (target) => {
  let database: FreshDatabase;
  let dataDir: Awaited<ReturnType<typeof createTempDataDir>>;
  let store: Store;
  const extra: Store[] = [];

  beforeEach(async () => {
    database = await target.fresh();
    dataDir = await createTempDataDir();
    store = await openStore({ dataDir: dataDir.dir, databaseUrl: database.databaseUrl });
  });
  afterEach(async () => {
    for (const other of extra.splice(0)) await other.close();
    await store.close();
    await dataDir.cleanup();
    await database.cleanup();
  });

  countersContract(async () => createStoreCounters({ store }));

  const generation = async () =>
    Number((await store.db.selectFrom('access_generation').select('value').executeTakeFirstOrThrow()).value);

  it('never moves the access generation, counting or resetting', async () => {
    const counters = createStoreCounters({ store });
    const before = await generation();
    const rate: CounterRequirement = { key: 'k', limit: 5, window: { kind: 'sliding', seconds: 60 } };
    const cap: CounterRequirement = { key: 'c', limit: 5, window: { kind: 'total' } };
    for (let i = 0; i < 3; i += 1) await counters.consume([rate, cap], new Date());
    await counters.reset('');
    expect(await generation()).toBe(before);
    expect((await store.db.selectFrom('access_changes').selectAll().execute()).length).toBe(0);
  });

  it('resets inside the caller’s transaction: only the picked keys, sliding uses too, undone by a rollback', async () => {
    const counters = createStoreCounters({ store });
    const at = new Date('2026-11-27T08:00:10Z');
    const req = (key: string, window: CounterRequirement['window']): CounterRequirement => ({
      key,
      limit: 5,
      window,
    });
    const a = req('policy=p&rule=0&agent=a', { kind: 'total' });
    const b = req('policy=p&rule=0&agent=b', { kind: 'total' });
    const slidingA = req('policy=p&rule=1&agent=a', { kind: 'sliding', seconds: 60 });
    const other = req('policy=q&rule=0&agent=a', { kind: 'total' });
    await counters.consume([a, b, slidingA, other], at);
    const used = async () => (await counters.usage('', at)).map((line) => [line.key, line.used] as const);

    await store.db
      .transaction()
      .execute(async (trx) => {
        expect(await counters.resetIn(trx, 'policy=p&', () => true)).toHaveLength(3);
        throw new Error('roll back');
      })
      .catch((error: Error) => expect(error.message).toBe('roll back'));
    expect(await used()).toHaveLength(4);

    const reset = await store.db
      .transaction()
      .execute((trx) => counters.resetIn(trx, 'policy=p&', (key) => key.endsWith('agent=a')));
    expect(reset).toEqual([a.key, slidingA.key]);
    expect(await used()).toEqual([
      [b.key, 1],
      [other.key, 1],
    ]);
    // The sliding window's counted uses went with it: counting again starts from one.
    await counters.consume([slidingA], at);
    expect((await counters.usage(slidingA.key, at))[0]).toMatchObject({ used: 1, remaining: 4 });
  });

  it('prunes buckets whose window ended over an hour ago, and idle sliding windows with their uses', async () => {
    const counters = createStoreCounters({ store });
    const old = new Date('2026-11-27T08:00:10Z');
    const now = new Date('2026-11-27T10:00:10Z');
    const fixed: CounterRequirement = { key: 'f', limit: 5, window: { kind: 'fixed', seconds: 60 } };
    const sliding: CounterRequirement = { key: 's', limit: 5, window: { kind: 'sliding', seconds: 60 } };
    const total: CounterRequirement = { key: 't', limit: 5, window: { kind: 'total' } };
    await counters.consume([fixed, sliding, total], old);
    await counters.consume([fixed], now);
    await counters.prune(now);
    const buckets = await store.db
      .selectFrom('counter_buckets')
      .select(['key', 'bucket'])
      .orderBy('key')
      .execute();
    expect(buckets.map((row) => row.key)).toEqual(['f', 't']);
    expect(await store.db.selectFrom('counter_hits').selectAll().execute()).toEqual([]);
    expect((await counters.peek([fixed], now))[0]?.remaining).toBe(3);
    expect((await counters.peek([total], now))[0]?.remaining).toBe(3);
  });

  if (target.dialect === 'postgres') {
    it('two replicas (separate connections) consuming at once never let more than N through', async () => {
      const other = await openStore({ dataDir: dataDir.dir, databaseUrl: database.databaseUrl });
      extra.push(other);
      const replicas = [createStoreCounters({ store }), createStoreCounters({ store: other })];
      const limit = 25;
      const rate: CounterRequirement = {
        key: 'policy:p:rate:agent',
        limit,
        window: { kind: 'fixed', seconds: 3600 },
      };
      const cap: CounterRequirement = { key: 'policy:p:cap:agent', limit: 1000, window: { kind: 'total' } };
      const sliding: CounterRequirement = {
        key: 'policy:p:slide:agent',
        limit: 1000,
        window: { kind: 'sliding', seconds: 3600 },
      };
      const now = new Date();
      const attempts = Array.from({ length: 80 }, (_, i) =>
        replicas[i % 2]!.consume(i % 3 === 0 ? [rate, cap, sliding] : [sliding, cap, rate], now),
      );
      const results = await Promise.all(attempts);
      const through = results.filter((result) => result.every((r) => r.allowed)).length;
      expect(through).toBe(limit);
      // What got through was counted once on every counter, and nothing else was.
      const usage = await replicas[1]!.usage('policy:p:', now);
      expect(usage.map((line) => [line.key, line.used])).toEqual([
        [cap.key, limit],
        [rate.key, limit],
        [sliding.key, limit],
      ]);
    });
  }
});
