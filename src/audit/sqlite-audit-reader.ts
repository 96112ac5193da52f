import { Worker } from 'node:worker_threads';
import type { ErrorCode } from '../errors/error-registry.js';
import { VaultError } from '../errors/vault-error.js';
import { workerFile } from '../lib/workers.js';
import type { ReaderJob, ReaderReply, ReaderRequest } from './audit-reader-worker.js';
import type { AuditChainKey } from './audit-keys.js';
import type { ExportFormat } from './audit-format.js';
import type { AuditFilters } from './audit-service.js';
import type { VerifyResult } from './audit-verify.js';

/**
 * `audit verify` and `audit export` on SQLite, each on a thread of its own (audit-reader-worker.ts)
 * so that their cost, which grows with the log, never shows in other requests' latency.
 */

const errorFrom = (reply: Extract<ReaderReply, { ok: false }>): Error =>
  reply.code ? new VaultError(reply.code as ErrorCode, reply.message) : new Error(reply.message);

/** Starts the thread; `next()` resolves with its next reply (or rejects if it dies first). */
const startReader = (path: string, job: ReaderJob, chainKey?: AuditChainKey) => {
  const worker = new Worker(workerFile(import.meta.url, 'audit-reader-worker'), {
    workerData: { path, job, chainKey },
  });
  const replies: ReaderReply[] = [];
  let waiting: { resolve(reply: ReaderReply): void; reject(error: Error): void } | undefined;
  let failure: Error | undefined;
  worker.on('message', (reply: ReaderReply) => {
    if (waiting) {
      waiting.resolve(reply);
      waiting = undefined;
    } else replies.push(reply);
  });
  const die = (error: Error) => {
    failure ??= error;
    waiting?.reject(failure);
    waiting = undefined;
  };
  worker.on('error', die);
  worker.on('exit', (code) => die(new Error(`the audit reader thread exited (code ${code})`)));
  return {
    next(): Promise<ReaderReply> {
      const queued = replies.shift();
      if (queued) return Promise.resolve(queued);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
      });
    },
    send: (request: ReaderRequest) => worker.postMessage(request),
  };
};

export const verifyOffThread = async (
  path: string,
  pageSize?: number,
  chainKey?: AuditChainKey,
): Promise<VerifyResult> => {
  const reply = await startReader(path, { kind: 'verify', pageSize }, chainKey).next();
  if (!reply.ok) throw errorFrom(reply);
  return reply.value as VerifyResult;
};

/**
 * The export as chunks, pulled from the thread one page at a time. Resolves once the filters are
 * checked (a bad filter rejects here, before any byte is sent).
 */
export const exportOffThread = async (
  path: string,
  format: ExportFormat,
  filters: AuditFilters,
): Promise<AsyncIterable<string>> => {
  const reader = startReader(path, { kind: 'export', format, filters });
  const started = await reader.next();
  if (!started.ok) throw errorFrom(started);
  return (async function* () {
    let finished = false;
    try {
      for (;;) {
        reader.send({ next: true });
        const reply = await reader.next();
        if (!reply.ok) throw errorFrom(reply);
        if (reply.done) {
          finished = true;
          return;
        }
        yield reply.chunk ?? '';
      }
    } finally {
      // The client went away mid-export: the thread stops reading and exits.
      if (!finished) reader.send({ stop: true });
    }
  })();
};
