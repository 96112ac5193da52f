/**
 * Waiting for a SQLite lock in small steps, on a thread that has nothing else to do meanwhile.
 *
 * SQLite's own busy handler (`PRAGMA busy_timeout`) sleeps 1, 2, 5, 10, … ms between tries, so a lock
 * held for 3 ms costs its waiter 8 ms: under load the checkpointer's RESTART holds the writer lock for
 * 2 to 4 ms several times a second, and each time the audit thread (every request waits for its
 * commit) slept until the next step of that table. The connections of the worker threads that write
 * (the audit writer, the checkpointer) turn that handler off (`busy_timeout = 0`) and try again every
 * 0.1 ms instead, so they take the lock within a tenth of a millisecond of its release. A lock still
 * held after 20 ms is a long change (an import, a re-wrap batch), not a checkpoint: from then on
 * the tries are a millisecond apart, so the wait costs next to no CPU. This blocks the calling thread:
 * never use it on the event loop.
 */

const pause = new Int32Array(new SharedArrayBuffer(4));

/** How long the tries stay 0.1 ms apart; a RESTART checkpoint holds the lock for 2 to 4 ms. */
const fineMs = 20;
const fineStepMs = 0.1;
const coarseStepMs = 1;

export interface RetryOptions {
  /** How long to keep trying before giving up. */
  patienceMs: number;
}

/**
 * Calls `attempt` until it returns true or `patienceMs` have passed; returns whether it succeeded. The
 * first try is made at once, the next ones 0.1 ms apart, then a millisecond apart after 20 ms.
 */
export const retryUntil = (attempt: () => boolean, { patienceMs }: RetryOptions): boolean => {
  const started = performance.now();
  for (;;) {
    if (attempt()) return true;
    const elapsed = performance.now() - started;
    if (elapsed >= patienceMs) return false;
    Atomics.wait(pause, 0, 0, elapsed < fineMs ? fineStepMs : coarseStepMs);
  }
};

/** `SQLITE_BUSY` and its extended codes (`SQLITE_BUSY_SNAPSHOT`, …), as better-sqlite3 reports them. */
export const isBusyError = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
};

/**
 * Runs `run` (a whole transaction: a try that found the lock taken has changed nothing) until it does
 * not fail with SQLITE_BUSY. Any other error is thrown at once; SQLITE_BUSY is thrown once
 * `patienceMs` have passed.
 */
export const withBusyRetry = <T>(run: () => T, options: RetryOptions): T => {
  let result: { value: T } | undefined;
  let lastBusy: unknown;
  const done = retryUntil(() => {
    try {
      result = { value: run() };
      return true;
    } catch (error) {
      if (!isBusyError(error)) throw error;
      lastBusy = error;
      return false;
    }
  }, options);
  if (!done || !result) throw lastBusy;
  return result.value;
};
