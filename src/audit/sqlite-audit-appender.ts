import { Worker } from 'node:worker_threads';
import { closeWorker, workerFile } from '../lib/workers.js';
import type { ChainedFields } from './audit-hash.js';
import type { AppendReply, WorkerMessage } from './sqlite-audit-worker.js';

export interface AuditAppender {
  /** Resolves once the events are committed and on disk; rejects when they are not. */
  append(events: readonly ChainedFields[]): Promise<void>;
  /** Links every event appended after this call with the audit chain key (audit-keys.ts). */
  useKey(hmacKey: Buffer): void;
  close(): Promise<void>;
}

interface Waiting {
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Appends audit events to a SQLite store from a worker thread (sqlite-audit-worker.ts), so that the
 * inserts, the commit and its fsync leave the event loop. A worker that dies fails every append it
 * held (the requests fail closed); the next append starts a new one. It starts at once, and keeps the
 * process alive only while it holds events.
 */
export const startSqliteAuditAppender = (path: string): AuditAppender => {
  const waiting = new Map<number, Waiting>();
  let nextId = 1;
  let worker: Worker | undefined;
  let closed = false;
  let hmacKey: Buffer | undefined;

  const failAll = (error: Error) => {
    for (const w of waiting.values()) w.reject(error);
    waiting.clear();
  };

  const start = (): Worker => {
    const started = new Worker(workerFile(import.meta.url, 'sqlite-audit-worker'), { workerData: { path } });
    started.on('message', (reply: AppendReply) => {
      const failure = reply.ok
        ? undefined
        : Object.assign(new Error(`audit append failed: ${reply.message}`), { code: reply.code });
      for (const id of reply.ids) {
        const w = waiting.get(id);
        if (!w) continue;
        waiting.delete(id);
        if (failure) w.reject(failure);
        else w.resolve();
      }
      if (waiting.size === 0) started.unref();
    });
    started.on('error', (error) => failAll(error));
    started.on('exit', (code) => {
      if (worker === started) worker = undefined;
      failAll(new Error(`the audit writer thread exited (code ${code})`));
    });
    started.unref();
    // A thread started again after its predecessor died links with the key too.
    if (hmacKey) started.postMessage({ key: hmacKey } satisfies WorkerMessage);
    return started;
  };
  // Started now, so the first event does not wait for a thread to boot.
  worker = start();

  return {
    append(events) {
      if (closed) return Promise.reject(new Error('the audit appender is closed'));
      worker ??= start();
      // Idle, it must not keep the process alive; holding events, it must.
      if (waiting.size === 0) worker.ref();
      const id = nextId++;
      const message: WorkerMessage = { id, events: JSON.stringify(events) };
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker!.postMessage(message);
      });
    },

    useKey(key) {
      hmacKey = key;
      worker?.postMessage({ key } satisfies WorkerMessage);
    },

    async close() {
      closed = true;
      if (worker) await closeWorker(worker, { close: true } satisfies WorkerMessage);
    },
  };
};
