import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDataDir, type TempDataDir } from '../../test/helpers/sqlite.js';
import { isBusyError, retryUntil, withBusyRetry } from './busy-retry.js';

describe('retryUntil', () => {
  it('stops at the first success', () => {
    let tries = 0;
    expect(retryUntil(() => ++tries === 3, { patienceMs: 1000 })).toBe(true);
    expect(tries).toBe(3);
  });

  it('gives up once its patience has run out', () => {
    let tries = 0;
    const started = performance.now();
    expect(
      retryUntil(
        () => {
          tries += 1;
          return false;
        },
        { patienceMs: 20 },
      ),
    ).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(20);
    expect(tries).toBeGreaterThan(1);
  });

  it('tries every 0.1 ms at first, then a millisecond apart', () => {
    let tries = 0;
    const started = performance.now();
    retryUntil(
      () => {
        tries += 1;
        return false;
      },
      { patienceMs: 120 },
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(120);
    // At most 200 tries in the first 20 ms and 100 in the next 100 ms; 0.1 ms apart all along it would
    // be up to 1,200.
    expect(tries).toBeLessThanOrEqual(301);
    expect(tries).toBeGreaterThan(1);
  });
});

describe('withBusyRetry on SQLite', () => {
  let temp: TempDataDir;
  let writer: SQLite.Database;
  let holder: SQLite.Database;

  beforeEach(async () => {
    temp = await createTempDataDir();
    const path = join(temp.dir, 'busy.db');
    writer = new SQLite(path);
    writer.pragma('journal_mode = WAL');
    writer.pragma('busy_timeout = 0');
    writer.exec('create table t (n integer)');
    holder = new SQLite(path);
  });

  afterEach(async () => {
    if (holder.inTransaction) holder.exec('rollback');
    holder.close();
    writer.close();
    await temp.cleanup();
  });

  const insert = (n: number) => writer.transaction(() => writer.prepare('insert into t values (?)').run(n));
  const count = () => writer.prepare('select count(*) as n from t').get() as { n: number };

  it('tries again while another connection holds the write lock, then commits', () => {
    holder.exec('begin immediate');
    let tries = 0;
    withBusyRetry(
      () => {
        tries += 1;
        // The other connection lets go before the third try.
        if (tries === 3) holder.exec('commit');
        insert(1).immediate();
      },
      { patienceMs: 5000 },
    );
    expect(tries).toBe(3);
    expect(count().n).toBe(1);
  });

  it('throws SQLITE_BUSY once its patience has run out, having written nothing', () => {
    holder.exec('begin immediate');
    let tries = 0;
    let thrown: unknown;
    try {
      withBusyRetry(
        () => {
          tries += 1;
          insert(1).immediate();
        },
        { patienceMs: 20 },
      );
    } catch (error) {
      thrown = error;
    }
    expect(isBusyError(thrown)).toBe(true);
    expect(tries).toBeGreaterThan(1);
    holder.exec('rollback');
    expect(count().n).toBe(0);
  });

  it('throws any other error at once', () => {
    let tries = 0;
    expect(() =>
      withBusyRetry(
        () => {
          tries += 1;
          writer.exec('insert into missing values (1)');
        },
        { patienceMs: 5000 },
      ),
    ).toThrow(/no such table/);
    expect(tries).toBe(1);
  });
});
