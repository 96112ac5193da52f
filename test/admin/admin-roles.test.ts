import { readFileSync } from 'node:fs';
import { type Kysely, sql } from 'kysely';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AdminRole, adminRoles } from '../../src/admin/admin-roles.js';
import { isVaultError } from '../../src/errors/vault-error.js';
import { installAdminAuth } from '../../src/http/admin-auth.js';
import type { AdminRouteInfo } from '../../src/http/fastify-types.js';
import { migrations } from '../../src/store/migrations.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Created {
  id: string;
  token: string;
  role: AdminRole;
  expires_at: string | null;
}
const errorCode = (body: unknown): string | undefined =>
  (body as { error?: { code?: string } } | undefined)?.error?.code;

/**
 * Issue 10 finding 4: what each admin role may call, from the routes as registered (so a new route is
 * covered by itself), and the ways a token could widen itself: a wider role, a longer life, revoking
 * the root token.
 */
describe('admin roles', () => {
  let t: TestVault;
  const tokens = {} as Record<AdminRole, Created>;

  const createToken = async (body: Record<string, unknown>, token?: string) =>
    t.request('POST', '/v1/admin/tokens', { body, ...(token === undefined ? {} : { token }) });

  const eventsOf = (requestId: unknown) =>
    t.vault.store.db
      .selectFrom('audit_events')
      .selectAll()
      .where('request_id', '=', String(requestId))
      .execute();

  /** Registered admin routes, their HEAD twins aside (they share the GET's declaration). */
  const routes = (): AdminRouteInfo[] => t.vault.app.adminRoutes.filter((r) => r.method !== 'HEAD');
  const call = (route: AdminRouteInfo, role: AdminRole) =>
    t.request(route.method as Method, route.url.replace(/:(\w+)/g, 'no-such-$1'), {
      token: tokens[role].token,
    });

  beforeAll(async () => {
    t = await startTestVault();
    for (const role of adminRoles) {
      const created = await createToken({ name: `${role}-token`, role });
      expect(created.status, created.text).toBe(201);
      tokens[role] = created.body as Created;
      expect(tokens[role].role).toBe(role);
    }
  });
  afterAll(() => t?.stop());

  it('knows every admin route and its roles; admin is admitted to all of them', () => {
    const all = routes();
    expect(all.length).toBeGreaterThan(30);
    for (const route of all) {
      expect(route.url.startsWith('/v1/admin/'), route.url).toBe(true);
      expect(route.roles[0], `${route.method} ${route.url}`).toBe('admin');
    }
  });

  it('is documented route by route in docs/security.md, as registered', () => {
    const page = readFileSync(new URL('../../docs/security.md', import.meta.url), 'utf8');
    const documented = [
      ...page.matchAll(/^\|\s*`([A-Z]+)`\s*\|\s*`(\/v1\/admin\/[^`]*)`\s*\|\s*([a-z, ]+?)\s*\|$/gm),
    ].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
    const registered = routes().map((r) => `${r.method} ${r.url} ${r.roles.join(', ')}`);
    expect(documented.sort()).toEqual(registered.sort());
  });

  it('makes the root token an admin, and lists every token with its role', async () => {
    const list = await t.request('GET', '/v1/admin/tokens');
    const items = (list.body as { items: { name: string; role: string; root: boolean }[] }).items;
    expect(items.find((i) => i.root)).toMatchObject({ name: 'root', role: 'admin' });
    for (const role of adminRoles) expect(items.find((i) => i.name === `${role}-token`)?.role).toBe(role);
  });

  for (const role of adminRoles.filter((r) => r !== 'admin')) {
    it(`${role}: every route it is not admitted to refuses it with forbidden_role, recorded once`, async () => {
      const refused = routes().filter((r) => !r.roles.includes(role));
      expect(refused.length).toBeGreaterThan(0);
      for (const route of refused) {
        const where = `${role} on ${route.method} ${route.url}`;
        const response = await call(route, role);
        expect(response.status, where).toBe(403);
        expect(errorCode(response.body), where).toBe('forbidden_role');
        const message = (response.body as { error: { message: string } }).error.message;
        expect(message, where).toContain(`needs role ${route.roles.join(' or ')}`);

        const events = await eventsOf(response.headers['x-request-id']);
        expect(events, where).toHaveLength(1);
        const [event] = events;
        expect(event!.action, where).toBe(route.event ?? 'admin.authorize');
        expect(event!.decision).toBe('deny');
        expect(event!.reason).toBe('forbidden_role');
        expect(event!.actor_type).toBe('admin');
        expect(event!.actor_id).toBe(tokens[role].id);
        expect(JSON.parse(event!.details)).toMatchObject({ role, roles_needed: route.roles });
      }
    });
  }

  for (const role of adminRoles) {
    it(`${role}: the routes it is admitted to do not refuse it for its role`, async () => {
      const admitted = routes().filter((r) => r.roles.includes(role));
      expect(admitted.length).toBeGreaterThan(0);
      // An approver reaches the approval routes and nothing else.
      if (role === 'approver')
        expect(admitted.every((r) => r.url.startsWith('/v1/admin/approvals'))).toBe(true);
      for (const route of admitted) {
        const response = await call(route, role);
        expect(errorCode(response.body), `${role} on ${route.method} ${route.url}`).not.toBe(
          'forbidden_role',
        );
        expect(response.status).not.toBe(401);
      }
    });
  }

  it('an operator reads and changes credentials, an auditor only reads them', async () => {
    const body = { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-1' } };
    const byOperator = await t.request('POST', '/v1/admin/credentials', {
      body,
      token: tokens.operator.token,
    });
    expect(byOperator.status, byOperator.text).toBe(201);
    const read = await t.request('GET', '/v1/admin/credentials/slack', { token: tokens.auditor.token });
    expect(read.status, read.text).toBe(200);
    const byAuditor = await t.request('DELETE', '/v1/admin/credentials/slack', {
      token: tokens.auditor.token,
    });
    expect(errorCode(byAuditor.body)).toBe('forbidden_role');
    const audit = await t.request('GET', '/v1/admin/audit/events?limit=5', { token: tokens.auditor.token });
    expect(audit.status, audit.text).toBe(200);
  });

  describe('privilege escalation', () => {
    it('refuses a token of a wider role, over HTTP and in the service itself', async () => {
      const before = (await t.vault.services.adminTokens.list()).length;
      const response = await createToken({ name: 'widened', role: 'admin' }, tokens.operator.token);
      expect(response.status).toBe(403);
      expect(errorCode(response.body)).toBe('forbidden_role');
      expect((await t.vault.services.adminTokens.list()).length).toBe(before);

      for (const [creator, wanted] of [
        ['operator', 'admin'],
        ['auditor', 'operator'],
        ['approver', 'auditor'],
      ] as const) {
        const refusal = await t.vault.services.adminTokens
          .create({ role: creator, expiresAt: null }, 'widened', { role: wanted })
          .catch((error: unknown) => error);
        expect(isVaultError(refusal) && refusal.code, `${creator} → ${wanted}`).toBe('forbidden_role');
      }
      expect((await t.vault.services.adminTokens.list()).length).toBe(before);
    });

    it('refuses a token that would outlive its creator, and allows one within its life', async () => {
      const short = (await createToken({ name: 'short-admin', role: 'admin', ttl_seconds: 3600 }))
        .body as Created;

      const permanent = await createToken({ name: 'forever', role: 'operator' }, short.token);
      expect(permanent.status).toBe(403);
      expect(errorCode(permanent.body)).toBe('admin_token_outlives_creator');
      const [event] = await eventsOf(permanent.headers['x-request-id']);
      expect(event).toMatchObject({
        action: 'admin_token.create',
        decision: 'deny',
        reason: 'admin_token_outlives_creator',
        actor_id: short.id,
      });

      const longer = await createToken({ name: 'longer', ttl_seconds: 7200 }, short.token);
      expect(errorCode(longer.body)).toBe('admin_token_outlives_creator');
      expect((longer.body as { error: { message: string } }).error.message).toMatch(/at most 3\d{3}\b/);

      const within = await createToken({ name: 'within', role: 'auditor', ttl_seconds: 1800 }, short.token);
      expect(within.status, within.text).toBe(201);
      const created = within.body as Created;
      expect(Date.parse(created.expires_at!)).toBeLessThanOrEqual(Date.parse(short.expires_at!));
    });

    it('lets no other token revoke the root token; the root token may revoke itself', async () => {
      const list = (await t.request('GET', '/v1/admin/tokens')).body as { items: Created[] };
      const rootId = list.items.find((i) => (i as unknown as { root: boolean }).root)!.id;

      const byAdmin = await t.request('DELETE', `/v1/admin/tokens/${rootId}`, { token: tokens.admin.token });
      expect(byAdmin.status).toBe(403);
      expect(errorCode(byAdmin.body)).toBe('root_token_protected');
      const [event] = await eventsOf(byAdmin.headers['x-request-id']);
      expect(event).toMatchObject({
        action: 'admin_token.revoke',
        decision: 'deny',
        reason: 'root_token_protected',
        actor_id: tokens.admin.id,
      });
      expect((await t.request('GET', '/v1/admin/tokens')).status).toBe(200);

      // Another admin may still revoke a token that is not root.
      const other = (await createToken({ name: 'other-admin', role: 'admin' })).body as Created;
      expect(
        (await t.request('DELETE', `/v1/admin/tokens/${other.id}`, { token: tokens.admin.token })).status,
      ).toBe(200);

      const bySelf = await t.request('DELETE', `/v1/admin/tokens/${rootId}`);
      expect(bySelf.status, bySelf.text).toBe(200);
      expect(errorCode((await t.request('GET', '/v1/admin/tokens')).body)).toBe('admin_token_revoked');
    });
  });
});

describe('route registration', () => {
  it('fails for an admin route that declares no role, or a role that does not exist', async () => {
    for (const config of [{}, { role: 'superuser' }, { role: [] }]) {
      const app = Fastify();
      void app.register(async (admin) => {
        installAdminAuth(admin, {
          authenticate: async () => Promise.reject(new Error('unused')),
          routes: [],
        });
        admin.get('/v1/admin/undeclared', { config: config as never }, async () => ({}));
      });
      await expect(app.ready(), JSON.stringify(config)).rejects.toThrow(/must declare config.role/);
      await app.close();
    }
  });
});

describe('migration 0005_admin_token_roles', () => {
  it('makes every token that existed before roles an admin', async () => {
    const t = await startTestVault();
    try {
      const db = t.vault.store.db;
      // Back to the schema before 0005, with a token made then; then 0005 itself, as a start runs it.
      await db.schema.alterTable('admin_tokens').dropColumn('role').execute();
      await sql`insert into admin_tokens (id, name, token_hash, created_at) values ('old', 'from-before', 'h', ${new Date().toISOString()})`.execute(
        db,
      );
      await migrations['0005_admin_token_roles']!.up(db as Kysely<unknown>);

      const rows = await db.selectFrom('admin_tokens').select(['name', 'role']).execute();
      expect(rows.find((r) => r.name === 'from-before')?.role).toBe('admin');
      expect(rows.find((r) => r.name === 'root')?.role).toBe('admin');
    } finally {
      await t.stop();
    }
  });
});
