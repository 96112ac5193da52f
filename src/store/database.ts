import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  type Compilable,
  CompiledQuery,
  type DatabaseConnection,
  Kysely,
  PostgresDialect,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  SqliteDriver,
} from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.js';
import { createPrepare, type Params, type PreparedQuery, type SqlRunner } from './prepared.js';
import type { Database } from './schema.js';
import { startCheckpointer } from './checkpointer.js';
import { configureWritingConnection } from './sqlite-connection.js';
import { createWalSync } from './wal-sync.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** Where the data lives, for messages: a file path, or the PostgreSQL URL without its password. */
  readonly location: string;
  /**
   * Resolves once every commit made so far survives a power loss. Call it before acknowledging a write
   * (the admin routes do after a change). PostgreSQL commits are durable already.
   */
  durable(): Promise<void>;
  /** A read for a hot path, built once and run by the driver directly (see prepared.ts). */
  prepare<P extends Record<string, unknown>, R>(build: (p: Params<P>) => Compilable<R>): PreparedQuery<P, R>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL URL; when absent the embedded SQLite file in `dataDir` is used. */
  databaseUrl?: string | undefined;
  dataDir: string;
  /** Largest pool for PostgreSQL. */
  poolSize?: number;
  /** Told when SQLite's checkpointer thread fails; silent when absent. */
  onWarning?: (message: string) => void;
  /** PostgreSQL waits, in milliseconds; `postgresLimits` by default. Tests shorten them. */
  postgresLimits?: Partial<PostgresLimits>;
}

/**
 * Every wait on PostgreSQL is bounded, so that no replica (paused, partitioned, or stuck in a long
 * change) can make the others hang: past these limits a request fails with `store_busy` or
 * `audit_unavailable` (store-errors.ts) instead of waiting for ever. A URL's own `options` win.
 */
export interface PostgresLimits {
  /** Longest wait for a row or table lock (`lock_timeout`): contention ends in an error. */
  lockTimeoutMs: number;
  /** Longest single statement (`statement_timeout`). */
  statementTimeoutMs: number;
  /**
   * A session idle inside a transaction this long is ended by the server, releasing its locks
   * (`idle_in_transaction_session_timeout`): a paused or partitioned replica cannot hold a lock for
   * longer. Above the key webhook's timeout, which a change may wait for inside its transaction.
   */
  idleInTransactionMs: number;
  /** Longest wait for a pooled connection when every one is busy. */
  connectTimeoutMs: number;
  /** Idle time before TCP keepalive probes start, so a dead peer is noticed rather than waited on. */
  keepAliveDelayMs: number;
}

export const postgresLimits: PostgresLimits = {
  lockTimeoutMs: 3_000,
  statementTimeoutMs: 30_000,
  idleInTransactionMs: 10_000,
  connectTimeoutMs: 10_000,
  keepAliveDelayMs: 10_000,
};

export const sqliteFileName = 'tokenvault.db';

export const openStore = async (options: OpenStoreOptions): Promise<Store> => {
  const store = options.databaseUrl
    ? openPostgres(options.databaseUrl, options.poolSize ?? 10, {
        ...postgresLimits,
        ...options.postgresLimits,
      })
    : openSqlite(options.dataDir, options.onWarning ?? (() => {}));
  try {
    if (options.databaseUrl) await migratePostgres(options.databaseUrl);
    else await migrateToLatest(store.db);
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
};

/**
 * The data dir holds the database, the platform master key and the root admin token: only the vault's
 * own user may read it. A dir that group or others can open is fixed, with a warning that says so,
 * rather than refused: the usual cause is a umask or a volume mount, and refusing would stop a vault
 * over something the vault can put right itself.
 */
const secureDataDir = (dataDir: string, onWarning: (message: string) => void): void => {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  const mode = statSync(dataDir).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  chmodSync(dataDir, mode & 0o700);
  onWarning(
    `the data dir ${resolve(dataDir)} was open to group or others (mode ${mode.toString(8)}); it is now ${(mode & 0o700).toString(8)}`,
  );
};

/**
 * The database file is created 0600 before SQLite opens it; SQLite then gives its -wal and -shm files
 * the database file's mode. Files an older version left readable are narrowed too.
 */
const secureDatabaseFiles = (path: string): void => {
  closeSync(openSync(path, 'a', 0o600));
  if (process.platform === 'win32') return;
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
};

const openSqlite = (dataDir: string, onWarning: (message: string) => void): Store => {
  secureDataDir(dataDir, onWarning);
  const path = resolve(join(dataDir, sqliteFileName));
  secureDatabaseFiles(path);
  const sqlite = new SQLite(path);
  sqlite.pragma('journal_mode = WAL');
  configureWritingConnection(sqlite);
  // The audit writer's thread commits on a connection of its own; with deferred transactions a change
  // that read before it wrote would fail (SQLITE_BUSY_SNAPSHOT) whenever an audit commit landed in
  // between, so every transaction takes the write lock when it begins.
  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }),
  });
  const wal = createWalSync(`${path}-wal`);
  const checkpointer = startCheckpointer(path, onWarning);
  // Opened at the first prepared query, after the migrations: a read-only connection sees committed
  // data only.
  let reader: SQLite.Database | undefined;
  const readerRunner: SqlRunner = (text) => {
    reader ??= openReader(path);
    const statement = reader.prepare(text);
    if (!statement.reader) throw new TypeError('a prepared query on SQLite must be a read');
    return (parameters) => {
      try {
        return Promise.resolve(statement.all(parameters));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    };
  };
  return {
    db,
    dialect: 'sqlite',
    location: path,
    durable: () => wal.durable(),
    prepare: createPrepare(readerRunner),
    async close() {
      await checkpointer.close();
      await wal.close();
      await db.destroy();
      reader?.close();
      reader = undefined;
    },
  };
};

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;
  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }
  override createDriver() {
    return new ImmediateSqliteDriver(this.#config);
  }
}

const readerCachePages = 32;

const openReader = (path: string): SQLite.Database => {
  const reader = new SQLite(path, { readonly: true, fileMustExist: true });
  reader.pragma('busy_timeout = 5000');
  // Each read begins by dropping this connection's page cache whenever another connection committed
  // since its last read, which under load (the audit thread commits all the time) is nearly every
  // read, and the cost of dropping it grows with its size: a big cache here costs, never pays.
  reader.pragma(`cache_size = ${readerCachePages}`);
  return reader;
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

/**
 * Migrations on PostgreSQL run on a connection of their own without the pool's statement timeout: on a
 * big database a migration may run for minutes, and a replica starting meanwhile waits for it (Kysely
 * holds an advisory lock, with a lock timeout of its own, while it migrates).
 */
const migratePostgres = async (url: string): Promise<void> => {
  const pool = new pg.Pool({ connectionString: url, max: 1, keepAlive: true });
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
};

const openPostgres = (url: string, max: number, limits: PostgresLimits): Store => {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    lock_timeout: limits.lockTimeoutMs,
    statement_timeout: limits.statementTimeoutMs,
    idle_in_transaction_session_timeout: limits.idleInTransactionMs,
    connectionTimeoutMillis: limits.connectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: limits.keepAliveDelayMs,
    // The server probes too (in seconds), so a replica that vanished mid-transaction is noticed by
    // PostgreSQL even when it never sends again.
    options: `-c tcp_keepalives_idle=${Math.ceil(limits.keepAliveDelayMs / 1000)} -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3`,
  });
  // A pool error on an idle client must not crash the process; the next query reports it.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  // Named prepared statements: pg prepares each once per pooled connection, PostgreSQL plans it once.
  const runner: SqlRunner = (text) => {
    const name = `tv_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    return async (values) => (await pool.query({ name, text, values })).rows as unknown[];
  };
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    durable: async () => {},
    prepare: createPrepare(runner),
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
