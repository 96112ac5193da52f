import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/database.js';
import { devicePollRepo } from './device-poll-repo.js';

/** What a device-flow session shows its person: the code, and where to enter it. */
export interface DeviceInfo {
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** Seconds between polls, as the provider asked (RFC 8628 §3.2; 5 when it did not say). */
  interval: number;
}

export interface PollResult {
  done: boolean;
  /** The provider said `slow_down`: every later poll waits 5 s longer (RFC 8628 §3.5). */
  slowDown?: boolean;
}

export interface DevicePollerOptions {
  /** How often the worker reads what is due, in milliseconds. */
  tickMs: number;
  /**
   * How long a poll may hold its device code. Longer than one token request with its timeout (15 s),
   * so a live holder never loses it; a holder killed mid-poll frees the code once it runs out.
   */
  leaseMs: number;
  /** Polls in flight at once, per process. */
  concurrency: number;
  /** Due rows read per query. */
  batchSize: number;
}

export const devicePollerDefaults: DevicePollerOptions = {
  tickMs: 500,
  leaseMs: 30_000,
  concurrency: 8,
  batchSize: 100,
};

export interface DevicePollerDeps {
  store: Pick<Store, 'db'>;
  clock: Pick<Clock, 'now'>;
  /** One token request for the session's device code, and what became of the session. */
  poll: (sessionId: string) => Promise<PollResult>;
  logger?: { warn(object: object, message: string): void } | undefined;
  options?: Partial<DevicePollerOptions> | undefined;
}

/**
 * The background worker that polls the token endpoint for every device flow still waiting for its
 * person, in whichever process started it. The schedule and a lease live in the database
 * (`device_polls`, device-poll-repo.ts), not in memory, so:
 * - a restarted vault picks up the flows it had open (the device code is sealed in the session);
 * - with several replicas each device code is polled by one process at a time, and the provider's
 *   `interval` (5 s longer after each `slow_down`) is kept between polls whoever makes them, since the
 *   next poll's time is written by the poll that came before.
 */
export const createDevicePoller = (deps: DevicePollerDeps) => {
  const { db } = deps.store;
  const { clock } = deps;
  const options = { ...devicePollerDefaults, ...deps.options };
  const owner = `device-poller:${randomBytes(8).toString('hex')}`;
  const inFlight = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = true;

  const at = (ms: number) => new Date(ms).toISOString();

  /** One due session: take its lease, poll once, write when the next poll is (or that none is). */
  const pollOne = async (sessionId: string) => {
    const nowMs = clock.now().getTime();
    const lease = await devicePollRepo.claim(db, sessionId, owner, at(nowMs), at(nowMs + options.leaseMs));
    if (!lease) return;
    let result: PollResult;
    try {
      result = await deps.poll(sessionId);
    } catch (error) {
      // No answer (network, a store hiccup): tried again at the same pace until the session expires.
      deps.logger?.warn({ err: error, sessionId }, 'device flow poll failed; trying again');
      result = { done: false };
    }
    if (result.done) {
      await devicePollRepo.remove(db, sessionId);
      return;
    }
    const intervalSeconds = lease.intervalSeconds + (result.slowDown ? 5 : 0);
    // From the end of this poll: the provider counts from when it answered.
    const endMs = clock.now().getTime();
    await devicePollRepo.reschedule(
      db,
      sessionId,
      lease.fence,
      { intervalSeconds, nextPollAt: at(endMs + intervalSeconds * 1000) },
      at(endMs),
    );
  };

  /** One pass over what is due, `concurrency` polls at a time. Returns how many were looked at. */
  const tick = async (): Promise<number> => {
    const due = (await devicePollRepo.due(db, clock.now().toISOString(), options.batchSize)).filter(
      (row) => !inFlight.has(row.session_id),
    );
    const queue = due.map((row) => row.session_id);
    const lane = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        inFlight.add(id);
        try {
          await pollOne(id);
        } catch (error) {
          deps.logger?.warn({ err: error, sessionId: id }, 'device flow poll could not be recorded');
        } finally {
          inFlight.delete(id);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.concurrency, queue.length) }, lane));
    return due.length;
  };

  const loop = () => {
    if (stopped) return;
    running = tick()
      .then(() => undefined)
      .catch((error: unknown) => deps.logger?.warn({ err: error }, 'device flow poller tick failed'))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(loop, options.tickMs);
          timer.unref();
        }
      });
  };

  return {
    /** One pass, for tests (the worker runs it every `tickMs`). */
    tick,
    start() {
      if (!stopped) return;
      stopped = false;
      loop();
    },
    /** Stops polling here; open flows stay in the store for the next process to resume. */
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
};

export type DevicePoller = ReturnType<typeof createDevicePoller>;
