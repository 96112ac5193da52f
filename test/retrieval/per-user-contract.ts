import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestVault } from '../helpers/vault.js';
import { addAgent, errorOf, retrieve, type TestAgent } from './retrieval-fixtures.js';

/**
 * Issue 13: per-user credentials. Several credentials may share a name when their subject (the end
 * user) differs; an agent's request selects one by `?user=` (else the shared one, else the only one),
 * and an admin command by `?user=` / `--user`.
 */
export const perUserCredentialsContract = (dialect: string, startVault: () => Promise<TestVault>) =>
  describe(`per-user credentials on ${dialect}`, () => {
    let t: TestVault;
    let agent: TestAgent;

    const add = async (subject: string | undefined, token: string) => {
      const response = await t.request('POST', '/v1/admin/credentials', {
        body: { name: 'github', type: 'bearer', secret: { token }, ...(subject ? { subject } : {}) },
      });
      expect(response.status, response.text).toBe(201);
    };
    const grant = async (user?: string) => {
      const response = await t.request('POST', '/v1/admin/grants', {
        body: { agent: 'helper', credential: 'github', reveal: true, ttl: '1h', ...(user ? { user } : {}) },
      });
      expect(response.status, response.text).toBe(201);
    };
    const tokenFor = async (query = '') => {
      const response = await retrieve(t, agent, { agent: 'helper', service: 'github', query });
      return response.status === 200
        ? (response.body as { access_token: string }).access_token
        : `${response.status} ${errorOf(response.body).code}`;
    };

    beforeAll(async () => {
      t = await startVault();
      agent = await addAgent(t, 'helper');
    });
    afterAll(() => t?.stop());

    it('selects the end user’s credential by ?user=, and the only one without', async () => {
      await add('alice', 'alice-token');
      await grant('alice');
      expect(await tokenFor('?user=alice')).toBe('alice-token');
      expect(await tokenFor()).toBe('alice-token');
      expect(await tokenFor('?user=bob')).toBe('403 credential_not_granted');

      await add('bob', 'bob-token');
      // A name held once per subject: a second one for the same user is refused.
      const again = await t.request('POST', '/v1/admin/credentials', {
        body: { name: 'github', type: 'bearer', secret: { token: 'x' }, subject: 'bob' },
      });
      expect(errorOf(again.body).code).toBe('credential_exists');
      await grant('bob');
      expect(await tokenFor('?user=bob')).toBe('bob-token');
      expect(await tokenFor('?user=alice')).toBe('alice-token');
      const ambiguous = await retrieve(t, agent, { agent: 'helper', service: 'github' });
      expect(ambiguous.status).toBe(400);
      expect(errorOf(ambiguous.body).code).toBe('end_user_required');
    });

    it('uses the shared credential when the request names no user, never for a user without their own', async () => {
      await add(undefined, 'team-token');
      await grant();
      expect(await tokenFor()).toBe('team-token');
      expect(await tokenFor('?user=carol')).toBe('403 credential_not_granted');
      expect(await tokenFor('?user=alice')).toBe('alice-token');
    });

    it('lets admin commands pick the user, and never mistakes one user’s credential for another’s', async () => {
      const shown = await t.request('GET', '/v1/admin/credentials/github?user=bob');
      expect(shown.body).toMatchObject({ subject: 'bob' });
      expect((await t.request('GET', '/v1/admin/credentials/github')).body).toMatchObject({ subject: null });
      expect((await t.request('GET', '/v1/admin/credentials/github?user=carol')).status).toBe(404);

      expect((await t.request('DELETE', '/v1/admin/credentials/github')).status).toBe(204);
      const ambiguous = await t.request('GET', '/v1/admin/credentials/github');
      expect(errorOf(ambiguous.body).code).toBe('end_user_required');
      expect((await t.request('DELETE', '/v1/admin/credentials/github?user=alice')).status).toBe(204);
      expect(await tokenFor('?user=alice')).toBe('403 credential_not_granted');
      expect(await tokenFor('?user=bob')).toBe('bob-token');
      expect(await tokenFor()).toBe('bob-token');
      // A change of subject moves the name's access scope: the next request sees it.
      const moved = await t.request('PATCH', '/v1/admin/credentials/github?user=bob', {
        body: { subject: 'erin' },
      });
      expect(moved.status, moved.text).toBe(200);
      expect(await tokenFor('?user=bob')).toBe('403 credential_not_granted');
      expect(await tokenFor('?user=erin')).toBe('bob-token');
    });
  });
