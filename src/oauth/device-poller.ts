import type { Clock } from '../lib/clock.js';

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

/**
 * Polls a device-flow token endpoint for each open session of this process, one timer per session,
 * honouring the interval and `slow_down`. In-process: a restarted vault does not resume a poll (the
 * session expires and the person asks for a new code), which keeps a crash from double-polling.
 */
export const createDevicePoller = (deps: {
  clock: Pick<Clock, 'now'>;
  poll: (id: string) => Promise<PollResult>;
}) => {
  const timers = new Map<string, NodeJS.Timeout>();
  let stopped = false;

  const schedule = (id: string, intervalSeconds: number) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(id);
      deps
        .poll(id)
        .then((result) => {
          if (!result.done) schedule(id, intervalSeconds + (result.slowDown ? 5 : 0));
        })
        // A poll that failed outright (network) is tried again at the same pace until the session expires.
        .catch(() => schedule(id, intervalSeconds));
    }, intervalSeconds * 1000);
    timer.unref();
    timers.set(id, timer);
  };

  return {
    start: (id: string, intervalSeconds: number) => schedule(id, Math.max(1, intervalSeconds)),
    stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
    },
  };
};
