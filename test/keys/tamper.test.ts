import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Credential } from '../../src/credentials/credential-repo.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import type { VerifyView } from './key-fixtures.js';

/**
 * Someone with write access to the database file moves or alters encrypted values. Every such change
 * must surface as `decryption_failed` with a message that says where, never as another credential's
 * secret, garbage, or a crash; and a vault started with the wrong master key must refuse to start.
 */

const alphaSecret = 'sk-alpha-0123456789-do-not-leak';
const betaSecret = 'sk-beta-9876543210-do-not-leak';

/** Flips one bit in the middle of the decoded bytes of a base64url string and re-encodes it. */
const flipBit = (b64url: string): string => {
  const bytes = Buffer.from(b64url, 'base64url');
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0x01;
  return bytes.toString('base64url');
};

/** `tv1.<dekId>.<body>` / `dek1.<version>.<body>`: flips one bit of the sealed body. */
const flipBitInLastPart = (value: string): string => {
  const parts = value.split('.');
  parts[parts.length - 1] = flipBit(parts.at(-1)!);
  return parts.join('.');
};

describe('tampering with stored keys and ciphertexts', () => {
  let dir: TempDataDir;
  let t: TestVault;
  let alpha: Credential;
  let beta: Credential;

  const db = () => t.vault.store.db;
  const readBeta = () => t.vault.services.credentials.readSecret('default', 'beta');

  const ciphertextsOf = async (id: string) =>
    (
      await db()
        .selectFrom('credential_versions')
        .select('ciphertexts')
        .where('credential_id', '=', id)
        .where('version', '=', 1)
        .executeTakeFirstOrThrow()
    ).ciphertexts;

  const dataKeyRow = (id: string) =>
    db().selectFrom('data_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  const expectDecryptionFailed = async (read: Promise<unknown>, mentions: RegExp) => {
    const error = await read.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error, 'the read must fail').toBeDefined();
    expect(error!.code).toBe('decryption_failed');
    expect(error!.message).toMatch(mentions);
    // The message names where the problem is and never carries either secret.
    expect(error!.message).not.toContain(alphaSecret);
    expect(error!.message).not.toContain(betaSecret);
  };

  beforeEach(async () => {
    dir = await createTempDataDir();
    t = await startTestVault({ dataDir: dir.dir });
    alpha = await t.vault.services.credentials.create('default', {
      name: 'alpha',
      type: 'api_key',
      secret: { api_key: alphaSecret },
    });
    beta = await t.vault.services.credentials.create('default', {
      name: 'beta',
      type: 'api_key',
      secret: { api_key: betaSecret },
    });
    // Both read before anything is touched, so each failure below is the tampering's doing.
    expect((await readBeta()).secret).toEqual({ api_key: betaSecret });
  });

  afterEach(async () => {
    await t?.stop();
    await dir?.cleanup();
  });

  it("refuses another credential's ciphertexts copied onto a row", async () => {
    await db()
      .updateTable('credential_versions')
      .set({ ciphertexts: await ciphertextsOf(alpha.id) })
      .where('credential_id', '=', beta.id)
      .execute();

    await expectDecryptionFailed(
      readBeta(),
      new RegExp(`credential ${beta.id} .*cannot be decrypted: it was sealed by data key ${alpha.dataKeyId}`),
    );
  });

  it("refuses another credential's ciphertexts even when its data key is pointed to as well", async () => {
    // The copied ciphertexts now name the data key that really sealed them, and that key opens: only
    // the AAD (namespace + credential id + field) stands between the attacker and alpha's secret.
    await db()
      .updateTable('credential_versions')
      .set({ ciphertexts: await ciphertextsOf(alpha.id) })
      .where('credential_id', '=', beta.id)
      .execute();
    await db()
      .updateTable('credentials')
      .set({ data_key_id: alpha.dataKeyId })
      .where('id', '=', beta.id)
      .execute();

    await expectDecryptionFailed(readBeta(), /altered, moved from another row, or sealed by another key/);
  });

  it('refuses data_key_id swapped between two credentials', async () => {
    await db()
      .updateTable('credentials')
      .set({ data_key_id: alpha.dataKeyId })
      .where('id', '=', beta.id)
      .execute();
    await db()
      .updateTable('credentials')
      .set({ data_key_id: beta.dataKeyId })
      .where('id', '=', alpha.id)
      .execute();

    await expectDecryptionFailed(readBeta(), /it was sealed by data key/);
    await expectDecryptionFailed(
      t.vault.services.credentials.readSecret('default', 'alpha'),
      /it was sealed by data key/,
    );
  });

  it('refuses wrapped data keys swapped between two data-key rows', async () => {
    const a = await dataKeyRow(alpha.dataKeyId);
    const b = await dataKeyRow(beta.dataKeyId);
    await db()
      .updateTable('data_keys')
      .set({ wrapped_key: a.wrapped_key, kek_ref: a.kek_ref })
      .where('id', '=', b.id)
      .execute();
    await db()
      .updateTable('data_keys')
      .set({ wrapped_key: b.wrapped_key, kek_ref: b.kek_ref })
      .where('id', '=', a.id)
      .execute();

    // Each wrapped key still unwraps, but to the other credential's key, which cannot open this row.
    await expectDecryptionFailed(readBeta(), /altered, moved from another row, or sealed by another key/);
    await expectDecryptionFailed(
      t.vault.services.credentials.readSecret('default', 'alpha'),
      /altered, moved from another row, or sealed by another key/,
    );
  });

  it('refuses a stored ciphertext with one bit flipped', async () => {
    const stored = JSON.parse(await ciphertextsOf(beta.id)) as Record<string, string>;
    const tampered = { ...stored, api_key: flipBitInLastPart(stored.api_key!) };
    expect(tampered.api_key).not.toBe(stored.api_key);
    await db()
      .updateTable('credential_versions')
      .set({ ciphertexts: JSON.stringify(tampered) })
      .where('credential_id', '=', beta.id)
      .execute();

    await expectDecryptionFailed(
      readBeta(),
      /Field "api_key" of credential .* cannot be decrypted: it was altered/,
    );
    // Alpha is untouched and still reads.
    expect((await t.vault.services.credentials.readSecret('default', 'alpha')).secret).toEqual({
      api_key: alphaSecret,
    });
  });

  it('refuses a wrapped data key with one bit flipped, and keys/verify names it', async () => {
    const row = await dataKeyRow(beta.dataKeyId);
    await db()
      .updateTable('data_keys')
      .set({ wrapped_key: flipBitInLastPart(row.wrapped_key) })
      .where('id', '=', row.id)
      .execute();

    await expectDecryptionFailed(readBeta(), /data key wrapped under platform:1 failed its integrity check/);

    const verify = await t.request('POST', '/v1/admin/keys/verify');
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({
      ok: false,
      // The two credentials' keys and the audit chain key.
      checked: 3,
      failures: [
        { data_key_id: beta.dataKeyId, credential_id: beta.id, ref: 'platform:1', code: 'decryption_failed' },
      ],
    } satisfies Partial<VerifyView>);
  });

  it('refuses to start with a different TOKENVAULT_MASTER_KEY than the vault was created with', async () => {
    // The vault above generated master.key; an operator now "moves" to an environment key.
    await t.stop();
    const wrongKey = randomBytes(32).toString('base64');
    await expect(
      startTestVault({ dataDir: dir.dir, settings: { masterKey: wrongKey } }),
    ).rejects.toMatchObject({
      code: 'master_key_mismatch',
      message: expect.stringMatching(/does not open version 1/),
    });

    // A vault created under an environment key refuses another environment key too.
    const other = await createTempDataDir();
    try {
      const rightKey = randomBytes(32).toString('hex');
      const first = await startTestVault({ dataDir: other.dir, settings: { masterKey: rightKey } });
      await first.vault.services.credentials.create('default', {
        name: 'gamma',
        type: 'api_key',
        secret: { api_key: alphaSecret },
      });
      await first.stop();

      const error = await startTestVault({ dataDir: other.dir, settings: { masterKey: wrongKey } }).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(error?.code).toBe('master_key_mismatch');
      expect(error?.message).not.toContain(wrongKey);
      expect(error?.message).not.toContain(rightKey);

      // With the right key it starts and reads: the failed start changed nothing.
      const again = await startTestVault({ dataDir: other.dir, settings: { masterKey: rightKey } });
      try {
        expect((await again.vault.services.credentials.readSecret('default', 'gamma')).secret).toEqual({
          api_key: alphaSecret,
        });
      } finally {
        await again.stop();
      }
    } finally {
      await other.cleanup();
    }
  });
});
