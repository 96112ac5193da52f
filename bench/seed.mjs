// Fast seeding of real credentials: the same rows `credentials.create()` writes (a data key wrapped
// by the vault's platform KEK, an `api_key` secret sealed under that data key with the same AAD), built
// with the vault's own building blocks from dist/, but wrapped in batches and inserted many rows per
// statement and one transaction per batch. One `create()` per credential would pay a durable commit
// each (SQLite runs with synchronous=FULL), which is what the HTTP create benchmark measures already.

import {
  createPlatformKeyProvider,
  defaultInjection,
  encryptField,
  loadRootKey,
  newDataKey,
  newId,
  systemClock,
  toRow,
} from './vault-modules.mjs';

// 15 columns a credential row: 500 rows stay far below PostgreSQL's 65,535 bind parameters.
const rowsPerStatement = 500;

/** A platform provider over the vault's own keyring (the root key in its data dir). */
export const platformProviderFor = async (vault, dataDir) => {
  const rootKey = loadRootKey({ dataDir, create: false }).key;
  const provider = createPlatformKeyProvider({ rootKey, db: vault.store.db, clock: systemClock });
  await provider.initialize();
  return provider;
};

/**
 * Inserts `count` api_key credentials named `${prefix}${i}` into the default namespace.
 * Calls `onProgress(done)` after each batch.
 */
export const seedCredentials = async (vault, dataDir, { count, prefix, onProgress = () => {} }) => {
  const provider = await platformProviderFor(vault, dataDir);
  const { db } = vault.store;
  const namespace = 'default';
  const injection = defaultInjection('api_key', ['api_key']);
  for (let start = 0; start < count; start += rowsPerStatement) {
    const n = Math.min(rowsPerStatement, count - start);
    const deks = Array.from({ length: n }, () => newDataKey());
    const wrapped = await provider.wrap(deks);
    const now = systemClock.now().toISOString();
    const dataKeys = [];
    const credentials = [];
    const versions = [];
    for (let i = 0; i < n; i++) {
      const id = newId();
      const dataKeyId = newId();
      dataKeys.push({
        id: dataKeyId,
        namespace,
        credential_id: id,
        wrapped_key: wrapped[i].wrapped,
        kek_ref: wrapped[i].ref,
        created_at: now,
        updated_at: now,
      });
      credentials.push(
        toRow({
          id,
          namespace,
          name: `${prefix}${start + i}`,
          type: 'api_key',
          description: '',
          scopes: [],
          allowedHosts: [],
          injection,
          status: 'active',
          expiresAt: null,
          subject: null,
          dataKeyId,
          version: 1,
          createdAt: now,
          updatedAt: now,
        }),
      );
      const aad = { namespace, credentialId: id, version: 1, field: 'api_key' };
      const secret = `sk-bench-${start + i}-${id}`;
      versions.push({
        credential_id: id,
        version: 1,
        ciphertexts: JSON.stringify({ api_key: encryptField(deks[i], dataKeyId, aad, secret) }),
        created_at: now,
      });
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('data_keys').values(dataKeys).execute();
      await trx.insertInto('credentials').values(credentials).execute();
      await trx.insertInto('credential_versions').values(versions).execute();
    });
    onProgress(start + n);
  }
};

/** The secret `seedCredentials` stored for credential number `i` starts with this. */
export const seededSecretPrefix = (i) => `sk-bench-${i}-`;
