import { Worker } from 'node:worker_threads';
import { closeWorker, workerFile } from '../lib/workers.js';
import type { CheckpointerData, CheckpointerMessage, CheckpointerReport } from './checkpoint-worker.js';

const intervalMs = 100;
/** 1,000 frames of 4 KiB: the WAL stays near 4 MiB. */
const restartFrames = 1000;
const restartDelayMs = 1000;

/**
 * Starts SQLite's checkpointer thread (checkpoint-worker.ts) for the database at `path`. It does not
 * keep the process alive, is started again should it ever exit on its own, and reports a failed
 * checkpoint or start through `onWarning`. `close()` ends it.
 */
export const startCheckpointer = (path: string, onWarning: (message: string) => void) => {
  let closed = false;
  let worker: Worker | undefined;

  const start = (): Worker => {
    const data: CheckpointerData = { path, intervalMs, restartFrames };
    const started = new Worker(workerFile(import.meta.url, 'checkpoint-worker'), { workerData: data });
    started.unref();
    started.on('message', (report: CheckpointerReport) =>
      onWarning(`WAL checkpoint failed: ${report.error}`),
    );
    started.on('error', (error) => onWarning(`the WAL checkpointer thread failed: ${error.message}`));
    started.on('exit', () => {
      if (worker === started) worker = undefined;
      if (closed) return;
      setTimeout(() => {
        if (!closed) worker ??= start();
      }, restartDelayMs).unref();
    });
    return started;
  };
  worker = start();

  return {
    async close() {
      closed = true;
      if (worker) await closeWorker(worker, { close: true } satisfies CheckpointerMessage);
    },
  };
};
