import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { devicePollRepo } from '../../src/oauth/device-poll-repo.js';
import { createDevicePoller, type PollResult } from '../../src/oauth/device-poller.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * The device-flow poller's schedule and lease on a real SQLite store, with a clock the test moves:
 * the interval and `slow_down` are written for whichever process polls next; a code held by one
 * poller is not polled by another; a holder that stalled past its lease is taken over, and its late
 * write is refused by the fence.
 */
describe('device-flow poller', () => {
  let dir: TempDataDir;
  let store: Store;
  let nowMs: number;
  const clock = { now: () => new Date(nowMs) };

  beforeEach(async () => {
    dir = await createTempDataDir();
    store = await openStore({ dataDir: dir.dir });
    nowMs = Date.parse('2026-01-01T00:00:00.000Z');
    await devicePollRepo.insert(store.db, {
      sessionId: 's1',
      namespace: 'default',
      intervalSeconds: 5,
      firstPollAt: new Date(nowMs + 5000).toISOString(),
    });
  });
  afterEach(async () => {
    await store.close();
    await dir.cleanup();
  });

  const row = () =>
    store.db.selectFrom('device_polls').selectAll().where('session_id', '=', 's1').executeTakeFirst();

  const pollerWith = (poll: (id: string) => Promise<PollResult>) =>
    createDevicePoller({ store, clock, poll, options: { leaseMs: 30_000 } });

  it('polls nothing before the interval, then writes the next poll’s time; slow_down adds 5 s', async () => {
    const polled: string[] = [];
    let answer: PollResult = { done: false, slowDown: true };
    const poller = pollerWith(async (id) => {
      polled.push(id);
      return answer;
    });
    nowMs += 4000;
    await poller.tick();
    expect(polled).toEqual([]);
    nowMs += 1000;
    await poller.tick();
    expect(polled).toEqual(['s1']);
    expect(await row()).toMatchObject({
      interval_seconds: 10,
      next_poll_at: new Date(nowMs + 10_000).toISOString(),
      polls: 1,
      lease_owner: null,
    });
    answer = { done: true };
    nowMs += 10_000;
    await poller.tick();
    expect(polled).toEqual(['s1', 's1']);
    expect(await row()).toBeUndefined();
  });

  it('lets one poller at a time hold a code, and fences off a holder that outlived its lease', async () => {
    let release!: (result: PollResult) => void;
    const slow = pollerWith(() => new Promise<PollResult>((resolve) => (release = resolve)));
    const otherPolls: string[] = [];
    const other = pollerWith(async (id) => {
      otherPolls.push(id);
      return { done: false };
    });
    nowMs += 5000;
    const held = slow.tick();
    // Wait until the slow poller holds the lease and is inside its poll.
    while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
    await other.tick();
    expect(otherPolls).toEqual([]);

    // The holder stalls past its lease: the other takes over and polls.
    nowMs += 31_000;
    await other.tick();
    expect(otherPolls).toEqual(['s1']);
    const afterTakeover = await row();

    // The stalled holder's answer comes at last; its fence is stale, so it writes nothing.
    release({ done: false, slowDown: true });
    await held;
    expect(await row()).toEqual(afterTakeover);
    expect(afterTakeover).toMatchObject({ interval_seconds: 5, polls: 1 });
  });
});
