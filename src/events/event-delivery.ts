import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import type { AuditRecorder } from '../audit/audit-types.js';
import type { Clock } from '../lib/clock.js';
import type { GuardedFetch } from '../net/outbound-guard.js';
import { outboundRefusal } from '../net/outbound-guard.js';
import type { Store } from '../store/database.js';
import { defaultRetryPolicy, nextAttemptAt, type RetryPolicy, retryAfterMs } from './delivery-schedule.js';
import { type OutboxRow, outboxRepo } from './event-outbox.js';

export interface DeliveryLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface EventDeliveryDeps {
  store: Pick<Store, 'db' | 'dialect'>;
  clock: Clock;
  logger: DeliveryLogger;
  audit: Pick<AuditRecorder, 'record'>;
  /** The outbound guard's fetch: the receiver is a URL the operator chose, checked like any other. */
  fetch: GuardedFetch;
  url: string;
  /** `whsec_…` (Standard Webhooks): base64 of the HMAC key after the prefix. */
  secret: string;
  /** An event older than this when an attempt fails is given up on and recorded. */
  maxAgeMs: number;
  /** One attempt's limit, response included. */
  timeoutMs: number;
  pollMs: number;
  retry?: RetryPolicy;
  /** Rows claimed at once; they are sent concurrently. */
  batchSize?: number;
  /** Who holds a lease (unique per process). */
  owner?: string;
  random?: () => number;
}

/** The outcome of one attempt, for the outbox and the log: never a response body. */
type Attempt = { ok: true } | { ok: false; error: string; retryAfterMs?: number | undefined };

/**
 * Delivers the outbox to the operator's webhook, signed with the Standard Webhooks scheme
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature`). Rows are claimed under a lease, so any
 * number of replicas can run it: each event is sent by one of them at a time, and again only if that
 * attempt failed or its replica died before recording the answer (at least once; receivers dedupe by
 * `webhook-id`). A failed attempt is retried with exponential backoff and jitter, or when the
 * receiver's `Retry-After` says; past `maxAgeMs` the event is given up on, with an audit event.
 */
export const createEventDelivery = (deps: EventDeliveryDeps) => {
  const { store, clock, logger } = deps;
  const { db, dialect } = store;
  const webhook = new Webhook(deps.secret);
  const retry = deps.retry ?? defaultRetryPolicy;
  const batchSize = deps.batchSize ?? 20;
  const owner = deps.owner ?? `${process.pid}-${randomUUID()}`;
  const random = deps.random ?? Math.random;
  // Long enough for one attempt and its bookkeeping: a lease that ran out while the answer was on its
  // way would let a second replica send the event again.
  const leaseMs = deps.timeoutMs * 2 + 5_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  const attempt = async (row: OutboxRow): Promise<Attempt> => {
    const sentAt = clock.now();
    try {
      const response = await deps.fetch(deps.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'tokenvault-events',
          'webhook-id': row.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': webhook.sign(row.id, sentAt, row.payload),
        },
        body: row.payload,
        signal: AbortSignal.timeout(deps.timeoutMs),
      });
      // The body is not read: nothing in it changes what happens next, and it may be large.
      await response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) return { ok: true };
      return {
        ok: false,
        error: `http_${response.status}`,
        retryAfterMs: retryAfterMs(response.headers.get('retry-after'), clock.now()),
      };
    } catch (error) {
      const refused = outboundRefusal(error);
      if (refused) return { ok: false, error: 'outbound_refused' };
      const name = (error as Error).name;
      if (name === 'TimeoutError' || name === 'AbortError') return { ok: false, error: 'timeout' };
      const cause = (error as { cause?: { code?: unknown } }).cause;
      return { ok: false, error: typeof cause?.code === 'string' ? cause.code : 'network_error' };
    }
  };

  const settle = async (row: OutboxRow, result: Attempt): Promise<void> => {
    if (result.ok) {
      await outboxRepo.remove(db, row.id, owner);
      return;
    }
    const attempts = row.attempts + 1;
    const now = clock.now();
    const next = nextAttemptAt({
      now,
      createdAt: new Date(row.created_at),
      failures: attempts,
      retryAfterMs: result.retryAfterMs,
      maxAgeMs: deps.maxAgeMs,
      policy: retry,
      random,
    });
    const facts = { event_id: row.id, event_type: row.type, attempts, last_error: result.error };
    if (next) {
      logger.info({ ...facts, next_attempt_at: next.toISOString() }, 'event delivery failed; will retry');
      await outboxRepo.retryAt(db, { id: row.id, owner, attempts, next, lastError: result.error });
      return;
    }
    // Recorded before the row goes: if the audit cannot be written, the row stays and this is retried.
    await deps.audit.record({
      namespace: row.namespace,
      actor: { type: 'system', id: null },
      action: 'event.undeliverable',
      target: { type: 'event', id: row.id },
      decision: 'deny',
      reason: 'event_undeliverable',
      details: { event_type: row.type, attempts, created_at: row.created_at, last_error: result.error },
    });
    logger.warn(facts, 'event given up on: not delivered within the age limit');
    await outboxRepo.remove(db, row.id, owner);
  };

  /** Claims and sends due events until none is left (or the deliverer stops). */
  const drain = async (): Promise<void> => {
    while (!stopped) {
      const now = clock.now();
      const rows = await outboxRepo.claim(db, dialect, {
        owner,
        now,
        leaseUntil: new Date(now.getTime() + leaseMs),
        limit: batchSize,
      });
      await Promise.all(rows.map(async (row) => settle(row, await attempt(row))));
      if (rows.length < batchSize) return;
    }
  };

  const tick = async (): Promise<void> => {
    if (running) return running;
    running = drain()
      .catch((error: unknown) => logger.warn({ err: error }, 'event delivery paused; it resumes on its own'))
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  return {
    start() {
      void tick();
      timer = setInterval(() => void tick(), deps.pollMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await running;
      await outboxRepo.release(db, owner).catch(() => {});
    },
    /** Sends whatever is due now and resolves when done (tests, and a caller that cannot wait a poll). */
    deliverDue: () => tick(),
  };
};

export type EventDelivery = ReturnType<typeof createEventDelivery>;
