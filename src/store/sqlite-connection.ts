import SQLite from 'better-sqlite3';

/**
 * WAL pages after which a committing connection checkpoints by itself. The store's checkpointer
 * thread (checkpoint-worker.ts) keeps the WAL far smaller; this is the safety net should it stop.
 */
export const safetyNetCheckpointPages = 20_000;

/** What a WAL file that grew is cut back to once it starts over (PRAGMA journal_size_limit). */
export const walSizeLimitBytes = 16 * 1024 * 1024;

/**
 * The settings of every connection that writes to the store (the main one, the audit writer's
 * thread), which SQLite keeps per connection: one place, so that no writer runs without them.
 */
export const configureWritingConnection = (
  sqlite: SQLite.Database,
  { syncInCommit = false }: { syncInCommit?: boolean } = {},
): void => {
  // NORMAL: a commit appends to the WAL without an fsync; the main connection's owner fsyncs the WAL
  // off its event loop before anything is acknowledged (wal-sync.ts), as durable as FULL for every
  // caller. FULL (`syncInCommit`): SQLite fdatasyncs the WAL inside COMMIT, on the calling thread,
  // for a thread that does nothing else (the audit writer's).
  sqlite.pragma(`synchronous = ${syncInCommit ? 'FULL' : 'NORMAL'}`);
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  // Freed pages are zeroed so that a deleted row leaves nothing readable in the file.
  sqlite.pragma('secure_delete = ON');
  // Checkpoints run on a thread of their own (checkpoint-worker.ts); this is the safety net.
  sqlite.pragma(`wal_autocheckpoint = ${safetyNetCheckpointPages}`);
  sqlite.pragma(`journal_size_limit = ${walSizeLimitBytes}`);
};

/**
 * The audit writer thread's connection (sqlite-audit-worker.ts): the settings of every writer, with
 * the fsync inside COMMIT, so that a batch is on disk when its COMMIT returns, and without SQLite's
 * busy handler: the thread waits for the write lock in 0.1 ms steps itself (busy-retry.ts).
 */
export const openAuditWriterConnection = (path: string): SQLite.Database => {
  const sqlite = new SQLite(path, { fileMustExist: true });
  configureWritingConnection(sqlite, { syncInCommit: true });
  sqlite.pragma('busy_timeout = 0');
  return sqlite;
};
