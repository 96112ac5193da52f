import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';
import { createWalSync } from './wal-sync.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, for messages: a file path, or the PostgreSQL URL without its password. */
  readonly location: string;
  /**
   * Resolves once every commit made so far survives a power loss. Call it before acknowledging a write
   * (the audit writer does, once per group commit). PostgreSQL commits are durable already.
   */
  durable(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL URL; when absent the embedded SQLite file in `dataDir` is used. */
  databaseUrl?: string | undefined;
  dataDir: string;
  /** Largest pool for PostgreSQL. */
  poolSize?: number;
}

export const sqliteFileName = 'tokenvault.db';

export const openStore = async (options: OpenStoreOptions): Promise<Store> => {
  const store = options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? 10)
    : openSqlite(options.dataDir);
  try {
    await migrateToLatest(store.db);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
};

const openSqlite = (dataDir: string): Store => {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = resolve(join(dataDir, sqliteFileName));
  const sqlite = new SQLite(path);
  sqlite.pragma('journal_mode = WAL');
  // NORMAL: a commit appends to the WAL without fsync on the event loop; `durable()` fsyncs it off the
  // loop before anything is acknowledged (see wal-sync.ts), as durable as FULL for every caller.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  // Freed pages are zeroed so that a deleted row leaves nothing readable in the file.
  sqlite.pragma('secure_delete = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const wal = createWalSync(`${path}-wal`);
  return {
    db,
    dialect: 'sqlite',
    location: path,
    durable: () => wal.durable(),
    async close() {
      await wal.close();
      await db.destroy();
    },
  };
};

const statementCacheSize = 256;

/**
 * Kysely asks better-sqlite3 to prepare every statement anew, which was an eighth of the CPU of an
 * agent retrieval. The set of SQL texts the vault runs is small and fixed, so prepared statements are
 * kept by text (least recently used out first). Kysely runs one statement at a time per connection,
 * so a cached statement is never busy when it is reused.
 */
const withStatementCache = (sqlite: SQLite.Database): SqliteDatabase => {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = sqlite.prepare(sql);
        if (cache.size >= statementCacheSize) cache.delete(cache.keys().next().value as string);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
};

const openPostgres = (url: string, max: number): Store => {
  const pool = new pg.Pool({ connectionString: url, max });
  // A pool error on an idle client must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    durable: async () => {},
    close: () => db.destroy(),
  };
};

export const redactUrl = (url: string): string => {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparseable url)';
  }
};
