import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { fixedClock } from '../lib/clock.js';
import { openStore, type Store, sqliteFileName } from '../store/database.js';
import { deleteAllKekVersions, listKekVersions } from './kek-repo.js';
import { createPlatformKeyProvider, parsePlatformRef } from './platform-key-provider.js';

let dataDir: string;
let store: Store;
const clock = fixedClock('2026-01-01T00:00:00Z');
const rootKey = randomBytes(32);

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tv-platform-'));
  store = await openStore({ dataDir });
});
afterEach(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const provider = (key = rootKey) => createPlatformKeyProvider({ rootKey: key, db: store.db, clock });

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> => {
  try {
    await promise;
  } catch (error) {
    if (isVaultError(error)) return error.code;
    throw error;
  }
  return undefined;
};

describe('platform key provider', () => {
  it('creates KEK version 1 on first initialize and keeps it on the next', async () => {
    const keys = provider();
    await keys.initialize();
    const rows = await listKekVersions(store.db);
    expect(rows).toEqual([
      { version: 1, wrappedKey: expect.stringMatching(/^kek1\./), createdAt: '2026-01-01T00:00:00.000Z' },
    ]);
    await provider().initialize();
    expect(await listKekVersions(store.db)).toEqual(rows);
    expect(await keys.activeRef()).toBe('platform:1');
  });

  it('wraps and unwraps a batch of DEKs', async () => {
    const keys = provider();
    await keys.initialize();
    const deks = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const wrapped = await keys.wrap(deks);
    expect(wrapped.map((w) => w.ref)).toEqual(['platform:1', 'platform:1', 'platform:1']);
    for (const w of wrapped) expect(w.wrapped).toMatch(/^dek1\.1\.[A-Za-z0-9_-]+$/);
    expect(await keys.unwrap(wrapped)).toEqual(deks);
    await keys.check();
  });

  it('never writes the root key to the database file', async () => {
    const keys = provider();
    await keys.initialize();
    await keys.rotate();
    const file = readFileSync(join(dataDir, sqliteFileName));
    expect(file.includes(rootKey)).toBe(false);
    expect(file.includes(Buffer.from(rootKey.toString('base64')))).toBe(false);
  });

  it('rotates: new wraps carry the new ref, old wraps still unwrap', async () => {
    const keys = provider();
    await keys.initialize();
    const old = await keys.wrap([randomBytes(32)]);
    expect(await keys.rotate()).toBe(2);
    expect(await keys.activeRef()).toBe('platform:2');
    const fresh = await keys.wrap([randomBytes(32)]);
    expect(fresh[0]?.ref).toBe('platform:2');
    expect(fresh[0]?.wrapped).toMatch(/^dek1\.2\./);
    expect(await keys.unwrap([...old, ...fresh])).toHaveLength(2);
    expect(await keys.rotate()).toBe(3);
  });

  it('lets a second instance on the same database see a rotation at once', async () => {
    const a = provider();
    const b = provider();
    await a.initialize();
    await b.initialize();
    const before = await b.wrap([randomBytes(32)]);
    await a.rotate();
    const dek = randomBytes(32);
    const after = await b.wrap([dek]);
    expect(after[0]?.ref).toBe('platform:2');
    expect(await b.activeRef()).toBe('platform:2');
    // And the other way: b wrapped under a version a created, a unwraps b's old wrap.
    expect(await a.unwrap(after)).toEqual([dek]);
    expect(await a.unwrap(before)).toHaveLength(1);
  });

  it('loads a version it has never seen when unwrapping', async () => {
    const a = provider();
    await a.initialize();
    await a.rotate();
    const wrapped = await a.wrap([randomBytes(32)]);
    const fresh = provider(); // not initialized: learns version 2 on demand
    expect(await fresh.unwrap(wrapped)).toHaveLength(1);
  });

  it('rejects the wrong root key with master_key_mismatch', async () => {
    await provider().initialize();
    const wrong = provider(randomBytes(32));
    expect(await codeOf(wrong.initialize())).toBe('master_key_mismatch');
    expect(await codeOf(wrong.wrap([randomBytes(32)]))).toBe('master_key_mismatch');
  });

  it('rejects a tampered wrapped key with decryption_failed', async () => {
    const keys = provider();
    await keys.initialize();
    const [w] = await keys.wrap([randomBytes(32)]);
    const sealed = Buffer.from(w!.wrapped.split('.')[2]!, 'base64url');
    for (let bit = 0; bit < sealed.length * 8; bit += 7) {
      const tampered = Buffer.from(sealed);
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      const wrapped = `dek1.1.${tampered.toString('base64url')}`;
      expect(await codeOf(keys.unwrap([{ ref: w!.ref, wrapped }]))).toBe('decryption_failed');
    }
  });

  it('rejects a relabelled, malformed or unknown ref with decryption_failed', async () => {
    const keys = provider();
    await keys.initialize();
    const [w] = await keys.wrap([randomBytes(32)]);
    await keys.rotate();
    const cases = [
      { ref: 'platform:2', wrapped: w!.wrapped }, // ref moved to another version
      { ref: 'platform:2', wrapped: w!.wrapped.replace(/^dek1\.1\./, 'dek1.2.') }, // and relabelled
      { ref: 'webhook:kms-1', wrapped: w!.wrapped },
      { ref: 'platform:01', wrapped: w!.wrapped },
      { ref: w!.ref, wrapped: 'garbage' },
      { ref: w!.ref, wrapped: `${w!.wrapped}.x` },
    ];
    for (const c of cases) expect(await codeOf(keys.unwrap([c]))).toBe('decryption_failed');

    try {
      await keys.unwrap([{ ref: 'platform:9', wrapped: w!.wrapped.replace(/^dek1\.1\./, 'dek1.9.') }]);
      expect.unreachable();
    } catch (error) {
      expect(isVaultError(error) && error.code).toBe('decryption_failed');
      expect((error as Error).message).toContain('no version 9');
    }
  });

  it('reports an empty keyring instead of wrapping with nothing', async () => {
    const keys = provider();
    await keys.initialize();
    await deleteAllKekVersions(store.db);
    expect(await codeOf(keys.wrap([randomBytes(32)]))).toBe('key_provider_unavailable');
  });

  it('survives two instances initializing and rotating at the same time', async () => {
    const a = provider();
    const b = provider();
    await Promise.all([a.initialize(), b.initialize()]);
    const versions = await Promise.all([a.rotate(), b.rotate()]);
    expect(versions.sort()).toEqual([2, 3]);
    expect((await listKekVersions(store.db)).map((r) => r.version)).toEqual([1, 2, 3]);
  });

  it('parses only canonical platform refs', () => {
    expect(parsePlatformRef('platform:12')).toBe(12);
    for (const bad of ['platform:0', 'platform:', 'platform:1a', 'webhook:1', 'platform:-1']) {
      expect(parsePlatformRef(bad)).toBeUndefined();
    }
  });
});
