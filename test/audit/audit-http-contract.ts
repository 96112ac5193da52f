import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkHash } from '../../src/audit/audit-hash.js';
import type { AuditEvent } from '../../src/audit/audit-types.js';
import type { Database } from '../../src/store/schema.js';
import { declaredRoutes } from '../helpers/declared-routes.js';
import type { TestVault, TestVaultOptions } from '../helpers/vault.js';
import { startTestVault } from '../helpers/vault.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const canary = 'CANARY-audit-5d1e-do-not-leak';
const forms = (value: string) => [
  value,
  Buffer.from(value).toString('base64'),
  Buffer.from(value).toString('base64url'),
  Buffer.from(value).toString('hex'),
];

/** RFC 4180 records (quoted cells may hold commas, quotes and line breaks). */
const parseCsv = (text: string): string[][] => {
  const records: string[][] = [];
  let record: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(cell);
      records.push(record);
      record = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || record.length > 0) records.push([...record, cell]);
  return records;
};

const breakAuditWrites = async (db: Kysely<Database>, dialect: string) => {
  if (dialect === 'sqlite') {
    await sql`create trigger audit_refuse before insert on audit_events begin select raise(abort, 'audit disk full'); end`.execute(
      db,
    );
  } else {
    await sql`create function audit_refuse() returns trigger language plpgsql as $$ begin raise exception 'audit disk full'; end $$`.execute(
      db,
    );
    await sql`create trigger audit_refuse before insert on audit_events for each row execute function audit_refuse()`.execute(
      db,
    );
  }
};

const restoreAuditWrites = async (db: Kysely<Database>, dialect: string) => {
  if (dialect === 'sqlite') await sql`drop trigger audit_refuse`.execute(db);
  else await sql`drop trigger audit_refuse on audit_events`.execute(db);
};

/**
 * Invariant 2 at the HTTP edge, on one store: every admin route with an event records its allowed and
 * denied outcomes durably before answering, failed admin authentication is recorded with the client
 * address, a failed audit write turns the answer into 503 audit_unavailable, no secret reaches an
 * event, and the audit API lists, exports and verifies the log.
 */
export const auditHttpContract = (
  storeOptions: () => Promise<TestVaultOptions & { cleanup?: () => Promise<void> }>,
) => {
  let t: TestVault;
  let cleanup: (() => Promise<void>) | undefined;
  let rootId: string;
  let counter = 0;

  /** A request with its own request id, so its event can be found. */
  const call = async (
    method: Method,
    url: string,
    options: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
  ) => {
    counter += 1;
    const requestId = `audit-test-${String(counter).padStart(4, '0')}`;
    const response = await t.request(method, url, {
      ...options,
      headers: { 'x-request-id': requestId, ...options.headers },
    });
    return { ...response, requestId };
  };

  const eventsOf = async (requestId: string) =>
    (await t.vault.services.auditLog.list({ limit: 1000 })).items.filter((e) => e.request_id === requestId);

  const onlyEventOf = async (requestId: string): Promise<AuditEvent> => {
    const events = await eventsOf(requestId);
    expect(events, `events of ${requestId}`).toHaveLength(1);
    return events[0]!;
  };

  const allRows = async () =>
    JSON.stringify(await t.vault.store.db.selectFrom('audit_events').selectAll().execute());

  beforeAll(async () => {
    const options = await storeOptions();
    cleanup = options.cleanup;
    // The sweep below fails authentication on every admin route; the per-address limit must not cut it short.
    t = await startTestVault({ ...options, settings: { authFailureLimit: '1000', ...options.settings } });
    rootId = (await t.vault.services.adminTokens.list()).find((token) => token.isRoot)!.id;
  });

  afterAll(async () => {
    await t?.stop();
    await cleanup?.();
  });

  describe('records the outcome of every admin route with an event, allowed and denied', () => {
    type Call = [Method, string, unknown?];
    const cases: {
      event: string;
      allow?: Call;
      deny?: Call;
      reason?: string;
      target?: string;
      /** Recorded by the service inside the change's transaction, with its own details. */
      byService?: true;
    }[] = [
      {
        event: 'credential.create',
        allow: [
          'POST',
          '/v1/admin/credentials',
          { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-1' } },
        ],
        deny: [
          'POST',
          '/v1/admin/credentials',
          { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-2' } },
        ],
        reason: 'credential_exists',
        target: 'credential:slack',
        byService: true,
      },
      {
        event: 'credential.update',
        allow: ['PATCH', '/v1/admin/credentials/slack', { description: 'chat' }],
        deny: ['PATCH', '/v1/admin/credentials/nope', { description: 'chat' }],
        reason: 'credential_not_found',
        target: 'credential:slack',
        byService: true,
      },
      {
        event: 'credential.prune',
        allow: ['POST', '/v1/admin/credentials/slack/prune', { keep: 1 }],
        deny: ['POST', '/v1/admin/credentials/nope/prune', { keep: 1 }],
        reason: 'credential_not_found',
        target: 'credential:slack',
        byService: true,
      },
      {
        event: 'credential.delete',
        allow: ['DELETE', '/v1/admin/credentials/slack'],
        deny: ['DELETE', '/v1/admin/credentials/slack'],
        reason: 'credential_not_found',
        target: 'credential:slack',
        byService: true,
      },
      {
        event: 'admin_token.create',
        allow: ['POST', '/v1/admin/tokens', { name: 'ci' }],
        deny: ['POST', '/v1/admin/tokens', { name: '!!' }],
        reason: 'invalid_request',
        target: 'admin_token:ci',
        byService: true,
      },
      {
        event: 'admin_token.revoke',
        allow: ['DELETE', '/v1/admin/tokens/NEW_TOKEN_ID'],
        deny: ['DELETE', '/v1/admin/tokens/nope'],
        reason: 'admin_token_not_found',
        byService: true,
      },
      { event: 'keys.verify', allow: ['POST', '/v1/admin/keys/verify'], byService: true },
      {
        event: 'keys.mode_set',
        deny: ['POST', '/v1/admin/keys/mode', { mode: 'platform' }],
        reason: 'mode_unchanged',
        byService: true,
      },
      // After mode_set: rotate starts a re-wrap, and mode_set would then be refused as rewrap_in_progress.
      { event: 'keys.rotate', allow: ['POST', '/v1/admin/keys/rotate'], byService: true },
    ];

    for (const c of cases) {
      it(c.event, async () => {
        if (c.allow) {
          const [method, rawUrl, body] = c.allow;
          let url = rawUrl;
          if (url.includes('NEW_TOKEN_ID')) {
            // Revoke a token of its own, not the root one the other cases use.
            const created = await t.request('POST', '/v1/admin/tokens', { body: { name: 'to-revoke' } });
            url = url.replace('NEW_TOKEN_ID', (created.body as { id: string }).id);
          }
          const allowed = await call(method, url, { body, headers: { 'user-agent': 'audit-test/1' } });
          expect(allowed.status).toBeLessThan(300);
          const allow = await onlyEventOf(allowed.requestId);
          expect(allow).toMatchObject({
            action: c.event,
            decision: 'allow',
            reason: 'ok',
            actor_type: 'admin',
            actor_id: rootId,
            client_ip: '127.0.0.1',
            user_agent: 'audit-test/1',
            namespace: 'default',
            request_id: allowed.requestId,
            details: c.byService ? expect.any(Object) : { method, status: allowed.status },
          });
          if (c.target) expect(`${allow.target_type}:${allow.target_id}`).toBe(c.target);
        }
        if (c.deny) {
          const [method, url, body] = c.deny;
          const denied = await call(method, url, { body });
          expect(denied.status).toBeGreaterThanOrEqual(400);
          expect(await onlyEventOf(denied.requestId)).toMatchObject({
            action: c.event,
            decision: 'deny',
            reason: c.reason,
            actor_type: 'admin',
            actor_id: rootId,
            ...(c.byService ? {} : { details: { status: denied.status } }),
          });
        }
      });
    }

    it('a bad admin token: deny with admin_token_invalid, the client address, no actor', async () => {
      const response = await call('POST', '/v1/admin/credentials', {
        body: { name: 'x', type: 'api_key', secret: { api_key: 'k' } },
        token: 'tv_admin_not-a-real-token-at-all-0000000000',
      });
      expect(response.status).toBe(401);
      expect(await onlyEventOf(response.requestId)).toMatchObject({
        action: 'credential.create',
        decision: 'deny',
        reason: 'admin_token_invalid',
        actor_type: 'anonymous',
        actor_id: null,
        client_ip: '127.0.0.1',
      });
      const missing = await call('GET', '/v1/admin/credentials', { token: null });
      expect(await onlyEventOf(missing.requestId)).toMatchObject({
        action: 'admin.authenticate',
        decision: 'deny',
        reason: 'unauthenticated',
        details: { route: '/v1/admin/credentials', status: 401 },
      });
    });

    /** Every admin route as registered (see test/helpers/declared-routes.ts), with a URL to call. */
    const adminRoutes = () =>
      declaredRoutes()
        .filter((route) => route.url.startsWith('/v1/admin/'))
        .map((route) => ({ ...route, path: route.url.replace(/:[A-Za-z]+/g, 'x') }));

    it('a failed admin authentication on every admin route: its event, else admin.authenticate', async () => {
      const routes = adminRoutes();
      // Fewer would mean the routes were not noted (the test file wraps Fastify to note them).
      expect(routes.length).toBeGreaterThanOrEqual(15);
      for (const route of routes) {
        const name = `${route.method} ${route.url}`;
        const response = await call(route.method as Method, route.path, {
          token: 'tv_admin_wrong-token-for-the-sweep-000000000000',
          ...(route.hasBody ? { body: {} } : {}),
        });
        expect(response.status, name).toBe(401);
        const event = await onlyEventOf(response.requestId);
        expect(event, name).toMatchObject({
          action: route.audit && 'event' in route.audit ? route.audit.event : 'admin.authenticate',
          decision: 'deny',
          reason: 'admin_token_invalid',
          actor_type: 'anonymous',
          client_ip: '127.0.0.1',
        });
      }
    });

    it('a body that does not validate, on every admin route with an event and a body: a deny event', async () => {
      const routes = adminRoutes().filter((route) => route.hasBody && route.audit && 'event' in route.audit);
      expect(routes.length).toBeGreaterThanOrEqual(5);
      for (const route of routes) {
        const name = `${route.method} ${route.url}`;
        // An array where every body schema wants an object: refused before any handler runs.
        const response = await call(route.method as Method, route.path, { body: [] });
        expect(response.status, name).toBe(400);
        expect(await onlyEventOf(response.requestId), name).toMatchObject({
          action: (route.audit as { event: string }).event,
          decision: 'deny',
          reason: 'invalid_request',
          actor_type: 'admin',
          actor_id: rootId,
        });
      }
    });
  });

  it('puts no secret into any event', async () => {
    const agentKey = `tv_agent_${'Q'.repeat(43)}`;
    for (const [name, type, secret] of [
      ['canary-k', 'api_key', { api_key: canary }],
      ['canary-b', 'basic', { username: 'bob', password: canary }],
      ['canary-o', 'oauth2', { access_token: canary, refresh_token: `r-${canary}`, token_type: 'Bearer' }],
    ] as const) {
      expect((await call('POST', '/v1/admin/credentials', { body: { name, type, secret } })).status).toBe(
        201,
      );
    }
    await call('PATCH', '/v1/admin/credentials/canary-k', { body: { secret: { api_key: `${canary}-2` } } });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'canary-k', type: 'api_key', secret: { api_key: canary } },
    });
    await call('POST', '/v1/admin/credentials', {
      body: { name: 'x', type: 'nonsense', secret: { k: canary } },
    });
    await call('DELETE', `/v1/admin/credentials/${agentKey}`, {
      headers: { 'user-agent': `bot ${agentKey}` },
    });
    await call('GET', '/v1/admin/credentials', { token: `tv_admin_${canary}` });
    await call('GET', '/v1/admin/credentials', { token: agentKey });
    const rows = await allRows();
    expect(rows).toContain('canary-k');
    for (const form of forms(canary)) expect(rows.includes(form), form).toBe(false);
    expect(rows).not.toContain(agentKey);
    expect(rows).not.toContain(t.rootToken);
    expect(rows).toContain('[redacted]');
  });

  describe('the audit API', () => {
    it('lists with filters and a keyset cursor', async () => {
      const first = await call('GET', '/v1/admin/audit/events?limit=2&decision=deny');
      expect(first.status).toBe(200);
      const page = first.body as { items: AuditEvent[]; next_cursor: string | null };
      expect(page.items).toHaveLength(2);
      expect(page.items.filter((e) => e.decision !== 'deny')).toEqual([]);
      expect(page.next_cursor).toBe(String(page.items[1]!.seq));
      const next = (
        await call('GET', `/v1/admin/audit/events?limit=2&decision=deny&after=${page.next_cursor}`)
      ).body as { items: AuditEvent[] };
      expect(next.items[0]!.seq).toBeGreaterThan(page.items[1]!.seq);
      const creates = (await call('GET', '/v1/admin/audit/events?action=credential.create&credential=slack'))
        .body as { items: AuditEvent[] };
      expect(creates.items.map((e) => e.decision)).toEqual(['allow', 'deny']);
      const newest = (await call('GET', '/v1/admin/audit/events?order=desc&limit=1')).body as {
        items: AuditEvent[];
      };
      const total = Number(
        (
          await t.vault.store.db
            .selectFrom('audit_events')
            .select((eb) => eb.fn.countAll<number | string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
      expect(newest.items[0]!.seq).toBe(total);
      const bad = await call('GET', '/v1/admin/audit/events?since=last-tuesday');
      expect(bad.status).toBe(400);
      expect((bad.body as { error: { code: string } }).error.code).toBe('invalid_request');
      // Reading the log is not recorded.
      expect(await eventsOf(first.requestId)).toEqual([]);
    });

    it('exports JSONL and CSV with one record per event, and the JSONL re-hashes to the chain', async () => {
      const total = (await t.vault.services.auditLog.verify()).checked;
      const jsonl = await call('GET', '/v1/admin/audit/export?format=jsonl');
      expect(jsonl.status).toBe(200);
      expect(jsonl.headers['content-type']).toMatch(/^application\/x-ndjson/);
      const events = jsonl.text
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as AuditEvent);
      expect(events).toHaveLength(total);
      let prev = '0'.repeat(64);
      for (const e of events) {
        expect(e.prev_hash).toBe(prev);
        const details = JSON.stringify(
          Object.fromEntries(Object.entries(e.details).sort(([a], [b]) => (a < b ? -1 : 1))),
        );
        // A vault that started with the keyed chain links every event with its audit key.
        expect(linkHash(prev, { ...e, details }, t.vault.services.auditChainKey.hmacKey)).toBe(e.hash);
        prev = e.hash;
      }

      const csv = await call('GET', '/v1/admin/audit/export?format=csv');
      expect(csv.headers['content-type']).toMatch(/^text\/csv/);
      const records = parseCsv(csv.text);
      expect(records[0]).toEqual(Object.keys(events[0]!));
      expect(records).toHaveLength(total + 1);
      expect(records.slice(1).map((r) => r[16])).toEqual(events.map((e) => e.hash));

      const denied = await call('GET', '/v1/admin/audit/export?format=csv&decision=deny');
      expect(parseCsv(denied.text)).toHaveLength(events.filter((e) => e.decision === 'deny').length + 1);
    });

    it('verifies, and names the event after a row is edited in the database', async () => {
      const ok = await call('POST', '/v1/admin/audit/verify');
      expect(ok.body).toMatchObject({ ok: true, first_bad: null });
      const { db } = t.vault.store;
      const victim = await db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '=', 3)
        .executeTakeFirstOrThrow();
      await db.updateTable('audit_events').set({ reason: 'edited' }).where('seq', '=', 3).execute();
      const failed = await call('POST', '/v1/admin/audit/verify');
      expect(failed.status).toBe(200);
      expect(failed.body).toMatchObject({
        ok: false,
        checked: 2,
        first_bad: { seq: 3, id: victim.id, problem: 'altered' },
      });
      await db.updateTable('audit_events').set({ reason: victim.reason }).where('seq', '=', 3).execute();
      expect((await call('POST', '/v1/admin/audit/verify')).body).toMatchObject({ ok: true });
    });
  });

  describe('fails closed when the audit log cannot be written', () => {
    beforeAll(async () => breakAuditWrites(t.vault.store.db, t.vault.store.dialect));
    afterAll(async () => restoreAuditWrites(t.vault.store.db, t.vault.store.dialect));

    it('answers 503 audit_unavailable instead of the response, and logs why', async () => {
      const response = await call('POST', '/v1/admin/credentials', {
        body: { name: 'during-outage', type: 'api_key', secret: { api_key: 'k' } },
      });
      expect(response.status).toBe(503);
      expect(response.body).toEqual({
        error: {
          code: 'audit_unavailable',
          message: expect.stringMatching(/audit log/),
          request_id: response.requestId,
        },
      });
      expect(response.text).not.toContain('secret_fields');
      expect(response.text).not.toContain('during-outage');
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(t.logs()).toContain('audit disk full');
      expect(await eventsOf(response.requestId)).toEqual([]);
      // The change and its record commit together: without the record, there is no credential.
      expect((await call('GET', '/v1/admin/credentials/during-outage')).status).toBe(404);
    });

    it('also for a refusal and for a failed admin authentication', async () => {
      const refused = await call('DELETE', '/v1/admin/credentials/nope');
      expect(refused.status).toBe(503);
      expect(refused.text).not.toContain('credential_not_found');
      const unauthenticated = await call('GET', '/v1/admin/credentials', {
        token: 'tv_admin_bogus-bogus-bogus',
      });
      expect(unauthenticated.status).toBe(503);
      expect(unauthenticated.text).toContain('audit_unavailable');
    });

    it('still serves routes that record nothing, and can still verify the log', async () => {
      expect((await call('GET', '/v1/admin/credentials')).status).toBe(200);
      expect((await call('POST', '/v1/admin/audit/verify')).body).toMatchObject({ ok: true });
    });
  });

  it('writes again once the store accepts writes, in the same valid chain', async () => {
    const response = await call('POST', '/v1/admin/tokens', { body: { name: 'after-outage' } });
    expect(response.status).toBe(201);
    expect(await onlyEventOf(response.requestId)).toMatchObject({
      action: 'admin_token.create',
      decision: 'allow',
    });
    expect(await t.vault.services.auditLog.verify()).toMatchObject({ ok: true });
  });
};
