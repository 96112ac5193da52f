import { createHmac, hkdfSync } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { isVaultError } from '../errors/vault-error.js';
import type { DataKeyService } from '../keys/data-key-service.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/database.js';
import type { Database } from '../store/schema.js';

/**
 * The audit chain key (docs/audit.md, "The keyed chain"). A random 32-byte key, generated once and
 * stored exactly like a credential's data key: a `data_keys` row wrapped by the active key provider
 * (the KEK in platform mode, the operator's webhook in webhook mode), so the database never holds it
 * in the clear and the re-wrap job moves it with every other data key on a rotation or a mode switch.
 * The link key is derived from it with HKDF under a label of its own, so the stored key is never used
 * as is, and a credential's data key copied into its row would give an unrelated link key.
 *
 * Where the keyed part of the chain starts is recorded once, in `vault_state` (`audit_chain`), with a
 * MAC under the same key: a database writer can neither move the switch later (to pass keyed events
 * off as plain SHA-256 ones) nor forge a record for a key of their own.
 */

type Db = Kysely<Database> | Transaction<Database>;

export interface AuditChainKey {
  /** The `data_keys` row that holds it, wrapped. */
  keyId: string;
  /** The HMAC key of the links, derived from the stored key. Never stored, never logged. */
  hmacKey: Buffer;
}

/** What `vault_state.audit_chain` holds: the first keyed event and a MAC binding it to the key. */
export interface AuditChainRecord {
  keyId: string;
  fromSeq: number;
  mac: string;
}

export const auditChainStateKey = 'audit_chain';
/** The `credential_id` of the audit key's `data_keys` row: it belongs to no credential. */
export const auditKeyOwner = 'audit-chain';
const auditKeyNamespace = '';

export const deriveChainKey = (keyId: string, dataKey: Buffer): AuditChainKey => ({
  keyId,
  hmacKey: Buffer.from(hkdfSync('sha256', dataKey, Buffer.alloc(0), 'tokenvault audit chain hmac v1', 32)),
});

/** The MAC of a switch record: the key's id and the first keyed seq, under the link key. */
export const switchMac = (key: AuditChainKey, fromSeq: number): string =>
  createHmac('sha256', key.hmacKey)
    .update(JSON.stringify(['tv-audit-switch-1', key.keyId, fromSeq]))
    .digest('hex');

export const readChainRecord = async (db: Db): Promise<AuditChainRecord | undefined> => {
  const row = await db
    .selectFrom('vault_state')
    .select('value')
    .where('key', '=', auditChainStateKey)
    .executeTakeFirst();
  return row ? (JSON.parse(row.value) as AuditChainRecord) : undefined;
};

/** Whether the record is the one this key wrote (a changed `fromSeq` or `keyId` does not check). */
export const recordMatches = (record: AuditChainRecord, key: AuditChainKey): boolean =>
  record.keyId === key.keyId &&
  Number.isSafeInteger(record.fromSeq) &&
  record.fromSeq >= 1 &&
  switchMac(key, record.fromSeq) === record.mac;

export interface AuditKeyDeps {
  store: Pick<Store, 'db' | 'dialect'>;
  dataKeys: Pick<DataKeyService, 'prepare' | 'insert' | 'open'>;
  clock: Clock;
  logger: { info(object: Record<string, unknown>, message: string): void };
}

/**
 * The audit chain key, unwrapped by its provider; created (and the switch recorded) the first time a
 * vault starts with this code. Every event appended after the head read here is keyed: the switch
 * record is written in the same transaction as that read, with the head locked on PostgreSQL. All
 * replicas must run this code before any of them appends again (an older one would append plain
 * links after the switch, which `verify` reports).
 */
export const loadAuditChainKey = async ({
  store,
  dataKeys,
  clock,
  logger,
}: AuditKeyDeps): Promise<AuditChainKey> => {
  const { db, dialect } = store;
  const existing = await readChainRecord(db);
  if (existing) return deriveChainKey(existing.keyId, await openKey(dataKeys, existing.keyId));

  // Wrapped before the transaction: in webhook mode wrapping is a network call.
  const { dek, row } = await dataKeys.prepare(auditKeyNamespace, auditKeyOwner);
  const key = deriveChainKey(row.id, dek);
  const fromSeq = await db.transaction().execute(async (trx) => {
    const head = await trx
      .selectFrom('audit_head')
      .select('seq')
      .where('id', '=', 1)
      .$if(dialect === 'postgres', (qb) => qb.forUpdate())
      .executeTakeFirst();
    const from = Number(head?.seq ?? 0) + 1;
    const record: AuditChainRecord = { keyId: key.keyId, fromSeq: from, mac: switchMac(key, from) };
    // Another replica starting at the same moment may have won: then its key is the chain's.
    const inserted = await trx
      .insertInto('vault_state')
      .values({
        key: auditChainStateKey,
        value: JSON.stringify(record),
        updated_at: clock.now().toISOString(),
      })
      .onConflict((oc) => oc.column('key').doNothing())
      .returning('key')
      .executeTakeFirst();
    if (!inserted) return undefined;
    await dataKeys.insert(trx, row);
    return from;
  });
  if (fromSeq === undefined) return loadAuditChainKey({ store, dataKeys, clock, logger });
  logger.info(
    { from_seq: fromSeq },
    'audit chain keyed from this event on (HMAC-SHA-256 under the audit key); the events before it stay plain SHA-256',
  );
  return key;
};

const openKey = async (dataKeys: AuditKeyDeps['dataKeys'], keyId: string): Promise<Buffer> => {
  try {
    return await dataKeys.open(keyId);
  } catch (error) {
    // A provider that is down or refuses says so with its own code; only a missing row is explained here.
    if (isVaultError(error)) throw error;
    throw new Error(
      `the audit chain key (data key ${keyId}) cannot be opened, so the audit log cannot be extended or verified: ` +
        `restore its data_keys row, or the key provider that wrapped it`,
      { cause: error },
    );
  }
};
