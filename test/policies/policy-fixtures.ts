import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { TestVault } from '../helpers/vault.js';

/** Shared by the policy suites: the admin API for policies, and an agent's retrieval from an address. */

export const seedPolicy = (file: string): string =>
  readFileSync(new URL(`../../docs/policies/${file}`, import.meta.url), 'utf8');

export const createPolicy = async (t: TestVault, document: string) => {
  const response = await t.request('POST', '/v1/admin/policies', { body: { document } });
  expect(response.status, response.text).toBe(201);
  return response.body as { id: string; name: string; version: number };
};

export const attach = async (t: TestVault, name: string, kind: string, target: string) => {
  const response = await t.request('POST', `/v1/admin/policies/${name}/attach`, { body: { kind, target } });
  expect(response.status, response.text).toBe(200);
  return response.body as { attachment: { id: string }; already_attached: boolean };
};

export const detach = async (t: TestVault, name: string, kind: string, target: string) => {
  const response = await t.request('POST', `/v1/admin/policies/${name}/detach`, { body: { kind, target } });
  expect(response.status, response.text).toBe(200);
  return response.body as { detached: boolean };
};

/** An agent's retrieval as it arrives from `ip` (the socket peer; no trusted proxy in between). */
export const retrieveFrom = async (
  t: TestVault,
  agent: { apiKey: string; name: string },
  service: string,
  ip = '127.0.0.1',
) => {
  const response = await t.vault.app.inject({
    method: 'GET',
    url: `/v1/agents/${agent.name}/credentials/${service}`,
    headers: { authorization: `Bearer ${agent.apiKey}` },
    remoteAddress: ip,
  });
  const body = JSON.parse(response.body) as { error?: { code: string; message: string } };
  return { status: response.statusCode, body, headers: response.headers };
};
