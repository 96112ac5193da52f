import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

/**
 * Copies SQLite's WAL back into the database file, on a thread of its own (started by database.ts).
 *
 * Left to SQLite, the checkpoint runs inside whichever commit crosses the WAL size threshold: on the
 * event loop, or on the audit writer's thread, stalling every request waiting on either for the
 * milliseconds it takes to copy the pages and fsync the database file. Here it runs in PASSIVE mode
 * (it never blocks a reader or a writer) every `intervalMs`; one with nothing new to copy costs a read
 * of the WAL index. The connections that write keep an automatic checkpoint at a much larger WAL
 * size, as a safety net should this thread stop.
 */
export interface CheckpointerData {
  path: string;
  intervalMs: number;
}

export type CheckpointerMessage = { close: true };

const port = parentPort;
if (!port) throw new Error('sqlite-checkpointer runs as a worker thread');
const { path, intervalMs } = workerData as CheckpointerData;

const sqlite = new SQLite(path, { fileMustExist: true });
sqlite.pragma('busy_timeout = 5000');
// NORMAL: the database file is fsynced after each checkpoint, and the WAL before it.
sqlite.pragma('synchronous = NORMAL');

const timer = setInterval(() => {
  try {
    sqlite.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    port.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
}, intervalMs);

port.on('message', (message: CheckpointerMessage) => {
  if ('close' in message) {
    clearInterval(timer);
    sqlite.close();
    port.close();
  }
});
