import type { Kysely, Transaction } from 'kysely';
import type { KeyProviderKind } from '../crypto/key-provider.js';
import type { Database } from '../store/schema.js';

type Db = Kysely<Database> | Transaction<Database>;

/** A re-wrap in progress: every data key whose ref is not `targetRef` (or, for webhook, not a webhook ref) moves. */
export interface KeyJob {
  id: string;
  kind: 'rotate' | 'mode';
  /** `platform:3` for a rotation or a switch to platform; `webhook` for a switch to webhook mode. */
  target: string;
  total: number;
  done: number;
  startedAt: string;
  finishedAt: string | null;
  /** Which process holds the job, and until when; another may take over after the lease runs out. */
  owner: string | null;
  leaseUntil: string | null;
}

const readValue = async <T>(db: Db, key: string): Promise<T | undefined> => {
  const row = await db.selectFrom('vault_state').select('value').where('key', '=', key).executeTakeFirst();
  return row ? (JSON.parse(row.value) as T) : undefined;
};

const writeValue = async (db: Db, key: string, value: unknown, now: Date): Promise<void> => {
  const row = { key, value: JSON.stringify(value), updated_at: now.toISOString() };
  await db
    .insertInto('vault_state')
    .values(row)
    .onConflict((oc) => oc.column('key').doUpdateSet({ value: row.value, updated_at: row.updated_at }))
    .execute();
};

export const vaultStateRepo = {
  getMode: (db: Db) => readValue<KeyProviderKind>(db, 'mode'),
  setMode: (db: Db, mode: KeyProviderKind, now: Date) => writeValue(db, 'mode', mode, now),
  getJob: (db: Db) => readValue<KeyJob | null>(db, 'key_job').then((job) => job ?? null),
  setJob: (db: Db, job: KeyJob | null, now: Date) => writeValue(db, 'key_job', job, now),
};
