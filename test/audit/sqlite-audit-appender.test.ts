import { open } from 'node:fs/promises';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toChainedFields } from '../../src/audit/audit-event.js';
import { createAuditService } from '../../src/audit/audit-service.js';
import { type AuditAppender, startSqliteAuditAppender } from '../../src/audit/sqlite-audit-appender.js';
import { openStore, type Store } from '../../src/store/database.js';
import { safetyNetCheckpointPages } from '../../src/store/sqlite-connection.js';
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

/** The WAL file's size and its header's checkpoint sequence number (bytes 12-15, big-endian). */
const walHeader = async (path: string) => {
  const file = await open(path, 'r');
  try {
    const { buffer } = await file.read(Buffer.alloc(32), 0, 32, 0);
    return { checkpointSeq: buffer.readUInt32BE(12), size: (await file.stat()).size };
  } finally {
    await file.close();
  }
};

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
    // read and its write; the store's transactions take the write lock when they begin, so the appends
    // made inside this one wait for its commit. Rather than hoping a timer puts an append between the
    // read and the write, the test shows the lock is held there: another writer is refused at once.
    const otherWriter = new SQLite(store.location, { timeout: 0 });
    let appends: Promise<void>[] = [];
    let settled = 0;
    try {
      await store.db.transaction().execute(async (trx) => {
        const head = await trx.selectFrom('audit_head').selectAll().executeTakeFirst();
        appends = Array.from({ length: 50 }, (_, i) =>
          appender.append([event(i + 1)]).finally(() => void (settled += 1)),
        );
        expect(() => otherWriter.exec('begin immediate')).toThrow(/locked|busy/i);
        await trx
          .insertInto('vault_state')
          .values({
            key: 'probe',
            value: JSON.stringify(head?.seq ?? 0),
            updated_at: new Date().toISOString(),
          })
          .execute();
        expect(settled, 'an append committed inside the transaction').toBe(0);
      });
    } finally {
      otherWriter.close();
    }
    await Promise.all(appends);
    expect(await count(store)).toBe(50);
    const probe = await store.db
      .selectFrom('vault_state')
      .select('value')
      .where('key', '=', 'probe')
      .execute();
    expect(probe).toEqual([{ value: '0' }]);
  });

  it('starts the WAL over while commits never stop: the store’s checkpointer restarts it', async () => {
    // Each append is a commit of its own. Were the WAL only ever checkpointed PASSIVEly it would never
    // start over and would grow without end. How large it gets first depends on how many commits land
    // between two of the checkpointer's ticks, which is scheduling; that it starts over does not. Each
    // time it does, the next commit rewrites its header with the checkpoint sequence number moved on.
    const wal = `${store.location}-wal`;
    let written = 0;
    await appender.append([event(++written)]);
    const first = await walHeader(wal);
    let now = first;
    let largest = first.size;
    const deadline = Date.now() + 20_000;
    while (now.checkpointSeq === first.checkpointSeq && Date.now() < deadline) {
      for (let i = 0; i < 50; i++) await appender.append([event(++written)]);
      now = await walHeader(wal);
      largest = Math.max(largest, now.size);
    }
    expect(
      now.checkpointSeq,
      `the WAL never started over in ${written} commits (largest ${largest} bytes)`,
    ).toBeGreaterThan(first.checkpointSeq);
    // Far below the size at which a writing connection checkpoints by itself: the thread did it.
    expect(largest).toBeLessThan(safetyNetCheckpointPages * 4096);
    await appender.append([event(++written)]);
    expect(await count(store)).toBe(written);
  }, 30_000);

  it('refuses appends once closed', async () => {
    await appender.append([event(1)]);
    await appender.close();
    await expect(appender.append([event(2)])).rejects.toThrow(/closed/);
  });
});
