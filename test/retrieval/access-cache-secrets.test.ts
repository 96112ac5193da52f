import { allowedUseOf } from '../helpers/access.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretCacheDefaults } from '../../src/credentials/credential-service.js';
import { settings } from '../../src/config/config-schema.js';
import { fixedClock } from '../../src/lib/clock.js';
import { openStore, type Store } from '../../src/store/database.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { openReplica, outcomes, type Replica } from './access-cache-replica.js';
import { addAgent, addCredential, grant, retrieve } from './retrieval-fixtures.js';

/**
 * The decrypted platform secrets kept for the retrieval path: at most `maxEntries`, each for at most
 * `maxAgeMs` after it was decrypted, none at all with `maxEntries: 0` (credential-service.ts).
 */
describe('the decrypted secret cache', () => {
  const clock = fixedClock('2026-06-01T12:00:00Z');
  let t: TestVault;
  let other: Store;
  const replicas: Replica[] = [];
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestVault({ clock });
    other = await openStore({ dataDir: t.dataDir });
    for (const name of ['secret-a', 'secret-b']) {
      ids[name] = (
        await addCredential(t, { name, type: 'api_key', secret: { api_key: `${name}-value` } })
      ).id;
    }
  });

  afterAll(async () => {
    for (const replica of replicas) await replica.close();
    await other?.close();
    await t?.stop();
  });

  const replicaWith = async (maxEntries: number, maxAgeMs: number) => {
    const replica = await openReplica(other, {
      dataDir: t.dataDir,
      clock,
      secretCache: { maxEntries, maxAgeMs },
    });
    replicas.push(replica);
    return replica;
  };

  /** Reads the secret of `name` through the retrieval path's read; returns its `api_key`. */
  const read = async (replica: Replica, name: string) =>
    (await replica.credentials.readCurrentSecret(allowedUseOf('default', ids[name]!))).secret.api_key;

  it('keeps at most maxEntries, the oldest going first', async () => {
    const replica = await replicaWith(1, 60_000);
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(await read(replica, 'secret-b')).toBe('secret-b-value');
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(outcomes(replica.takeLookups(), 'secret')).toEqual(['miss', 'hit', 'miss', 'miss', 'hit']);
  });

  it('decrypts again once an entry is maxAgeMs old', async () => {
    const replica = await replicaWith(10, 1000);
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    clock.advance(999);
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    clock.advance(1);
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(await read(replica, 'secret-a')).toBe('secret-a-value');
    expect(outcomes(replica.takeLookups(), 'secret')).toEqual(['miss', 'hit', 'miss', 'hit']);
  });

  it('keeps none with maxEntries 0: every read decrypts, and sees a new version at once', async () => {
    const replica = await replicaWith(0, 60_000);
    expect(await read(replica, 'secret-b')).toBe('secret-b-value');
    expect(await read(replica, 'secret-b')).toBe('secret-b-value');
    await t.vault.services.credentials.update('default', 'secret-b', { secret: { api_key: 'secret-b-2' } });
    expect(await read(replica, 'secret-b')).toBe('secret-b-2');
    const lookups = replica.takeLookups();
    expect(outcomes(lookups, 'secret')).toEqual([]);
    // The credential's row (no plaintext) is still cached until the credential changes.
    expect(outcomes(lookups, 'credential')).toEqual(['miss', 'hit', 'miss']);
  });

  it('is configured by --secret-cache-max-entries and --secret-cache-max-age-ms, with the documented defaults', async () => {
    expect({
      maxEntries: settings.secretCacheMaxEntries.default,
      maxAgeMs: settings.secretCacheMaxAgeMs.default,
    }).toEqual(secretCacheDefaults);
    // Off in a whole vault: a first retrieval loads the key, the grants, the namespace's policies and
    // the row (four misses); on, the decrypted secret is a fifth, and a warm retrieval answers from it.
    const missesOf = async (vault: TestVault) =>
      Number(
        /tokenvault_access_cache_lookups_total\{result="miss"\} (\d+)/.exec(
          (await vault.request('GET', '/metrics', { token: null })).text,
        )?.[1] ?? 0, // none until the first miss
      );
    const missesOfFirstRetrieval = async (vault: TestVault) => {
      await addCredential(vault, {
        name: 'configured',
        type: 'api_key',
        secret: { api_key: 'configured-1' },
      });
      const agent = await addAgent(vault, 'configured-agent');
      await grant(vault, { agent: agent.id, credential: 'configured', ttl: '1d', reveal: true });
      const before = await missesOf(vault);
      const ok = await retrieve(vault, agent, { agent: agent.name, service: 'configured' });
      expect((ok.body as { access_token: string }).access_token).toBe('configured-1');
      return (await missesOf(vault)) - before;
    };
    const off = await startTestVault({ settings: { secretCacheMaxEntries: '0' } });
    try {
      expect(await missesOfFirstRetrieval(off)).toBe(4);
    } finally {
      await off.stop();
    }
    expect(await missesOfFirstRetrieval(t)).toBe(5);
  });
});
