import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProviderCatalog } from '../../src/oauth/provider-catalog.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

interface Item {
  name: string;
  display_name: string;
  rotation: string;
  single_use_refresh_tokens: boolean;
  assumed_lifetime_seconds: number | null;
  api_base_url: string | null;
  pkce: string;
  parameters: string[];
}

/** `GET /v1/admin/oauth/providers` and `tokenvault oauth providers` over a real vault. */
describe('the provider catalog over the admin API and the CLI', () => {
  let t: TestVault;
  let url: string;
  const catalog = loadProviderCatalog();

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('lists every catalog entry with its PKCE, rotation, assumed lifetime and API base URL', async () => {
    const response = await t.request('GET', '/v1/admin/oauth/providers');
    expect(response.status).toBe(200);
    const items = (response.body as { items: Item[] }).items;
    expect(items.map((i) => i.name)).toEqual(catalog.list().map((e) => e.name));
    expect(items.find((i) => i.name === 'slack')).toMatchObject({
      display_name: 'Slack (OAuth v2)',
      rotation: 'always',
      single_use_refresh_tokens: true,
      assumed_lifetime_seconds: 43200,
      api_base_url: 'https://slack.com/api',
      pkce: 'none',
    });
    expect(items.find((i) => i.name === 'microsoft')?.parameters).toEqual(['tenant']);
    expect(items.find((i) => i.name === 'generic')?.api_base_url).toBeNull();
  });

  it('needs an admin token, records the failed authentication, and records nothing for a read', async () => {
    const before = (await t.vault.services.auditLog.list({ limit: 1000 })).items.length;
    expect((await t.request('GET', '/v1/admin/oauth/providers')).status).toBe(200);
    expect((await t.vault.services.auditLog.list({ limit: 1000 })).items.length).toBe(before);

    const refused = await t.request('GET', '/v1/admin/oauth/providers', { token: null });
    expect(refused.status).toBe(401);
    const events = (
      await t.vault.services.auditLog.list({ limit: 10, action: 'admin.authenticate', order: 'desc' })
    ).items;
    expect(events[0]).toMatchObject({ decision: 'deny', reason: 'unauthenticated' });
  });

  it('is in the OpenAPI document', async () => {
    const spec = (await t.request('GET', '/docs/json')).body as { paths: Record<string, unknown> };
    expect(spec.paths['/v1/admin/oauth/providers']).toBeDefined();
  });

  it('`tokenvault oauth providers` prints a table, and the same items with --json', async () => {
    const env = cleanEnv({ TOKENVAULT_TOKEN: t.rootToken });
    const text = await runCli(['oauth', 'providers', '--addr', url], { cwd: t.dataDir, env });
    expect(text.code).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^NAME\s+PROVIDER\s+SETTINGS\s+PKCE\s+REFRESH\s+ASSUMED LIFETIME\s+API BASE URL$/,
    );
    expect(lines.find((l) => l.startsWith('slack '))).toMatch(
      /rotating, single-use\s+12h\s+https:\/\/slack\.com\/api/,
    );
    expect(lines.find((l) => l.startsWith('github '))).toMatch(
      /never expires\s+-\s+https:\/\/api\.github\.com/,
    );
    expect(lines.find((l) => l.startsWith('zendesk '))).toMatch(/subdomain\s+supported\s+may rotate\s+1d/);

    const json = await runCli(['oauth', 'providers', '--json', '--addr', url], { cwd: t.dataDir, env });
    expect(json.code).toBe(0);
    const items = JSON.parse(json.stdout) as Item[];
    expect(items).toEqual(
      ((await t.request('GET', '/v1/admin/oauth/providers')).body as { items: Item[] }).items,
    );
  });
});
