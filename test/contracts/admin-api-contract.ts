import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody } from '../../src/http/error-handler.js';
import { fixedClock } from '../../src/lib/clock.js';
import type { TestVault, TestVaultOptions } from '../helpers/vault.js';
import { startTestVault } from '../helpers/vault.js';
import { countRows } from '../keys/key-fixtures.js';

const errorOf = (body: unknown) => (body as ErrorBody).error;

/**
 * The admin API on one store: what a person sees for bad input (a 4xx, a stable code, a message they
 * can act on) and that a refused request writes nothing.
 */
export const adminApiContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  const clock = fixedClock('2026-06-01T12:00:00Z');

  const counts = async () => {
    const db = t.vault.store.db;
    const one = (table: 'credentials' | 'credential_versions' | 'data_keys') => countRows(db, table);
    return {
      credentials: await one('credentials'),
      versions: await one('credential_versions'),
      keys: await one('data_keys'),
    };
  };

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    t = await startTestVault({ ...options, clock });
    const created = await t.request('POST', '/v1/admin/credentials', {
      body: { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-1' }, scopes: ['chat:write'] },
    });
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  describe('refuses bad input with its own code and writes nothing', () => {
    const cases: {
      what: string;
      rawBody?: string;
      body?: unknown;
      status: number;
      code: string;
      mentions: RegExp;
    }[] = [
      {
        what: 'malformed JSON',
        rawBody: '{"name": "x",}',
        status: 400,
        code: 'invalid_json',
        mentions: /not valid JSON/,
      },
      {
        what: 'an unknown type',
        body: { name: 'x', type: 'password', secret: { a: 'b' } },
        status: 400,
        code: 'unknown_credential_type',
        mentions: /api_key, bearer, basic, oauth2, custom/,
      },
      {
        what: 'a missing secret',
        body: { name: 'x', type: 'api_key' },
        status: 400,
        code: 'invalid_request',
        mentions: /secret/,
      },
      {
        what: 'a secret without its field',
        body: { name: 'x', type: 'basic', secret: { username: 'bob' } },
        status: 400,
        code: 'invalid_secret',
        mentions: /"password"/,
      },
      {
        what: 'an unknown top-level field',
        body: { name: 'x', type: 'api_key', secret: { api_key: 'k' }, colour: 'red' },
        status: 400,
        code: 'invalid_request',
        mentions: /additional properties/,
      },
      {
        what: 'a name that is taken',
        body: { name: 'slack', type: 'api_key', secret: { api_key: 'other' } },
        status: 409,
        code: 'credential_exists',
        mentions: /"slack" already exists/,
      },
      {
        what: 'an invalid name',
        body: { name: 'Slack Bot!', type: 'api_key', secret: { api_key: 'k' } },
        status: 400,
        code: 'invalid_name',
        mentions: /lowercase letters/,
      },
      {
        what: 'an injection template with CRLF',
        body: {
          name: 'crlf',
          type: 'bearer',
          secret: { token: 't' },
          injection: { in: 'header', name: 'Authorization', template: 'Bearer {{token}}\r\nX-Evil: 1' },
        },
        status: 400,
        code: 'invalid_injection',
        mentions: /no CR or LF/,
      },
      {
        what: 'an oversized body',
        body: { name: 'big', type: 'api_key', secret: { api_key: 'x'.repeat(300_000) } },
        status: 413,
        code: 'body_too_large',
        mentions: /262144 bytes/,
      },
    ];

    for (const c of cases) {
      it(c.what, async () => {
        const before = await counts();
        const response = await t.request('POST', '/v1/admin/credentials', {
          ...(c.rawBody === undefined ? { body: c.body } : { rawBody: c.rawBody }),
        });
        expect(response.status).toBe(c.status);
        const error = errorOf(response.body);
        expect(error.code).toBe(c.code);
        expect(error.message).toMatch(c.mentions);
        expect(error.request_id).toMatch(/^req_/);
        expect(response.headers['x-request-id']).toBe(error.request_id);
        expect(await counts()).toEqual(before);
      });
    }

    it('an unknown credential is 404 credential_not_found, on read, update and delete', async () => {
      for (const [method, body] of [
        ['GET', undefined],
        ['PATCH', { description: 'x' }],
        ['DELETE', undefined],
      ] as const) {
        const response = await t.request(method, '/v1/admin/credentials/nope', { body });
        expect(response.status).toBe(404);
        expect(errorOf(response.body).code).toBe('credential_not_found');
      }
    });

    it('an unknown endpoint is 404 not_found in the same error shape', async () => {
      const response = await t.request('GET', '/v1/admin/nothing-here');
      expect(response.status).toBe(404);
      expect(errorOf(response.body).code).toBe('not_found');
    });

    it('a bad secret update leaves the current version in place', async () => {
      const before = await counts();
      const response = await t.request('PATCH', '/v1/admin/credentials/slack', {
        body: { secret: { token: 'wrong-field' } },
      });
      expect(response.status).toBe(400);
      expect(errorOf(response.body).code).toBe('invalid_secret');
      expect(await counts()).toEqual(before);
    });
  });

  describe('credentials', () => {
    it('lists and shows metadata, never the secret', async () => {
      const list = await t.request('GET', '/v1/admin/credentials');
      expect(list.status).toBe(200);
      expect(list.text).not.toContain('xoxb-1');
      const shown = await t.request('GET', '/v1/admin/credentials/slack');
      expect(shown.body).toMatchObject({
        name: 'slack',
        type: 'api_key',
        secret_fields: ['api_key'],
        version: 1,
      });
      expect(shown.text).not.toContain('xoxb-1');
    });

    it('a new secret is a new version; the old one stays until pruned', async () => {
      await t.request('POST', '/v1/admin/credentials', {
        body: { name: 'gh', type: 'bearer', secret: { token: 'v1' } },
      });
      const updated = await t.request('PATCH', '/v1/admin/credentials/gh', {
        body: { secret: { token: 'v2' } },
      });
      expect(updated.body).toMatchObject({ version: 2 });
      const { credentials } = t.vault.services;
      expect((await credentials.readSecret('default', 'gh')).secret).toEqual({ token: 'v2' });
      expect((await credentials.readSecret('default', 'gh', { version: 1 })).secret).toEqual({ token: 'v1' });
      const versions = await t.request('GET', '/v1/admin/credentials/gh/versions');
      expect((versions.body as { items: unknown[] }).items).toHaveLength(2);
      const pruned = await t.request('POST', '/v1/admin/credentials/gh/prune', { body: { keep: 1 } });
      expect(pruned.body).toEqual({ pruned: 1 });
      await expect(credentials.readSecret('default', 'gh', { version: 1 })).rejects.toMatchObject({
        code: 'credential_version_not_found',
      });
    });

    it('pages through a long list in name order', async () => {
      for (const name of ['p-a', 'p-b', 'p-c']) {
        await t.request('POST', '/v1/admin/credentials', {
          body: { name, type: 'api_key', secret: { api_key: 'k' } },
          headers: { 'x-tokenvault-namespace': 'paging' },
        });
      }
      const headers = { 'x-tokenvault-namespace': 'paging' };
      const first = (await t.request('GET', '/v1/admin/credentials?limit=2', { headers })).body as {
        items: { name: string }[];
        next_cursor: string;
      };
      expect(first.items.map((c) => c.name)).toEqual(['p-a', 'p-b']);
      const second = (
        await t.request('GET', `/v1/admin/credentials?limit=2&after=${first.next_cursor}`, { headers })
      ).body as { items: { name: string }[]; next_cursor: string | null };
      expect(second.items.map((c) => c.name)).toEqual(['p-c']);
      expect(second.next_cursor).toBeNull();
    });

    it('keeps namespaces apart', async () => {
      const elsewhere = await t.request('GET', '/v1/admin/credentials/slack', {
        headers: { 'x-tokenvault-namespace': 'team-b' },
      });
      expect(elsewhere.status).toBe(404);
      const bad = await t.request('GET', '/v1/admin/credentials', {
        headers: { 'x-tokenvault-namespace': 'Team B' },
      });
      expect(errorOf(bad.body).code).toBe('invalid_namespace');
    });

    it('deletes a credential with its versions and data key', async () => {
      await t.request('POST', '/v1/admin/credentials', {
        body: { name: 'gone', type: 'api_key', secret: { api_key: 'k' } },
      });
      const before = await counts();
      expect((await t.request('DELETE', '/v1/admin/credentials/gone')).status).toBe(204);
      const after = await counts();
      expect(after).toEqual({
        credentials: before.credentials - 1,
        versions: before.versions - 1,
        keys: before.keys - 1,
      });
    });
  });

  describe('admin tokens', () => {
    it('refuses a missing, unknown, expired or revoked token with its own code', async () => {
      expect(errorOf((await t.request('GET', '/v1/admin/credentials', { token: null })).body).code).toBe(
        'unauthenticated',
      );
      const unknown = await t.request('GET', '/v1/admin/credentials', { token: 'tv_admin_not-a-real-token' });
      expect(unknown.status).toBe(401);
      expect(errorOf(unknown.body).code).toBe('admin_token_invalid');

      const created = (
        await t.request('POST', '/v1/admin/tokens', { body: { name: 'short', ttl_seconds: 3600 } })
      ).body as {
        id: string;
        token: string;
      };
      expect(created.token).toMatch(/^tv_admin_[A-Za-z0-9_-]{43}$/);
      expect((await t.request('GET', '/v1/admin/credentials', { token: created.token })).status).toBe(200);
      clock.advance(3600 * 1000);
      const expired = await t.request('GET', '/v1/admin/credentials', { token: created.token });
      expect(expired.status).toBe(401);
      expect(errorOf(expired.body).code).toBe('admin_token_expired');

      const other = (await t.request('POST', '/v1/admin/tokens', { body: { name: 'other' } })).body as {
        id: string;
        token: string;
      };
      expect((await t.request('DELETE', `/v1/admin/tokens/${other.id}`)).status).toBe(200);
      const revoked = await t.request('GET', '/v1/admin/credentials', { token: other.token });
      expect(revoked.status).toBe(401);
      expect(errorOf(revoked.body).code).toBe('admin_token_revoked');
    });

    it('stores only a hash of each token', async () => {
      const created = (await t.request('POST', '/v1/admin/tokens', { body: { name: 'hashed' } })).body as {
        token: string;
      };
      const rows = await t.vault.store.db.selectFrom('admin_tokens').selectAll().execute();
      expect(JSON.stringify(rows)).not.toContain(created.token);
      expect(JSON.stringify(rows)).not.toContain(t.rootToken);
      const listed = await t.request('GET', '/v1/admin/tokens');
      expect(listed.text).not.toContain(created.token);
      expect(listed.text).not.toContain('token_hash');
    });
  });
};
