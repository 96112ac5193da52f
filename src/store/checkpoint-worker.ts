import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { retryUntil } from './busy-retry.js';

/**
 * Copies SQLite's WAL back into the database file, on a thread of its own (started by checkpointer.ts).
 *
 * Left to SQLite, the checkpoint runs inside whichever commit crosses the WAL size threshold: on the
 * event loop, or on the audit writer's thread, stalling every request waiting on either for the
 * milliseconds it takes to copy the pages and fsync the database file. Here a PASSIVE checkpoint
 * (it never blocks a reader or a writer) runs every `intervalMs`; one with nothing new to copy costs a
 * read of the WAL index. A PASSIVE checkpoint alone never lets the WAL start over while commits keep
 * coming (there is always a frame it has not copied yet), so once the WAL holds `restartFrames`
 * frames a RESTART checkpoint follows it: with nearly everything already copied it holds writers back
 * for a millisecond or two, and the next commit writes the WAL from its start again. The connections
 * that write keep an automatic checkpoint at a much larger WAL size, as a safety net should this
 * thread stop.
 */
export interface CheckpointerData {
  path: string;
  intervalMs: number;
  restartFrames: number;
}

export type CheckpointerMessage = { close: true };

/** What the thread tells its starter: a checkpoint that failed (the next one is tried all the same). */
export interface CheckpointerReport {
  error: string;
}

const port = parentPort;
if (!port) throw new Error('checkpoint-worker runs as a worker thread');
const { path, intervalMs, restartFrames } = workerData as CheckpointerData;

const sqlite = new SQLite(path, { fileMustExist: true });
// No busy handler: SQLite's own sleeps 1, 2, 5 ms between tries, and a writer that commits back to
// back (the audit thread holds its lock through each commit's fsync) leaves gaps far shorter than
// that, so a RESTART waiting that way lost nearly every time and the WAL grew. `restart` tries
// without waiting instead, every 0.1 ms (busy-retry.ts); a try that finds readers gives the writer
// lock back at once, so it never holds writers back either.
sqlite.pragma('busy_timeout = 0');
// NORMAL: the database file is fsynced after each checkpoint, and the WAL before it.
sqlite.pragma('synchronous = NORMAL');

/** How long one tick keeps trying to RESTART before leaving it to the next tick. */
const restartPatienceMs = 20;

const restart = () =>
  retryUntil(
    () => {
      const [result] = sqlite.pragma('wal_checkpoint(RESTART)') as { busy: number }[];
      return !result || result.busy === 0;
    },
    { patienceMs: restartPatienceMs },
  );

const timer = setInterval(() => {
  try {
    const [passive] = sqlite.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    if (passive && passive.log >= restartFrames) restart();
  } catch (error) {
    port.postMessage({
      error: error instanceof Error ? error.message : String(error),
    } satisfies CheckpointerReport);
  }
}, intervalMs);

port.on('message', (message: CheckpointerMessage) => {
  if ('close' in message) {
    clearInterval(timer);
    sqlite.close();
    port.close();
  }
});
