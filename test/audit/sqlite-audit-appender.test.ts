import { stat } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toChainedFields } from '../../src/audit/audit-event.js';
import { createAuditService } from '../../src/audit/audit-service.js';
import { type AuditAppender, startSqliteAuditAppender } from '../../src/audit/sqlite-audit-appender.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

const event = (n: number) =>
  toChainedFields(
    {
      namespace: 'default',
      actor: { type: 'system', id: null },
      action: 'keys.verify',
      decision: 'allow',
      reason: 'ok',
      details: { n },
    },
    { id: `ev-${n}`, time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString() },
  );

const count = async (store: Store) =>
  Number(
    (
      await store.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('SQLite audit appender (writer thread)', () => {
  let dir: TempDataDir;
  let store: Store;
  let appender: AuditAppender;

  beforeEach(async () => {
    dir = await createTempDataDir();
    store = await openStore({ dataDir: dir.dir });
    appender = startSqliteAuditAppender(store.location);
  });

  afterEach(async () => {
    await appender.close();
    await store.close();
    await dir.cleanup();
  });

  it('commits before it answers, and concurrent appends form one valid chain in call order', async () => {
    await appender.append([event(1)]);
    // Another connection sees it at once: the answer came after the commit.
    expect(await count(store)).toBe(1);
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => appender.append([event(i + 2), event(i + 1000)])),
    );
    expect(await count(store)).toBe(401);
    const ids = await store.db.selectFrom('audit_events').select(['seq', 'id']).orderBy('seq').execute();
    expect(ids.slice(0, 3).map((r) => r.id)).toEqual(['ev-1', 'ev-2', 'ev-1000']);
    expect(await createAuditService({ db: store.db, dialect: 'sqlite' }).verify()).toMatchObject({
      ok: true,
      checked: 401,
    });
  });

  it('fails every append of a batch it cannot commit, writes none of it, and goes on afterwards', async () => {
    await appender.append([event(1)]);
    await sql`create trigger audit_refuse before insert on audit_events begin select raise(abort, 'audit disk full'); end`.execute(
      store.db,
    );
    const results = await Promise.allSettled([appender.append([event(2)]), appender.append([event(3)])]);
    for (const result of results) {
      expect(result).toMatchObject({
        status: 'rejected',
        reason: { message: expect.stringMatching(/audit disk full/) },
      });
    }
    expect(await count(store)).toBe(1);
    await sql`drop trigger audit_refuse`.execute(store.db);
    await appender.append([event(4)]);
    expect(await count(store)).toBe(2);
    expect((await createAuditService({ db: store.db, dialect: 'sqlite' }).verify()).ok).toBe(true);
  });

  it('lets a change on the main connection that reads before it writes commit while the thread appends', async () => {
    // A deferred transaction would fail with SQLITE_BUSY_SNAPSHOT when an append lands between its
    // read and its write; the store's transactions take the write lock when they begin.
    let appends: Promise<void>[] = [];
    await store.db.transaction().execute(async (trx) => {
      const head = await trx.selectFrom('audit_head').selectAll().executeTakeFirst();
      appends = Array.from({ length: 50 }, (_, i) => appender.append([event(i + 1)]));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await trx
        .insertInto('vault_state')
        .values({ key: 'probe', value: JSON.stringify(head?.seq ?? 0), updated_at: new Date().toISOString() })
        .execute();
    });
    await Promise.all(appends);
    expect(await count(store)).toBe(50);
  });

  it('keeps the WAL small while commits never stop: the store’s checkpointer makes it start over', async () => {
    // Each append is a commit of its own: thousands of them write far more through the WAL than the
    // bound below. Were the WAL only ever checkpointed PASSIVEly, it would never start over.
    const wal = `${store.location}-wal`;
    let written = 0;
    let largest = 0;
    const bound = 12 * 1024 * 1024;
    // At least a table page and a page of each index go through the WAL per commit.
    while (written * 4 * 4096 < 2 * bound) {
      await appender.append([event(++written)]);
      if (written % 50 === 0) largest = Math.max(largest, (await stat(wal)).size);
    }
    expect(largest).toBeLessThan(bound);
    expect(await count(store)).toBe(written);
  }, 30_000);

  it('refuses appends once closed', async () => {
    await appender.append([event(1)]);
    await appender.close();
    await expect(appender.append([event(2)])).rejects.toThrow(/closed/);
  });
});
