import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalEvent, chainHash } from '../../src/audit/audit-hash.js';
import { createAuditService } from '../../src/audit/audit-service.js';
import type { AuditEventInput } from '../../src/audit/audit-types.js';
import { canonicalSql } from '../../src/audit/audit-verify.js';
import { type AuditWriter, createAuditWriter } from '../../src/audit/audit-writer.js';
import { isVaultError } from '../../src/errors/vault-error.js';
import { fixedClock } from '../../src/lib/clock.js';
import type { Store } from '../../src/store/database.js';

export interface StoreHandle {
  store: Store;
  /** Another connection pool to the same database: a second replica. */
  openReplica?: () => Promise<Store>;
  cleanup(): Promise<void>;
}

export const event = (i: number, over: Partial<AuditEventInput> = {}): AuditEventInput => ({
  namespace: 'default',
  actor: { type: 'admin', id: 'tok-1' },
  action: 'credential.update',
  target: { type: 'credential', id: `c${i}` },
  decision: i % 3 === 0 ? 'deny' : 'allow',
  reason: i % 3 === 0 ? 'credential_not_found' : 'ok',
  client: { ip: '127.0.0.1', userAgent: 'test' },
  requestId: `req_${i}`,
  details: { n: i },
  ...over,
});

/**
 * The audit log on one store: an untouched chain verifies; an edited, deleted, swapped or truncated
 * one fails naming the event; concurrent `record` calls share commits and all land; a record inside a
 * transaction commits or rolls back with it; nothing secret-looking is written.
 */
export const auditLogContract = (open: () => Promise<StoreHandle>) => {
  let handle: StoreHandle;
  let writer: AuditWriter;
  let errors: Record<string, unknown>[];
  const clock = fixedClock('2026-06-01T12:00:00Z');

  const db = () => handle.store.db;
  const service = () => createAuditService({ db: db(), dialect: handle.store.dialect });
  const writerFor = (store: Store) =>
    createAuditWriter({
      store,
      clock,
      logger: { error: (object) => void errors.push(object) },
    });

  /** `n` events recorded concurrently, as requests would. */
  const seed = async (n: number, from = 1) => {
    await Promise.all(Array.from({ length: n }, (_, i) => writer.record(event(from + i))));
  };

  const rowAt = async (seq: number) =>
    db().selectFrom('audit_events').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();

  const count = async () =>
    Number(
      (
        await db()
          .selectFrom('audit_events')
          .select((eb) => eb.fn.countAll<number | string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeEach(async () => {
    handle = await open();
    errors = [];
    writer = writerFor(handle.store);
  });

  afterEach(async () => {
    await writer.close();
    await handle.store.close();
    await handle.cleanup();
  });

  it('verifies an empty log and an untouched one', async () => {
    expect(await service().verify()).toEqual({ ok: true, checked: 0, head: null });
    await seed(25);
    const result = await service().verify({ pageSize: 7 });
    expect(result.ok).toBe(true);
    expect(result.checked).toBe(25);
    expect(result.head?.seq).toBe(25);
    expect(result.head?.hash).toBe((await rowAt(25)).hash);
    expect(result.firstBad).toBeUndefined();
  });

  it('verifies events whose text needs JSON escaping (the database builds the same canonical text)', async () => {
    const odd = 'quote" back\\slash, tab\t nl\n é 😀 \u2028 </script> \u007f';
    await writer.record(
      event(1, {
        target: { type: 'credential', id: odd },
        client: { ip: '::1', userAgent: odd },
        details: {
          note: odd,
          list: ['x,y', 'ü', ''],
          n: 1.5,
          neg: -3,
          big: 1e21,
          flag: false,
          nothing: null,
        },
      }),
    );
    await writer.record(event(2, { details: {} }));
    expect(await service().verify()).toMatchObject({ ok: true, checked: 2 });
    const stored = await rowAt(1);
    // The database's canonical text is byte for byte the writer's, so verify needs no slow path.
    const built = await db()
      .selectFrom('audit_events')
      .select(canonicalSql(handle.store.dialect).as('canonical'))
      .orderBy('seq')
      .execute();
    expect(built.map((r) => r.canonical)).toEqual([canonicalEvent(stored), canonicalEvent(await rowAt(2))]);
    expect(stored.target_id).toBe(odd.replace(/[\t\n\u007f]/g, '\uFFFD'));
  });

  it('commits many concurrent record() calls together, every one in a valid chain', async () => {
    let commits = 0;
    writer = createAuditWriter({
      store: handle.store,
      clock,
      logger: { error: () => {} },
      onCommit: () => void (commits += 1),
    });
    const n = 500;
    const settled = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => writer.record(event(i + 1))),
    );
    expect(settled.filter((s) => s.status === 'rejected')).toEqual([]);
    expect(await count()).toBe(n);
    // All n calls were queued in one turn of the event loop, before the writer's first commit (it
    // waits a turn first), so one commit carries them all: a count, not a matter of scheduling.
    expect(commits).toBe(1);
    const seqs = (await db().selectFrom('audit_events').select('seq').orderBy('seq').execute()).map((r) =>
      Number(r.seq),
    );
    expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    const targets = new Set(
      (await db().selectFrom('audit_events').select('target_id').execute()).map((r) => r.target_id),
    );
    expect(targets.size).toBe(n);
    expect(await service().verify()).toMatchObject({ ok: true, checked: n });
  });

  it('resolves each record() only once its event is committed', async () => {
    await writer.record(event(1));
    // A fresh reader sees it at once: the promise resolved after the commit, not before.
    expect(await count()).toBe(1);
  });

  it('writes an event in the caller transaction: it commits or rolls back with the change', async () => {
    await seed(3);
    await db()
      .transaction()
      .execute(async (trx) => {
        await writer.recordInTransaction(trx, event(100, { action: 'grant.create' }));
        await writer.recordManyInTransaction(trx, [event(101), event(102)]);
      });
    await expect(
      db()
        .transaction()
        .execute(async (trx) => {
          await writer.recordInTransaction(trx, event(200, { action: 'grant.revoke' }));
          throw new Error('the change failed');
        }),
    ).rejects.toThrow('the change failed');
    expect(await count()).toBe(6);
    expect((await rowAt(4)).action).toBe('grant.create');
    await seed(2, 300);
    expect(await service().verify()).toMatchObject({ ok: true, checked: 8 });
  });

  it('records an event whose details look like a secret, redacted, and names the key in the log', async () => {
    const token = `tv_agent_${'k'.repeat(43)}`;
    await writer.record(event(1, { details: { presented: token } }));
    await writer.record(event(2));
    expect(await count()).toBe(2);
    const stored = await db().selectFrom('audit_events').select('details').execute();
    expect(JSON.stringify(stored)).not.toContain(token);
    expect(JSON.stringify(stored)).toContain('[redacted]');
    const logged = errors.map((e) => `${JSON.stringify(e)} ${String(e.err)}`).join('\n');
    expect(logged).not.toContain(token);
    expect(logged).toContain('presented');
  });

  it('fails every caller of a batch with audit_unavailable when the write fails, and recovers after', async () => {
    await seed(2);
    await sql`alter table audit_events rename to audit_events_away`.execute(db());
    const settled = await Promise.allSettled([1, 2, 3].map((i) => writer.record(event(10 + i))));
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      const reason = (s as PromiseRejectedResult).reason as unknown;
      expect(isVaultError(reason) && reason.code === 'audit_unavailable').toBe(true);
    }
    expect(errors.length).toBeGreaterThan(0);
    await sql`alter table audit_events_away rename to audit_events`.execute(db());
    await seed(2, 20);
    expect(await service().verify()).toMatchObject({ ok: true, checked: 4 });
  });

  it('flushes queued events on close and refuses new ones after', async () => {
    const pending = Array.from({ length: 20 }, (_, i) => writer.record(event(i + 1)));
    await writer.close();
    await Promise.all(pending);
    expect(await count()).toBe(20);
    await expect(writer.record(event(99))).rejects.toSatisfy(
      (e: unknown) => isVaultError(e) && e.code === 'audit_unavailable',
    );
  });

  describe('names the first bad event after tampering in the database', () => {
    beforeEach(async () => {
      await seed(10);
      expect((await service().verify()).ok).toBe(true);
    });

    it('an edited row: altered', async () => {
      const target = await rowAt(5);
      await db()
        .updateTable('audit_events')
        .set({ decision: 'allow', reason: 'ok', action: 'x.y' })
        .where('seq', '=', 5)
        .execute();
      const result = await service().verify({ pageSize: 3 });
      expect(result).toMatchObject({
        ok: false,
        checked: 4,
        firstBad: { seq: 5, id: target.id, problem: 'altered' },
      });
    });

    it('an edited details column: altered', async () => {
      await db().updateTable('audit_events').set({ details: '{"n":999}' }).where('seq', '=', 8).execute();
      expect((await service().verify()).firstBad).toMatchObject({ seq: 8, problem: 'altered' });
    });

    it('a deleted row: missing', async () => {
      await db().deleteFrom('audit_events').where('seq', '=', 5).execute();
      const result = await service().verify();
      expect(result).toMatchObject({
        ok: false,
        checked: 4,
        firstBad: { seq: 5, id: null, problem: 'missing' },
      });
      expect(result.firstBad?.detail).toContain('event 5 was removed');
    });

    it('the first row deleted: missing', async () => {
      await db().deleteFrom('audit_events').where('seq', '=', 1).execute();
      expect((await service().verify()).firstBad).toMatchObject({ seq: 1, problem: 'missing' });
    });

    it('two rows swapped: reordered', async () => {
      const third = await rowAt(3);
      const fourth = await rowAt(4);
      await db().updateTable('audit_events').set({ seq: -3 }).where('seq', '=', 3).execute();
      await db().updateTable('audit_events').set({ seq: 3 }).where('seq', '=', 4).execute();
      await db().updateTable('audit_events').set({ seq: 4 }).where('seq', '=', -3).execute();
      const result = await service().verify();
      expect(result).toMatchObject({
        ok: false,
        checked: 2,
        firstBad: { seq: 3, id: fourth.id, problem: 'reordered' },
      });
      expect(third.id).not.toBe(fourth.id);
    });

    it('a deleted tail: head_mismatch', async () => {
      await db().deleteFrom('audit_events').where('seq', '>', 8).execute();
      const result = await service().verify();
      expect(result).toMatchObject({
        ok: false,
        checked: 8,
        firstBad: { seq: 9, id: null, problem: 'head_mismatch' },
      });
    });

    it('a row rewritten with a recomputed hash: the event is named as altered', async () => {
      const row = await rowAt(6);
      const forged = { ...row, action: 'x.forged' };
      await db()
        .updateTable('audit_events')
        .set({ action: forged.action, hash: chainHash(row.prev_hash, forged) })
        .where('seq', '=', 6)
        .execute();
      expect((await service().verify()).firstBad).toMatchObject({ seq: 6, id: row.id, problem: 'altered' });
    });

    it('a deleted head row: head_mismatch, and the writer refuses to start a new chain', async () => {
      await db().deleteFrom('audit_head').execute();
      expect((await service().verify()).firstBad).toMatchObject({ seq: 10, problem: 'head_mismatch' });
      await expect(writer.record(event(11))).rejects.toSatisfy(
        (e: unknown) => isVaultError(e) && e.code === 'audit_unavailable',
      );
      expect(await count()).toBe(10);
    });
  });

  it('lists with filters and keyset pages, and exports every row', async () => {
    await seed(30);
    await writer.record(event(31, { action: 'agent.create', target: { type: 'agent', id: 'a-1' } }));
    await writer.record(
      event(32, {
        action: 'grant.create',
        target: { type: 'grant', id: 'g-1' },
        details: { agent_id: 'a-1' },
      }),
    );
    const log = service();
    const seen: number[] = [];
    let after: number | undefined;
    for (;;) {
      const page = await log.list({ limit: 7, afterSeq: after });
      seen.push(...page.items.map((e) => e.seq));
      if (page.nextSeq === null) break;
      after = page.nextSeq;
    }
    expect(seen).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    const newest = await log.list({ limit: 3, order: 'desc' });
    expect(newest.items.map((e) => e.seq)).toEqual([32, 31, 30]);
    expect((await log.list({ limit: 3, order: 'desc', afterSeq: 30 })).items.map((e) => e.seq)).toEqual([
      29, 28, 27,
    ]);

    const denied = await log.list({ limit: 100, decision: 'deny' });
    expect(denied.items.length).toBe(10);
    expect(denied.items.filter((e) => e.decision !== 'deny' || e.reason !== 'credential_not_found')).toEqual(
      [],
    );
    expect((await log.list({ limit: 100, action: 'credential.*' })).items.length).toBe(30);
    expect((await log.list({ limit: 100, credential: 'c7' })).items.map((e) => e.seq)).toEqual([7]);
    expect((await log.list({ limit: 100, agent: 'a-1' })).items.map((e) => e.action)).toEqual([
      'agent.create',
      'grant.create',
    ]);
    expect(
      (await log.list({ limit: 100, since: '2026-06-01T12:00:00Z', until: '2026-06-01T12:00:00Z' })).items,
    ).toHaveLength(32);
    expect((await log.list({ limit: 100, since: '2026-06-02' })).items).toHaveLength(0);
    await expect(log.list({ limit: 100, since: 'yesterday' })).rejects.toSatisfy(
      (e: unknown) => isVaultError(e) && e.code === 'invalid_request',
    );

    let jsonl = '';
    for await (const chunk of await log.export('jsonl')) jsonl += chunk;
    const lines = jsonl.trim().split('\n');
    expect(lines).toHaveLength(32);
    const first = JSON.parse(lines[0] as string) as { seq: number; details: unknown };
    expect(first.seq).toBe(1);
    expect(first.details).toEqual({ n: 1 });
    let csv = '';
    for await (const chunk of await log.export('csv', { decision: 'deny' })) csv += chunk;
    expect(csv.trim().split('\r\n')).toHaveLength(11);
  });

  it('exports in pages, so a large log streams', async () => {
    const n = 2500;
    await seed(n);
    let lines = 0;
    let chunks = 0;
    for await (const chunk of await service().export('jsonl')) {
      chunks += 1;
      lines += chunk.split('\n').length - 1;
    }
    expect(lines).toBe(n);
    expect(chunks).toBeGreaterThanOrEqual(3);
  });

  it('keeps one chain when several replicas write at once', async (context) => {
    if (!handle.openReplica) {
      context.skip();
      return;
    }
    const replicas = await Promise.all([handle.openReplica(), handle.openReplica()]);
    const writers = replicas.map(writerFor);
    try {
      await Promise.all(
        writers.flatMap((w, r) =>
          Array.from({ length: 150 }, (_, i) =>
            i % 10 === 0
              ? replicas[r]!.db.transaction().execute((trx) =>
                  w.recordInTransaction(trx, event(r * 1000 + i)),
                )
              : w.record(event(r * 1000 + i)),
          ),
        ),
      );
    } finally {
      for (const w of writers) await w.close();
      for (const s of replicas) await s.close();
    }
    expect(await count()).toBe(300);
    expect(await service().verify()).toMatchObject({ ok: true, checked: 300 });
  });
};
