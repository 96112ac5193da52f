import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CredentialUse } from '../../src/access/agent-request.js';
import { createTokenFreshness } from '../../src/oauth/refresh/token-freshness.js';
import { openStore, type Store } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * The on-demand freshness step against a real store's refresh state. A request that read its secret
 * just before a refresh on another replica committed holds the replaced version, whose token is
 * expired; the stored state already describes the newer version. The request must answer with the
 * newer secret, read again, and must not start a refresh of its own (the provider would see a spent
 * refresh token). `test/oauth/refresh-replicas.pg.test.ts` shows the same race end to end, where it
 * only shows on a loaded machine.
 */
describe('token freshness', () => {
  let dir: TempDataDir;
  let store: Store;
  const now = Date.parse('2026-01-01T00:00:00.000Z');
  const clock = { now: () => new Date(now) };

  beforeEach(async () => {
    dir = await createTempDataDir();
    store = await openStore({ dataDir: dir.dir });
  });
  afterEach(async () => {
    await store.close();
    await dir.cleanup();
  });

  const useAt = (version: number, token: string) =>
    ({
      allowed: { namespace: 'default', credentialId: 'c1' },
      read: { credential: { type: 'oauth2', name: 'calendar' }, version, secret: { access_token: token } },
    }) as unknown as CredentialUse;

  const stateAt = (version: number, expiresAt: number) =>
    store.db
      .insertInto('oauth_refresh_state')
      .values({
        credential_id: 'c1',
        namespace: 'default',
        status: 'active',
        secret_version: version,
        access_expires_at: new Date(expiresAt).toISOString(),
        expiry_assumed: 0,
        next_refresh_at: null,
        last_refresh_at: null,
        failures: 0,
        last_error: null,
        lease_owner: null,
        lease_expires_at: null,
        fence: 0,
        updated_at: new Date(now).toISOString(),
      })
      .execute();

  const freshnessWith = (refreshes: string[]) =>
    createTokenFreshness({
      store,
      clock,
      settings: { onDemandMs: 60_000 },
      refresher: {
        refresh: async (_namespace, credentialId) => {
          refreshes.push(credentialId);
          return { outcome: 'refreshed', version: 3 } as never;
        },
      },
      credentials: { readCurrentSecret: async () => useAt(2, 'new-token').read },
    });

  it('reads again, without a refresh, a version a committed refresh already replaced', async () => {
    await stateAt(2, now + 3_600_000);
    const refreshes: string[] = [];
    const fresh = await freshnessWith(refreshes).ensureFresh(useAt(1, 'old-token'), 'retrieval');
    expect(fresh.read.version).toBe(2);
    expect(fresh.read.secret).toEqual({ access_token: 'new-token' });
    expect(refreshes).toEqual([]);
  });

  it('refreshes the version it read when the state says that version is expired', async () => {
    await stateAt(1, now - 1000);
    const refreshes: string[] = [];
    const fresh = await freshnessWith(refreshes).ensureFresh(useAt(1, 'old-token'), 'retrieval');
    expect(refreshes).toEqual(['c1']);
    expect(fresh.read.version).toBe(2);
  });

  it('hands out a version whose token is still fresh as it is', async () => {
    await stateAt(1, now + 3_600_000);
    const refreshes: string[] = [];
    const use = useAt(1, 'current-token');
    expect(await freshnessWith(refreshes).ensureFresh(use, 'retrieval')).toBe(use);
    expect(refreshes).toEqual([]);
  });
});
