import { sql } from 'kysely';
import { expect } from 'vitest';
import type { ErrorBody } from '../../src/http/error-handler.js';
import type { TestVault } from '../helpers/vault.js';

/** Shared by the grant and retrieval suites: set-up through the admin API, and the audit trail. */

export const errorOf = (body: unknown) => (body as ErrorBody).error;

const ns = (namespace: string | undefined): Record<string, string> =>
  namespace === undefined ? {} : { 'x-tokenvault-namespace': namespace };

export const addCredential = async (
  t: TestVault,
  body: {
    name: string;
    type: string;
    secret: Record<string, string>;
    scopes?: string[];
    expires_at?: string;
  },
  namespace?: string,
) => {
  const response = await t.request('POST', '/v1/admin/credentials', { body, headers: ns(namespace) });
  expect(response.status, response.text).toBe(201);
  return response.body as { id: string; name: string };
};

export interface TestAgent {
  id: string;
  name: string;
  apiKey: string;
}

export const addAgent = async (t: TestVault, name: string, namespace?: string): Promise<TestAgent> => {
  const response = await t.request('POST', '/v1/admin/agents', { body: { name }, headers: ns(namespace) });
  expect(response.status, response.text).toBe(201);
  const body = response.body as { id: string; name: string; api_key: string };
  return { id: body.id, name: body.name, apiKey: body.api_key };
};

export interface GrantBody {
  agent: string;
  credential: string;
  scopes?: string[];
  ttl?: string;
  until_revoked?: boolean;
  reveal?: boolean;
  /** The end user whose credential of that name (per-user credentials). */
  user?: string;
}

export const grant = async (t: TestVault, body: GrantBody, namespace?: string) => {
  const response = await t.request('POST', '/v1/admin/grants', { body, headers: ns(namespace) });
  expect(response.status, response.text).toBe(201);
  return response.body as {
    id: string;
    scopes: string[];
    expires_at: string | null;
    replaced_grant_ids: string[];
  };
};

/** The seed contract's request, as an agent sends it. */
export const retrieve = (
  t: TestVault,
  agent: { apiKey: string } | { token: string | null },
  path: { agent: string; service: string; query?: string },
  headers: Record<string, string> = {},
) =>
  t.request(
    'GET',
    `/v1/agents/${encodeURIComponent(path.agent)}/credentials/${encodeURIComponent(path.service)}${path.query ?? ''}`,
    {
      token: 'apiKey' in agent ? agent.apiKey : agent.token,
      headers,
    },
  );

export interface AuditRow {
  action: string;
  actor_type: string;
  actor_id: string | null;
  target_type: string | null;
  target_id: string | null;
  decision: string;
  reason: string | null;
  client_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  namespace: string;
  details: Record<string, unknown>;
}

/** Every audit event a request left (by its request id), oldest first. */
export const auditEventsOf = async (t: TestVault, requestId: string): Promise<AuditRow[]> => {
  const rows = await t.vault.store.db
    .selectFrom('audit_events')
    .selectAll()
    .where('request_id', '=', requestId)
    .orderBy('seq')
    .execute();
  return rows.map((row) => ({ ...row, details: JSON.parse(row.details) as Record<string, unknown> }));
};

export const requestIdOf = (response: { headers: Record<string, unknown> }) =>
  String(response.headers['x-request-id']);

/** The one event a request left; fails when it left none or several. */
export const onlyAuditEventOf = async (t: TestVault, response: { headers: Record<string, unknown> }) => {
  const events = await auditEventsOf(t, requestIdOf(response));
  expect(events, JSON.stringify(events)).toHaveLength(1);
  return events[0] as AuditRow;
};

/**
 * Makes every audit append fail at the database, on either dialect: a real failure of the real writer,
 * not a fake. Returns the undo.
 */
export const breakAuditWrites = async (t: TestVault): Promise<() => Promise<void>> => {
  const db = t.vault.store.db;
  if (t.vault.store.dialect === 'sqlite') {
    await sql`CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit disk full'); END`.execute(
      db,
    );
    return async () => {
      await sql`DROP TRIGGER audit_broken`.execute(db);
    };
  }
  await sql`CREATE FUNCTION audit_broken() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit disk full'; END $$ LANGUAGE plpgsql`.execute(
    db,
  );
  await sql`CREATE TRIGGER audit_broken BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_broken()`.execute(
    db,
  );
  return async () => {
    await sql`DROP TRIGGER audit_broken ON audit_events`.execute(db);
    await sql`DROP FUNCTION audit_broken()`.execute(db);
  };
};
