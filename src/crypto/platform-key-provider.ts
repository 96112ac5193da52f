import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../store/schema.js';
import { aeadKeyLength, decodeBase64Url, open, seal } from './aead.js';
import { getKekVersion, insertKekVersion, listKekVersions, maxKekVersion } from './kek-repo.js';
import type { KeyProvider, WrappedKey } from './key-provider.js';

/**
 * Platform mode: the vault holds the keyring. Each KEK version is a random 32-byte key stored in
 * `kek_versions` wrapped by the root key (`kek1.<base64url(iv|ct|tag)>`, AAD binding the version), and
 * DEKs are wrapped by a KEK as `dek1.<version>.<base64url(iv|ct|tag)>` with AAD binding the ref
 * `platform:<version>`.
 *
 * Replicas share the database, not memory: wrap() reads the newest version on every call so a rotation
 * on another replica takes effect at once, and unwrap() loads versions it has not seen on demand.
 */
export interface PlatformKeyProviderDeps {
  rootKey: Buffer;
  db: Kysely<Database>;
  clock: Clock;
}

export interface PlatformKeyProvider extends KeyProvider {
  readonly kind: 'platform';
  /** Creates KEK version 1 on an empty keyring, else proves the root key opens every version. */
  initialize(): Promise<void>;
  /**
   * Adds the next KEK version; new wraps use it at once. Returns the new version. Given a transaction,
   * the version is inserted in it (it takes effect, and is cached here, only if that commits): a
   * rotation and its audit record then commit together.
   */
  rotate(trx?: Transaction<Database>): Promise<number>;
  /** `platform:<newest version>`. */
  activeRef(): Promise<string>;
}

const kekFormat = 'kek1';
const dekFormat = 'dek1';

export const platformRef = (version: number): string => `platform:${version}`;

/** The version in a `platform:<n>` ref, or `undefined` when the ref is not one. */
export const parsePlatformRef = (ref: string): number | undefined => {
  const match = /^platform:([1-9][0-9]{0,8})$/.exec(ref);
  return match ? Number(match[1]) : undefined;
};

const kekAad = (version: number) =>
  Buffer.from(JSON.stringify(['tokenvault/kek', kekFormat, version]), 'utf8');
const dekAad = (ref: string) => Buffer.from(JSON.stringify(['tokenvault/dek', dekFormat, ref]), 'utf8');

const decryptionFailed = (message: string, cause?: unknown) =>
  new VaultError('decryption_failed', message, cause === undefined ? undefined : { cause });

export const createPlatformKeyProvider = ({
  rootKey,
  db,
  clock,
}: PlatformKeyProviderDeps): PlatformKeyProvider => {
  if (rootKey.length !== aeadKeyLength) throw new TypeError(`the root key must be ${aeadKeyLength} bytes`);
  const keks = new Map<number, Buffer>();

  const unwrapKek = (version: number, wrapped: string): Buffer => {
    const sealed = wrapped.startsWith(`${kekFormat}.`)
      ? decodeBase64Url(wrapped.slice(kekFormat.length + 1))
      : undefined;
    try {
      if (!sealed) throw new Error('malformed wrapped KEK');
      return open(rootKey, sealed, kekAad(version));
    } catch (cause) {
      throw new VaultError(
        'master_key_mismatch',
        `The master key does not open version ${version} of this vault’s keyring; start with the key the ` +
          'vault was created with (TOKENVAULT_MASTER_KEY or the master.key file in the data dir).',
        { cause },
      );
    }
  };

  /** The KEK for a version, from memory or the database; `undefined` when the version does not exist. */
  const kekFor = async (version: number): Promise<Buffer | undefined> => {
    const cached = keks.get(version);
    if (cached) return cached;
    const row = await getKekVersion(db, version);
    if (!row) return undefined;
    const kek = unwrapKek(row.version, row.wrappedKey);
    keks.set(version, kek);
    return kek;
  };

  const newestVersion = async (): Promise<number> => {
    const version = await maxKekVersion(db);
    if (version === undefined) {
      throw new VaultError(
        'key_provider_unavailable',
        'The platform keyring is empty: the vault was not initialized.',
      );
    }
    return version;
  };

  /** Inserts `version` with a fresh KEK; false when another replica inserted that version first. */
  /** A fresh KEK for `version`, and its row wrapped by the root key. */
  const newKek = (version: number) => {
    const kek = randomBytes(aeadKeyLength);
    const wrappedKey = `${kekFormat}.${seal(rootKey, kek, kekAad(version)).toString('base64url')}`;
    return { kek, row: { version, wrappedKey, createdAt: clock.now().toISOString() } };
  };

  const tryInsert = async (version: number): Promise<boolean> => {
    const { kek, row } = newKek(version);
    try {
      await insertKekVersion(db, row);
    } catch (error) {
      if (await getKekVersion(db, version)) return false;
      throw error;
    }
    keks.set(version, kek);
    return true;
  };

  const initialize = async (): Promise<void> => {
    const existing = await listKekVersions(db);
    if (existing.length === 0 && (await tryInsert(1))) return;
    for (const row of existing.length === 0 ? await listKekVersions(db) : existing) {
      keks.set(row.version, unwrapKek(row.version, row.wrappedKey));
    }
  };

  const rotate = async (trx?: Transaction<Database>): Promise<number> => {
    if (trx) {
      // Not cached here: a rolled-back version must not be remembered under a number that another
      // rotation may take later. kekFor loads it once it is committed.
      const next = ((await maxKekVersion(trx)) ?? 0) + 1;
      await insertKekVersion(trx, newKek(next).row);
      return next;
    }
    // A concurrent rotation on another replica takes the number we picked; take the next one.
    for (let attempt = 0; attempt < 5; attempt++) {
      const next = ((await maxKekVersion(db)) ?? 0) + 1;
      if (await tryInsert(next)) return next;
    }
    throw new Error('could not add a KEK version: other replicas kept rotating at the same time');
  };

  const wrap = async (deks: Buffer[]): Promise<WrappedKey[]> => {
    if (deks.length === 0) return [];
    const version = await newestVersion();
    const kek = await kekFor(version);
    if (!kek) {
      throw new VaultError('key_provider_unavailable', `Platform key version ${version} disappeared.`);
    }
    const ref = platformRef(version);
    return deks.map((dek) => ({
      ref,
      wrapped: `${dekFormat}.${version}.${seal(kek, dek, dekAad(ref)).toString('base64url')}`,
    }));
  };

  const unwrapOne = async ({ ref, wrapped }: WrappedKey): Promise<Buffer> => {
    const version = parsePlatformRef(ref);
    if (version === undefined) {
      throw decryptionFailed(`"${ref.slice(0, 64)}" is not a platform key reference.`);
    }
    const parts = typeof wrapped === 'string' ? wrapped.split('.') : [];
    const sealed = parts.length === 3 ? decodeBase64Url(parts[2]!) : undefined;
    if (parts[0] !== dekFormat || parts[1] !== String(version) || !sealed) {
      throw decryptionFailed(
        `A data key wrapped under ${ref} is malformed or labelled with another version.`,
      );
    }
    const kek = await kekFor(version);
    if (!kek) {
      throw decryptionFailed(
        `A data key is wrapped under ${ref}, but this vault's keyring has no version ${version}.`,
      );
    }
    try {
      return open(kek, sealed, dekAad(ref));
    } catch (cause) {
      throw decryptionFailed(`A data key wrapped under ${ref} failed its integrity check.`, cause);
    }
  };

  const unwrap = async (keys: WrappedKey[]): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    // Sequential on purpose: the first unknown version is loaded once, then served from memory.
    for (const key of keys) out.push(await unwrapOne(key));
    return out;
  };

  const check = async (): Promise<void> => {
    const probe = randomBytes(aeadKeyLength);
    const [unwrapped] = await unwrap(await wrap([probe]));
    if (!unwrapped?.equals(probe)) {
      throw new VaultError('key_provider_unavailable', 'The platform keyring failed its self-check.');
    }
  };

  return {
    kind: 'platform',
    initialize,
    rotate,
    activeRef: async () => platformRef(await newestVersion()),
    wrap,
    unwrap,
    check,
  };
};
