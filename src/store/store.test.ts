import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDataDir, type TempDataDir } from '../../test/helpers/sqlite.js';
import { runStoreContract } from '../../test/helpers/store-contract.js';
import { openStore, redactUrl, type Store, sqliteFileName } from './database.js';
import type { Params } from './prepared.js';
import { openAuditWriterConnection, safetyNetCheckpointPages } from './sqlite-connection.js';

describe('store on SQLite', () => {
  runStoreContract(async () => {
    const temp = await createTempDataDir();
    // A directory that does not exist yet, as on a first `serve`.
    const dataDir = join(temp.dir, 'data');
    return {
      dialect: 'sqlite',
      options: { dataDir },
      location: join(dataDir, 'tokenvault.db'),
      cleanup: temp.cleanup,
    };
  });
});

describe('SQLite file', () => {
  let temp: TempDataDir;
  let store: Store | undefined;
  let dataDir: string;

  beforeEach(async () => {
    temp = await createTempDataDir();
    dataDir = join(temp.dir, 'data');
    store = await openStore({ dataDir });
  });

  afterEach(async () => {
    await store?.close();
    await temp.cleanup();
  });

  const pragma = async (name: string): Promise<unknown> => {
    const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${name}`)}`.execute(store!.db);
    return rows[0]?.[name];
  };

  it('lives at <dataDir>/tokenvault.db in a data dir only its owner can enter', async () => {
    expect(sqliteFileName).toBe('tokenvault.db');
    expect(existsSync(join(dataDir, 'tokenvault.db'))).toBe(true);
    expect(store!.location).toBe(join(dataDir, 'tokenvault.db'));
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
  });

  it('is in WAL mode, as any other connection sees it', async () => {
    expect(await pragma('journal_mode')).toBe('wal');
    const other = new SQLite(join(dataDir, sqliteFileName), { readonly: true });
    try {
      expect(other.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      other.close();
    }
  });

  it('runs with secure_delete, NORMAL sync plus an fsync before acknowledging, and foreign keys on', async () => {
    expect(await pragma('secure_delete')).toBe(1);
    // 1 = NORMAL: commits append to the WAL; `durable()` fsyncs it off the event loop (wal-sync.ts).
    expect(await pragma('synchronous')).toBe(1);
    await expect(store!.durable()).resolves.toBeUndefined();
    expect(await pragma('foreign_keys')).toBe(1);
  });

  it('opens the audit writer thread’s connection with every writer setting, the fsync inside COMMIT and no busy handler', () => {
    const audit = openAuditWriterConnection(join(dataDir, sqliteFileName));
    try {
      // 2 = FULL: COMMIT returns once the WAL is on disk, so the thread answers a batch right after it.
      expect(audit.pragma('synchronous', { simple: true })).toBe(2);
      expect(audit.pragma('secure_delete', { simple: true })).toBe(1);
      expect(audit.pragma('foreign_keys', { simple: true })).toBe(1);
      // No SQLite busy handler: the thread waits for the lock in 0.1 ms steps itself (busy-retry.ts).
      expect(audit.pragma('busy_timeout', { simple: true })).toBe(0);
      expect(audit.pragma('wal_autocheckpoint', { simple: true })).toBe(safetyNetCheckpointPages);
    } finally {
      audit.close();
    }
  });

  it('copies the WAL back into the database file on its checkpointer thread, not in commits', async () => {
    expect(await pragma('wal_autocheckpoint')).toBe(safetyNetCheckpointPages);
    const file = join(dataDir, sqliteFileName);
    const before = (await stat(file)).size;
    // About 400 pages of new rows: far below the commits' own threshold, so only the thread copies them.
    const rows = Array.from({ length: 400 }, (_, i) => ({
      key: `fill-${i}`,
      value: 'x'.repeat(3000),
      updated_at: 'now',
    }));
    await store!.db.insertInto('vault_state').values(rows).execute();
    expect((await stat(file)).size).toBe(before);
    await expect
      .poll(async () => (await stat(file)).size, { timeout: 5000, interval: 50 })
      .toBeGreaterThan(before + 400 * 3000);
  });

  it('reads through prepared queries on a connection that sees committed data only', async () => {
    const byKey = store!.prepare((p: Params<{ key: string }>) =>
      store!.db
        .selectFrom('vault_state')
        .select(['key', 'value'])
        .where('key', '=', p('key'))
        .where('value', '!=', 'never'),
    );
    expect(await byKey.first({ key: 'k' })).toBeUndefined();
    await store!.db.transaction().execute(async (trx) => {
      await trx.insertInto('vault_state').values({ key: 'k', value: 'v', updated_at: 'now' }).execute();
      // The change is not committed yet: a hot-path read must not act on it.
      expect(await byKey.first({ key: 'k' })).toBeUndefined();
    });
    expect(await byKey.all({ key: 'k' })).toEqual([{ key: 'k', value: 'v' }]);
    await expect(byKey.first({} as { key: string })).rejects.toThrow(/no value for parameter "key"/);
  });

  it('leaves no trace of a deleted row in the file', async () => {
    const db = store!.db;
    const marker = `deleted-secret-${randomBytes(8).toString('hex')}`;
    const fileText = async () => {
      await sql`pragma wal_checkpoint(TRUNCATE)`.execute(db);
      const files = [sqliteFileName, `${sqliteFileName}-wal`].map((name) => join(dataDir, name));
      const contents = await Promise.all(
        files.filter((file) => existsSync(file)).map((file) => readFile(file)),
      );
      return Buffer.concat(contents).toString('latin1');
    };

    await db.insertInto('vault_state').values({ key: 'k', value: marker, updated_at: 'now' }).execute();
    // The marker must be in the file first, or its absence below would prove nothing.
    expect(await fileText()).toContain(marker);

    await db.deleteFrom('vault_state').where('key', '=', 'k').execute();
    expect(await fileText()).not.toContain(marker);
  });
});

describe('redactUrl', () => {
  it('hides the password and keeps the rest', () => {
    const redacted = redactUrl('postgres://vault:s3cr3t-pw@db.internal:5433/tokenvault?sslmode=require');
    expect(redacted).not.toContain('s3cr3t-pw');
    expect(redacted).toBe('postgres://vault:***@db.internal:5433/tokenvault?sslmode=require');
  });

  it('hides a password that needed percent-encoding', () => {
    const redacted = redactUrl('postgres://vault:p%40ss%2Fword@localhost/tokenvault');
    expect(redacted).not.toContain('p%40ss');
    expect(redacted).not.toContain('p@ss');
    expect(redacted).toContain('vault:***@localhost');
  });

  it('leaves a URL without a password as it is', () => {
    expect(redactUrl('postgres://vault@localhost:5432/tokenvault')).toBe(
      'postgres://vault@localhost:5432/tokenvault',
    );
  });

  it('does not echo a URL it cannot parse, which may hold a password', () => {
    const redacted = redactUrl('not a url but maybe s3cr3t-pw');
    expect(redacted).not.toContain('s3cr3t-pw');
  });
});
