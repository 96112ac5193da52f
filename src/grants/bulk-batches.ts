/**
 * Large admin changes (an import, a bulk revoke, the kill switch) run as a series of short
 * transactions, each atomic with its own audit events, with a turn of the event loop between them:
 * no transaction holds a lock, or (on SQLite, whose driver is synchronous) the event loop, for more
 * than a few milliseconds, so the rest of the vault and the other replicas keep answering.
 */

/** Lets timers and I/O that arrived meanwhile run before the next batch. */
export const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs `batch` (one audited transaction) until it says there is no more, giving the event loop a turn
 * between batches, and returns what each batch returned. A failure of the first batch is rethrown as
 * is (nothing was changed); a later one becomes `partial(error, done)`, an error that says what the
 * committed batches did.
 */
export const runInBatches = async <R>(
  batch: (index: number) => Promise<{ result: R; more: boolean }>,
  partial: (error: unknown, done: readonly R[]) => Error,
): Promise<R[]> => {
  const done: R[] = [];
  for (let index = 0; ; index += 1) {
    if (index > 0) await nextTurn();
    let outcome: { result: R; more: boolean };
    try {
      outcome = await batch(index);
    } catch (error) {
      if (index === 0) throw error;
      throw partial(error, done);
    }
    done.push(outcome.result);
    if (!outcome.more) return done;
  }
};
