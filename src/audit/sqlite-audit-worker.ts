import { parentPort, workerData } from 'node:worker_threads';
import { withBusyRetry } from '../store/busy-retry.js';
import { openAuditWriterConnection } from '../store/sqlite-connection.js';
import { createSqliteChainAppender } from './audit-chain.js';
import type { ChainedFields } from './audit-hash.js';

/**
 * The SQLite audit writer's thread (started by sqlite-audit-appender.ts). It owns a connection of its
 * own and appends each batch of events to the hash chain in one `BEGIN IMMEDIATE … COMMIT`, with
 * `synchronous = FULL`: SQLite fdatasyncs the WAL inside the COMMIT, on this thread, so when `append`
 * returns the events are on disk and the batch is answered at once. Messages that arrive while a
 * commit and its fsync run are written together by the next one (group commit). The event loop that
 * serves requests never waits for an insert, a commit or an fsync, and a request crosses two threads
 * (the event loop and this one), not three: an fsync handed to libuv's thread pool cost a wake-up
 * more per batch, and on a busy machine each wake-up can wait a scheduler time slice
 * (docs/benchmarks.md). When another connection holds the write lock, the batch tries again in
 * 0.1 ms steps (busy-retry.ts) rather than sleeping through SQLite's 1-2-5 ms ones.
 */
export interface AppendRequest {
  id: number;
  /** The events, as JSON: one string crosses threads much faster than many small objects. */
  events: string;
}

/** One answer for every request written in the same commit. */
export type AppendReply =
  { ids: number[]; ok: true } | { ids: number[]; ok: false; message: string; code?: string | undefined };

/** `key`: from now on link with the audit chain key (sent before any append that needs it). */
export type WorkerMessage = AppendRequest | { close: true } | { key: Uint8Array };

const port = parentPort;
if (!port) throw new Error('sqlite-audit-worker runs as a worker thread');

const { path } = workerData as { path: string };
/**
 * How long a batch waits for the write lock (held by a change on the main connection, or by the
 * checkpointer's RESTART) before its requests fail closed: what `busy_timeout` gives the other writers.
 */
const lockPatienceMs = 5000;
const sqlite = openAuditWriterConnection(path);
const append = createSqliteChainAppender(sqlite);
/** The audit chain key's link key (audit-keys.ts), once the vault has loaded it. */
let hmacKey: Buffer | undefined;

let queue: AppendRequest[] = [];
let scheduled = false;

const flush = () => {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (batch.length === 0) return;
  const ids = batch.map(({ id }) => id);
  let reply: AppendReply;
  try {
    const events = batch.flatMap((request) => JSON.parse(request.events) as ChainedFields[]);
    withBusyRetry(() => append(events, hmacKey), { patienceMs: lockPatienceMs });
    reply = { ids, ok: true };
  } catch (error) {
    // The driver's code (SQLITE_BUSY after the patience) travels too, so the lock wait is counted.
    const code = (error as { code?: unknown } | null)?.code;
    reply = {
      ids,
      ok: false,
      message: error instanceof Error ? error.message : String(error),
      code: typeof code === 'string' ? code : undefined,
    };
  }
  port.postMessage(reply);
};

port.on('message', (message: WorkerMessage) => {
  if ('key' in message) {
    // Messages arrive in order: every append sent after it is keyed.
    hmacKey = Buffer.from(message.key);
    return;
  }
  if ('close' in message) {
    flush();
    sqlite.close();
    port.close();
    return;
  }
  queue.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
