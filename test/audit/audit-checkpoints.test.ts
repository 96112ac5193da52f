import { createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type Checkpoint, checkpointText, parseCheckpointLines } from '../../src/audit/audit-checkpoints.js';
import type { AuditVerifyView } from '../../src/http/schemas/response-types.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent } from '../retrieval/retrieval-fixtures.js';

let t: TestVault | undefined;
let dir: TempDataDir | undefined;
afterEach(async () => {
  await t?.stop();
  await dir?.cleanup();
  t = undefined;
  dir = undefined;
});

const start = async (events: number, seconds = 0) => {
  dir = await createTempDataDir();
  const file = join(dir.dir, 'checkpoints.jsonl');
  t = await startTestVault({
    dataDir: dir.dir,
    settings: {
      auditCheckpointEvents: String(events),
      auditCheckpointSeconds: String(seconds),
      auditCheckpointFile: file,
    },
  });
  return { vault: t, file };
};

const headSeq = async (v: TestVault) =>
  Number((await v.vault.store.db.selectFrom('audit_head').select('seq').executeTakeFirstOrThrow()).seq);

/** The newest stored checkpoint once due ones are written (by this tick, or the timer's just before). */
const latest = async (v: TestVault): Promise<Checkpoint | undefined> => {
  await v.vault.services.auditCheckpoints.writer.tick();
  const row = await v.vault.store.db
    .selectFrom('audit_checkpoints')
    .selectAll()
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row && { ...row, seq: Number(row.seq) };
};

const verifyWith = async (v: TestVault, checkpoints?: Checkpoint[]) => {
  const response = await v.request('POST', '/v1/admin/audit/verify', {
    ...(checkpoints ? { body: { checkpoints } } : {}),
  });
  expect(response.status, response.text).toBe(200);
  return response.body as AuditVerifyView;
};

describe('signed audit checkpoints', () => {
  it('writes one after N events, to the table and the file, verifiable with the public key', async () => {
    const { vault, file } = await start(3);
    const writer = vault.vault.services.auditCheckpoints.writer;
    const before = await headSeq(vault);
    await writer.tick(); // whatever the restart left behind
    for (const name of ['a1', 'a2', 'a3']) await addAgent(vault, name);
    expect(await headSeq(vault)).toBeGreaterThanOrEqual(before + 3);
    const written = await latest(vault);
    expect(written?.seq).toBe(await headSeq(vault));
    // Not due again until three more events.
    await addAgent(vault, 'a4');
    expect(await writer.tick()).toBeUndefined();

    const jwk = (await vault.request('GET', '/v1/admin/audit/public-key')).body as Record<string, string>;
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA' });
    const publicKey = createPublicKey({ key: { kty: jwk.kty!, crv: jwk.crv!, x: jwk.x! }, format: 'jwk' });
    const lines = parseCheckpointLines(await readFile(file, 'utf8'));
    const last = lines.at(-1)!;
    expect(last).toEqual(written);
    expect(last.key_id).toBe(jwk.kid);
    expect(
      verify(null, Buffer.from(checkpointText(last)), publicKey, Buffer.from(last.signature, 'base64url')),
    ).toBe(true);
    const stored = await vault.vault.store.db.selectFrom('audit_checkpoints').selectAll().execute();
    expect(stored.map((c) => Number(c.seq))).toContain(last.seq);

    const result = await verifyWith(vault, lines);
    expect(result.ok).toBe(true);
    expect(result.checkpoints_checked).toBe(stored.length + lines.length);
  });

  it('detects a truncation that resets the head only against checkpoints kept elsewhere', async () => {
    const { vault, file } = await start(1);
    for (const name of ['b1', 'b2', 'b3']) await addAgent(vault, name);
    const checkpoint = (await latest(vault))!;
    expect(checkpoint.seq).toBe(await headSeq(vault));
    const db = vault.vault.store.db;

    // A database writer removes the newest events, moves the head back, and drops the stored checkpoints.
    const keep = checkpoint.seq - 2;
    const kept = await db
      .selectFrom('audit_events')
      .select('hash')
      .where('seq', '=', keep)
      .executeTakeFirstOrThrow();
    await db.deleteFrom('audit_events').where('seq', '>', keep).execute();
    await db.updateTable('audit_head').set({ seq: keep, hash: kept.hash }).where('id', '=', 1).execute();
    await db.deleteFrom('audit_checkpoints').execute();

    // Nothing in the vault anchors the old head: the chain checks out.
    const plain = await verifyWith(vault);
    expect(plain.ok).toBe(true);

    const shipped = parseCheckpointLines(await readFile(file, 'utf8'));
    const anchored = await verifyWith(vault, shipped);
    expect(anchored.ok).toBe(false);
    expect(anchored.first_bad).toMatchObject({ problem: 'truncated' });
    expect(anchored.first_bad!.seq).toBeGreaterThan(keep);
  });

  it('detects a rewritten checkpoint row in plain verify', async () => {
    const { vault } = await start(1);
    await addAgent(vault, 'c1');
    const checkpoint = (await latest(vault))!;
    expect((await verifyWith(vault)).ok).toBe(true);
    const db = vault.vault.store.db;
    const earlier = await db
      .selectFrom('audit_events')
      .select(['seq', 'hash'])
      .where('seq', '=', checkpoint.seq - 1)
      .executeTakeFirstOrThrow();
    // Pointing the checkpoint at an earlier head (to make a later truncation look anchored).
    await db
      .updateTable('audit_checkpoints')
      .set({ seq: Number(earlier.seq), hash: earlier.hash })
      .where('seq', '=', checkpoint.seq)
      .execute();

    const result = await verifyWith(vault);
    expect(result.ok).toBe(false);
    expect(result.first_bad).toMatchObject({ seq: Number(earlier.seq), problem: 'bad_signature' });
  });

  it('writes none when both settings are 0', async () => {
    const { vault, file } = await start(0, 0);
    for (const name of ['d1', 'd2']) await addAgent(vault, name);
    expect(await vault.vault.services.auditCheckpoints.writer.tick()).toBeUndefined();
    await vault.stop();
    t = undefined;
    await expect(readFile(file, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
