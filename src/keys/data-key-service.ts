import type { Kysely, Transaction } from 'kysely';
import { newDataKey } from '../crypto/envelope.js';
import type { WrappedKey } from '../crypto/key-provider.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database, DataKeyTable } from '../store/schema.js';
import { type KeyProviders, providerFor, unwrapMany } from './key-providers.js';
import { vaultStateRepo } from './vault-state-repo.js';

type Db = Kysely<Database> | Transaction<Database>;

export interface DataKeyServiceDeps {
  db: Kysely<Database>;
  providers: KeyProviders;
  clock: Clock;
}

/**
 * Data keys: one per credential, wrapped by the active provider. Wrapping happens before any
 * transaction opens (it may be a network call in webhook mode); the caller inserts the row inside its
 * own transaction so a credential and its key are written together or not at all.
 */
export const createDataKeyService = ({ db, providers, clock }: DataKeyServiceDeps) => {
  const openWrapped = async (key: WrappedKey): Promise<Buffer> => {
    const [dek] = await unwrapMany(providers, [key]);
    return dek!;
  };

  const activeProvider = async () => providerFor(providers, (await vaultStateRepo.getMode(db)) ?? 'platform');

  return {
    /** A fresh data key, wrapped, with the row to insert. The plaintext key never leaves this process. */
    async prepare(namespace: string, credentialId: string): Promise<{ dek: Buffer; row: DataKeyTable }> {
      const dek = newDataKey();
      const [wrapped] = await (await activeProvider()).wrap([dek]);
      const now = clock.now().toISOString();
      const row: DataKeyTable = {
        id: newId(),
        namespace,
        credential_id: credentialId,
        wrapped_key: wrapped!.wrapped,
        kek_ref: wrapped!.ref,
        created_at: now,
        updated_at: now,
      };
      return { dek, row };
    },

    insert: (trx: Db, row: DataKeyTable) => trx.insertInto('data_keys').values(row).execute(),

    async open(dataKeyId: string, trx: Db = db): Promise<Buffer> {
      const row = await trx
        .selectFrom('data_keys')
        .select(['wrapped_key', 'kek_ref'])
        .where('id', '=', dataKeyId)
        .executeTakeFirstOrThrow();
      return openWrapped({ ref: row.kek_ref, wrapped: row.wrapped_key });
    },

    /** A data key from its wrapped form, read by the caller. */
    openWrapped,

    remove: (trx: Db, dataKeyId: string) => trx.deleteFrom('data_keys').where('id', '=', dataKeyId).execute(),
  };
};

export type DataKeyService = ReturnType<typeof createDataKeyService>;
