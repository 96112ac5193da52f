import { afterEach, beforeEach, expect, it } from 'vitest';
import type { AuditEventInput } from '../../src/audit/audit-types.js';
import { createEventDelivery, type EventDeliveryDeps } from '../../src/events/event-delivery.js';
import { createEventPublisher } from '../../src/events/event-outbox.js';
import type { VaultEvent } from '../../src/events/event-types.js';
import { systemClock } from '../../src/lib/clock.js';
import { createOutboundGuard } from '../../src/net/outbound-guard.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir } from '../helpers/sqlite.js';
import { describeOnEveryStore, type FreshDatabase } from '../helpers/stores.js';
import { startWebhookReceiver, testWebhookSecret, type WebhookReceiver } from './webhook-receiver.js';

const needsReauth: VaultEvent = {
  type: 'credential.needs_reauth',
  namespace: 'default',
  data: { credential_id: 'cred_1', credential_name: 'slack', reason: 'invalid_grant' },
};

const silent = { info: () => {}, warn: () => {} };
const guard = createOutboundGuard({ allow: { hosts: [], cidrs: ['127.0.0.1/32'] } });

/**
 * The outbox and its deliverer over a real store and a real local receiver: retries, backoff,
 * Retry-After, giving up, and a rolled-back change that sends nothing. The signature is checked by
 * the receiver with the Standard Webhooks library's own `Webhook.verify`.
 */
describeOnEveryStore('event delivery', (target) => {
  let database: FreshDatabase;
  let dataDir: Awaited<ReturnType<typeof createTempDataDir>>;
  let store: Store;
  let receiver: WebhookReceiver | undefined;
  const stops: (() => Promise<void>)[] = [];
  // The audit seam: what the deliverer records when it gives up (the real writer is tested elsewhere).
  const recorded: AuditEventInput[] = [];

  beforeEach(async () => {
    database = await target.fresh();
    dataDir = await createTempDataDir();
    store = await openStore({ dataDir: dataDir.dir, databaseUrl: database.databaseUrl });
    recorded.length = 0;
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await receiver?.close();
    receiver = undefined;
    await store.close();
    await dataDir.cleanup();
    await database.cleanup();
  });

  const deliverer = (overrides: Partial<EventDeliveryDeps> = {}) => {
    const delivery = createEventDelivery({
      store,
      clock: systemClock,
      logger: silent,
      audit: { record: async (event) => void recorded.push(event) },
      fetch: guard.fetch,
      url: receiver!.url,
      secret: testWebhookSecret,
      maxAgeMs: 60_000,
      timeoutMs: 2_000,
      pollMs: 20,
      retry: { baseMs: 40, maxMs: 5_000 },
      ...overrides,
    });
    stops.push(() => delivery.stop());
    return delivery;
  };
  const publisher = () => createEventPublisher({ db: store.db, clock: systemClock, enabled: true });
  const outboxSize = async () =>
    Number(
      (
        await store.db
          .selectFrom('event_outbox')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  it('POSTs the event once, signed so that Webhook.verify accepts it, and empties the outbox', async () => {
    receiver = await startWebhookReceiver();
    await publisher().publish(needsReauth);
    await deliverer().deliverDue();
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received;
    expect(got?.verified).toBe(true);
    expect(got?.headers['content-type']).toBe('application/json');
    const body = JSON.parse(got!.body) as Record<string, unknown>;
    expect(body).toEqual({
      id: got?.headers['webhook-id'],
      type: 'credential.needs_reauth',
      timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      namespace: 'default',
      data: needsReauth.data,
    });
    expect(await outboxSize()).toBe(0);
  });

  it('retries after a 500 and after a 429, waiting out its Retry-After, with the same id each time', async () => {
    receiver = await startWebhookReceiver({
      answer: (n) =>
        n === 0
          ? { status: 500 }
          : n === 1
            ? { status: 429, headers: { 'retry-after': '1' } }
            : { status: 200 },
    });
    await publisher().publish(needsReauth);
    deliverer().start();
    await receiver.waitFor(3);
    const [first, second, third] = receiver.received;
    expect([first, second, third].map((r) => r?.status)).toEqual([500, 429, 200]);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    // The backoff after the 500 is 20 to 40 ms; the 429 asked for a second, and got it.
    expect(second!.at - first!.at).toBeLessThan(900);
    expect(third!.at - second!.at).toBeGreaterThanOrEqual(950);
    await expect.poll(outboxSize).toBe(0);
  });

  it('sends nothing for a change whose transaction rolled back', async () => {
    receiver = await startWebhookReceiver();
    const events = publisher();
    await expect(
      store.db.transaction().execute(async (trx) => {
        await events.publish(needsReauth, trx);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await store.db
      .transaction()
      .execute((trx) => events.publish({ ...needsReauth, type: 'credential.reauthorized' }, trx));
    await deliverer().deliverDue();
    expect(receiver.received.map((r) => (JSON.parse(r.body) as { type: string }).type)).toEqual([
      'credential.reauthorized',
    ]);
  });

  it('gives up on an event older than the age limit, and records that without the payload', async () => {
    receiver = await startWebhookReceiver({ answer: () => ({ status: 503 }) });
    await publisher().publish(needsReauth);
    deliverer({ maxAgeMs: 300 }).start();
    await expect.poll(() => recorded.length, { timeout: 5_000 }).toBe(1);
    expect(recorded[0]).toMatchObject({
      action: 'event.undeliverable',
      actor: { type: 'system', id: null },
      target: { type: 'event', id: receiver.received[0]?.headers['webhook-id'] },
      reason: 'event_undeliverable',
      details: { event_type: 'credential.needs_reauth', last_error: 'http_503' },
    });
    expect(JSON.stringify(recorded[0])).not.toContain('invalid_grant');
    expect(receiver.received.length).toBeGreaterThan(1);
    expect(await outboxSize()).toBe(0);
  });

  it('publishes nothing when no webhook is configured', async () => {
    await createEventPublisher({ db: store.db, clock: systemClock, enabled: false }).publish(needsReauth);
    expect(await outboxSize()).toBe(0);
  });

  if (target.dialect === 'postgres') {
    it('two deliverers on one database (two replicas) send each event exactly once', async () => {
      receiver = await startWebhookReceiver({ delayMs: 15 });
      const other = await openStore({ dataDir: dataDir.dir, databaseUrl: database.databaseUrl });
      stops.push(() => other.close());
      const events = publisher();
      for (let i = 0; i < 60; i += 1) await events.publish({ ...needsReauth, data: { n: i } });
      const one = deliverer({ batchSize: 5 });
      const two = createEventDelivery({
        store: other,
        clock: systemClock,
        logger: silent,
        audit: { record: async () => {} },
        fetch: guard.fetch,
        url: receiver.url,
        secret: testWebhookSecret,
        maxAgeMs: 60_000,
        timeoutMs: 2_000,
        pollMs: 20,
        batchSize: 5,
      });
      stops.unshift(() => two.stop());
      one.start();
      two.start();
      await receiver.waitFor(60);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const ids = receiver.received.map((r) => r.headers['webhook-id']);
      expect(ids).toHaveLength(60);
      expect(new Set(ids).size).toBe(60);
      expect(
        new Set(receiver.received.map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n)).size,
      ).toBe(60);
      expect(await outboxSize()).toBe(0);
    });
  }
});
