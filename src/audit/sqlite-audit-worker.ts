import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { configureWritingConnection } from '../store/sqlite-connection.js';
import { createWalSync } from '../store/wal-sync.js';
import { createSqliteChainAppender } from './audit-chain.js';
import type { ChainedFields } from './audit-hash.js';

/**
 * The SQLite audit writer's thread (started by sqlite-audit-appender.ts). It owns a connection of its
 * own and appends each batch of events to the hash chain in one `BEGIN IMMEDIATE … COMMIT`; it answers
 * for a batch only once an fsync of the WAL that began after that commit has finished, so an event is
 * on disk before the request that made it is answered. The fsync runs on libuv's thread pool while
 * the next batch is being written (wal-sync.ts); messages that arrive meanwhile are written together
 * (group commit). The event loop that serves requests never waits for an insert, a commit or an fsync.
 */

export interface AppendRequest {
  id: number;
  /** The events, as JSON: one string crosses threads much faster than many small objects. */
  events: string;
}

/** One answer for every request written in the same commit. */
export type AppendReply = { ids: number[]; ok: true } | { ids: number[]; ok: false; message: string };

export type WorkerMessage = AppendRequest | { close: true };

const port = parentPort;
if (!port) throw new Error('sqlite-audit-worker runs as a worker thread');

const { path } = workerData as { path: string };
const sqlite = new SQLite(path, { fileMustExist: true });
configureWritingConnection(sqlite);
const append = createSqliteChainAppender(sqlite);
const wal = createWalSync(`${path}-wal`);

let queue: AppendRequest[] = [];
let scheduled = false;

const flush = () => {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (batch.length === 0) return;
  const ids = batch.map(({ id }) => id);
  const fail = (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    port.postMessage({ ids, ok: false, message } satisfies AppendReply);
  };
  try {
    append(batch.flatMap((request) => JSON.parse(request.events) as ChainedFields[]));
  } catch (error) {
    fail(error);
    return;
  }
  wal.durable().then(() => port.postMessage({ ids, ok: true } satisfies AppendReply), fail);
};

port.on('message', (message: WorkerMessage) => {
  if ('close' in message) {
    flush();
    void wal.close().finally(() => {
      sqlite.close();
      port.close();
    });
    return;
  }
  queue.push(message);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
});
