import { afterEach, expect, it } from 'vitest';
import { auditChainStateKey, auditKeyOwner } from '../../src/audit/audit-keys.js';
import { chainHash, genesisHash } from '../../src/audit/audit-hash.js';
import { createAuditWriter } from '../../src/audit/audit-writer.js';
import { fixedClock } from '../../src/lib/clock.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault, type TestVaultOptions } from '../helpers/vault.js';
import {
  dumpDatabase,
  expectKeyNowhereIn,
  startKms,
  type TestKms,
  waitForJob,
  webhookSettings,
  whereKeyAppears,
  keyStatus as status,
} from '../keys/key-fixtures.js';
import { addAgent, addCredential } from '../retrieval/retrieval-fixtures.js';
import { event } from './audit-log-contract.js';

type Db = Store['db'];

/**
 * What a database writer could do before the keyed chain: rewrite rows and re-hash the chain from
 * `fromSeq` on (the whole chain by default) and the head with plain SHA-256, exactly as the old writer
 * linked events.
 */
const rechainWithSha256 = async (db: Db, fromSeq = 1): Promise<void> => {
  const rows = await db
    .selectFrom('audit_events')
    .selectAll()
    .where('seq', '>=', fromSeq)
    .orderBy('seq')
    .execute();
  let prev = rows[0]!.prev_hash;
  for (const row of rows) {
    const hash = chainHash(prev, row);
    await db.updateTable('audit_events').set({ prev_hash: prev, hash }).where('seq', '=', row.seq).execute();
    prev = hash;
  }
  const last = rows.at(-1)!;
  await db.updateTable('audit_head').set({ seq: last.seq, hash: prev }).where('id', '=', 1).execute();
};

const auditKeyRow = (db: Db) =>
  db.selectFrom('data_keys').selectAll().where('credential_id', '=', auditKeyOwner).executeTakeFirstOrThrow();

/**
 * The keyed audit chain on one store (docs/audit.md, "The keyed chain"): a database writer who rewrites
 * an event and re-hashes every link and the head is caught; so is one who moves or removes the record
 * of where the keyed part starts; a log written before the switch still verifies and continues; the
 * key is wrapped by the key provider (the webhook in webhook mode) and survives a rotation and a mode
 * switch.
 */
export const keyedChainContract = (
  storeOptions: () => Promise<Pick<TestVaultOptions, 'databaseUrl'> & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault | undefined;
  let dir: TempDataDir | undefined;
  let kms: TestKms | undefined;
  let cleanup: (() => Promise<void>) | undefined;
  let databaseUrl: string | undefined;

  const open = async (settings?: TestVaultOptions['settings']) => {
    if (!dir) {
      const options = await storeOptions();
      cleanup = options.cleanup;
      databaseUrl = options.databaseUrl;
      dir = await createTempDataDir();
    }
    await t?.stop();
    t = await startTestVault({ databaseUrl, dataDir: dir.dir, settings });
    return t;
  };

  afterEach(async () => {
    await t?.stop();
    t = undefined;
    await kms?.stop();
    kms = undefined;
    await cleanup?.();
    cleanup = undefined;
    await dir?.cleanup();
    dir = undefined;
  });

  const verify = (vault: TestVault) => vault.vault.services.auditLog.verify();

  /** A credential, an agent and a grant: the `grant.create` event is the one the attacker rewrites. */
  const grantSomething = async (vault: TestVault) => {
    await addCredential(vault, { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-k' } });
    await addAgent(vault, 'agent-42');
    const granted = await vault.request('POST', '/v1/admin/grants', {
      body: { agent: 'agent-42', credential: 'slack', ttl: '1d' },
    });
    expect(granted.status, granted.text).toBe(201);
  };

  it('detects a grant.create event whose actor was rewritten and the whole chain re-hashed', async () => {
    const vault = await open();
    await grantSomething(vault);
    const before = await verify(vault);
    expect(before).toMatchObject({ ok: true, keyedFrom: 1 });

    const db = vault.vault.store.db;
    const grantEvent = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'grant.create')
      .executeTakeFirstOrThrow();
    await db
      .updateTable('audit_events')
      .set({ actor_id: 'someone-else' })
      .where('seq', '=', grantEvent.seq)
      .execute();
    // Re-hashed from the rewritten event on, the events before it untouched: caught at that event.
    await rechainWithSha256(db, Number(grantEvent.seq));
    expect(await verify(vault)).toMatchObject({
      ok: false,
      checked: Number(grantEvent.seq) - 1,
      firstBad: { seq: Number(grantEvent.seq), id: grantEvent.id, problem: 'altered' },
    });

    // Re-hashed from the first event on: no keyed link holds, the first one is named.
    await rechainWithSha256(db);
    expect(await verify(vault)).toMatchObject({
      ok: false,
      checked: 0,
      firstBad: { seq: 1, problem: 'altered' },
    });
  });

  it('detects the switch record moved past the end (keyed events passed off as plain ones) or removed', async () => {
    const vault = await open();
    await grantSomething(vault);
    const db = vault.vault.store.db;
    const state = await db
      .selectFrom('vault_state')
      .select('value')
      .where('key', '=', auditChainStateKey)
      .executeTakeFirstOrThrow();
    const record = JSON.parse(state.value) as { keyId: string; fromSeq: number; mac: string };
    expect(record.fromSeq).toBe(1);

    // Every event re-hashed as plain SHA-256 and the record moved past them: the MAC no longer matches.
    await rechainWithSha256(db);
    const head = await db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow();
    await db
      .updateTable('vault_state')
      .set({ value: JSON.stringify({ ...record, fromSeq: Number(head.seq) + 1 }) })
      .where('key', '=', auditChainStateKey)
      .execute();
    expect(await verify(vault)).toMatchObject({ ok: false, checked: 0, firstBad: { problem: 'altered' } });
    expect((await verify(vault)).firstBad?.detail).toMatch(/does not carry the audit key's MAC/);

    await db.deleteFrom('vault_state').where('key', '=', auditChainStateKey).execute();
    expect((await verify(vault)).firstBad).toMatchObject({ seq: 1, problem: 'altered' });
    expect((await verify(vault)).firstBad?.detail).toMatch(/was removed/);
  });

  it('keeps verifying a log written before the switch, continues it keyed, and catches a rewrite of the old part', async () => {
    // The log of an older vault: plain SHA-256 links, no audit key.
    const options = await storeOptions();
    cleanup = options.cleanup;
    databaseUrl = options.databaseUrl;
    dir = await createTempDataDir();
    const store = await openStore({ databaseUrl, dataDir: dir.dir });
    const writer = createAuditWriter({ store, clock: fixedClock('2026-06-01T12:00:00Z'), logger: console });
    for (let i = 1; i <= 5; i++) await writer.record(event(i));
    await writer.close();
    await store.close();

    const vault = await open();
    const db = vault.vault.store.db;
    const switched = await verify(vault);
    // The first keyed event is the first one the upgraded vault wrote (its root token's creation).
    expect(switched).toMatchObject({ ok: true, keyedFrom: 6 });
    expect(switched.checked).toBeGreaterThan(5);
    await grantSomething(vault);
    const grown = await verify(vault);
    expect(grown).toMatchObject({ ok: true, keyedFrom: 6 });
    expect(grown.checked).toBeGreaterThan(switched.checked);

    // The old part rewritten and re-hashed up to the switch: the first keyed link no longer matches.
    await db.updateTable('audit_events').set({ actor_id: 'someone-else' }).where('seq', '=', 3).execute();
    const rows = await db
      .selectFrom('audit_events')
      .selectAll()
      .where('seq', '<=', 5)
      .orderBy('seq')
      .execute();
    let prev = genesisHash;
    for (const row of rows) {
      const hash = chainHash(prev, row);
      await db
        .updateTable('audit_events')
        .set({ prev_hash: prev, hash })
        .where('seq', '=', row.seq)
        .execute();
      prev = hash;
    }
    expect(await verify(vault)).toMatchObject({
      ok: false,
      checked: 5,
      firstBad: { seq: 5, problem: 'altered' },
    });
  });

  it('wraps the audit key with the webhook in webhook mode: the store holds no plaintext key', async () => {
    kms = await startKms();
    const vault = await open(webhookSettings(kms));
    await grantSomething(vault);
    const db = vault.vault.store.db;
    expect((await auditKeyRow(db)).kek_ref).toBe('webhook:kms-test');
    const { hmacKey } = vault.vault.services.auditChainKey;
    expectKeyNowhereIn(await dumpDatabase(db), hmacKey, 'the database');
    if (!databaseUrl) expect(await whereKeyAppears(dir!.dir, hmacKey)).toEqual([]);

    // After a restart the key comes back through the webhook, and the chain goes on.
    const restarted = await open(webhookSettings(kms));
    expect(restarted.vault.services.auditChainKey.hmacKey.equals(hmacKey)).toBe(true);
    await restarted.request('GET', '/v1/admin/credentials');
    expect(await verify(restarted)).toMatchObject({ ok: true, keyedFrom: 1 });

    // With the webhook down the key cannot be opened: the vault does not start and writes nothing.
    await restarted.stop();
    t = undefined;
    await kms.stop();
    await expect(
      startTestVault({ databaseUrl, dataDir: dir!.dir, settings: webhookSettings(kms) }),
    ).rejects.toThrow();
  });

  it('keeps the chain verifiable across a key rotation and a switch to webhook mode', async () => {
    kms = await startKms();
    const vault = await open(webhookSettings(kms, 'platform'));
    await grantSomething(vault);
    const db = vault.vault.store.db;
    expect((await auditKeyRow(db)).kek_ref).toBe('platform:1');

    expect((await vault.request('POST', '/v1/admin/keys/rotate')).status).toBe(202);
    await waitForJob(() => status(vault));
    expect((await auditKeyRow(db)).kek_ref).toBe('platform:2');
    expect(await verify(vault)).toMatchObject({ ok: true });

    expect((await vault.request('POST', '/v1/admin/keys/mode', { body: { mode: 'webhook' } })).status).toBe(
      202,
    );
    await waitForJob(() => status(vault));
    expect((await auditKeyRow(db)).kek_ref).toBe('webhook:kms-test');

    // Restarted in webhook mode (the platform keys are gone): the key opens through the webhook.
    const restarted = await open(webhookSettings(kms));
    await restarted.request('GET', '/v1/admin/credentials');
    const result = await verify(restarted);
    expect(result).toMatchObject({ ok: true, keyedFrom: 1 });
    expect(result.checked).toBeGreaterThan(5);
  });
};
