import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { parentPort, workerData } from 'node:worker_threads';
import { isVaultError } from '../errors/vault-error.js';
import type { Database } from '../store/schema.js';
import type { ExportFormat } from './audit-format.js';
import { type AuditFilters, createAuditService } from './audit-service.js';

/**
 * One `audit verify` or `audit export` on SQLite, on a thread of its own with a read-only connection
 * of its own (started by sqlite-audit-reader.ts): better-sqlite3 reads synchronously, so on the event
 * loop every page of a verify or an export over a big log stalled every other request. An export is
 * pulled a page at a time (`next`), so it streams with flat memory and never runs ahead of its reader.
 */
export type ReaderJob =
  | { kind: 'verify'; pageSize?: number | undefined }
  | { kind: 'export'; format: ExportFormat; filters: AuditFilters };

/** Messages to the thread: pull the next export chunk, or stop early (the client went away). */
export type ReaderRequest = { next: true } | { stop: true };

export type ReaderReply =
  | { ok: true; value?: unknown; chunk?: string; done?: boolean }
  | { ok: false; code?: string; message: string };

const port = parentPort;
if (!port) throw new Error('audit-reader-worker runs as a worker thread');
const { path, job, chainKey } = workerData as {
  path: string;
  job: ReaderJob;
  /** Cloned across threads, it arrives as a Uint8Array. */
  chainKey?: { keyId: string; hmacKey: Uint8Array } | undefined;
};

const sqlite = new SQLite(path, { readonly: true, fileMustExist: true });
sqlite.pragma('busy_timeout = 5000');
const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
const auditLog = createAuditService({
  db,
  dialect: 'sqlite',
  chainKey: chainKey && { keyId: chainKey.keyId, hmacKey: Buffer.from(chainKey.hmacKey) },
});

const fail = (error: unknown): ReaderReply =>
  isVaultError(error)
    ? { ok: false, code: error.code, message: error.message }
    : { ok: false, message: error instanceof Error ? error.message : String(error) };

const finish = async () => {
  await db.destroy();
  port.close();
};

const run = async () => {
  if (job.kind === 'verify') {
    try {
      port.postMessage({
        ok: true,
        value: await auditLog.verify({ pageSize: job.pageSize }),
      } satisfies ReaderReply);
    } catch (error) {
      port.postMessage(fail(error));
    }
    await finish();
    return;
  }
  let chunks: AsyncIterator<string>;
  try {
    chunks = (await auditLog.export(job.format, job.filters))[Symbol.asyncIterator]();
  } catch (error) {
    port.postMessage(fail(error));
    await finish();
    return;
  }
  port.postMessage({ ok: true } satisfies ReaderReply);
  port.on('message', (request: ReaderRequest) => {
    if ('stop' in request) {
      void finish();
      return;
    }
    chunks.next().then(
      async ({ value, done }) => {
        port.postMessage({
          ok: true,
          chunk: done ? undefined : value,
          done: Boolean(done),
        } satisfies ReaderReply);
        if (done) await finish();
      },
      async (error: unknown) => {
        port.postMessage(fail(error));
        await finish();
      },
    );
  });
};

void run();
