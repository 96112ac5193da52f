import { PassThrough, Readable } from 'node:stream';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli-main.js';
import { hashToken } from '../../src/lib/token-hash.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/** Issue 16 item 1: `tokenvault proxy …` and `proxy key …` against a listening vault, in-process. */
describe('tokenvault proxy and proxy key commands', () => {
  let t: TestVault;
  let addr: string;

  beforeAll(async () => {
    t = await startTestVault();
    addr = await t.vault.listen();
    expect((await cli(['agent', 'create', 'agent-42'])).code).toBe(0);
  });

  afterAll(async () => {
    await t?.stop();
  });

  const cli = async (args: string[]) => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await runCli(['node', 'tokenvault', ...args], {
      stdout,
      stderr,
      stdin: Readable.from(['']),
      env: { TOKENVAULT_ADDR: addr, TOKENVAULT_TOKEN: t.rootToken },
    });
    process.exitCode = undefined;
    return { code, stdout: out, stderr: err };
  };
  const json = async <T = Record<string, unknown>>(args: string[]): Promise<T> => {
    const run = await cli([...args, '--json']);
    expect(run.code, run.stderr).toBe(0);
    return JSON.parse(run.stdout) as T;
  };
  const errorCode = async (args: string[]) => {
    const run = await cli([...args, '--json']);
    expect(run.code).not.toBe(0);
    return (JSON.parse(run.stderr) as { error: { code: string } }).error.code;
  };
  const events = async (action: string) =>
    (
      (await t.request('GET', `/v1/admin/audit/events?limit=100&action=${action}`)).body as {
        items: { decision: string; reason: string; details: Record<string, unknown> }[];
      }
    ).items;

  it('creates an HTTP proxy with a header template, and shows and lists it', async () => {
    const created = await json([
      'proxy',
      'create',
      'github',
      '--url',
      'https://mcp.example.com/mcp',
      '--credential',
      'github',
      '--inject-header',
      'Authorization: Bearer {{access_token}}',
      '--deny-tool',
      'delete_*',
    ]);
    expect(created).toMatchObject({
      name: 'github',
      transport: 'streamable-http',
      url: 'https://mcp.example.com/mcp',
      credential: 'github',
      per_user: false,
      injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
      deny_tools: ['delete_*'],
    });
    expect(await json(['proxy', 'show', 'github'])).toEqual(created);
    const listed = await json<unknown[]>(['proxy', 'list']);
    expect(listed).toEqual([created]);
    const text = await cli(['proxy', 'show', 'github']);
    expect(text.stdout).toContain('Authorization: Bearer {{access_token}}');
    const [event] = await events('mcp_proxy.create');
    expect(event).toMatchObject({
      decision: 'allow',
      details: { proxy_name: 'github', transport: 'streamable-http' },
    });
  });

  it('creates a stdio proxy with a fixed command, arguments and an injected variable', async () => {
    const created = await json([
      'proxy',
      'create',
      'everything',
      '--command',
      'node',
      '--arg',
      'server.js',
      '--arg',
      'stdio',
      '--cwd',
      '/tmp',
      '--credential',
      'github',
      '--inject-env',
      'GITHUB_TOKEN={{access_token}}',
    ]);
    expect(created).toMatchObject({
      transport: 'stdio',
      command: 'node',
      args: ['server.js', 'stdio'],
      cwd: '/tmp',
    });
  });

  it('refuses a CR/LF in a header template, a hop-by-hop header and a bad upstream, each audited', async () => {
    const crlf = [
      '--url',
      'https://x.example/mcp',
      '--credential',
      'c',
      '--inject-header',
      'X-Key: {{token}}\r\nX-Evil: 1',
    ];
    expect(await errorCode(['proxy', 'create', 'bad', ...crlf])).toBe('invalid_injection');
    const hop = [
      '--url',
      'https://x.example/mcp',
      '--credential',
      'c',
      '--inject-header',
      'Connection: {{token}}',
    ];
    expect(await errorCode(['proxy', 'create', 'bad', ...hop])).toBe('invalid_injection');
    const both = [
      '--url',
      'https://x.example/mcp',
      '--command',
      'node',
      '--credential',
      'c',
      '--inject-env',
      'A={{t}}',
    ];
    expect(await errorCode(['proxy', 'create', 'bad', ...both])).toBe('invalid_mcp_proxy');
    const taken = [
      '--url',
      'https://x.example/mcp',
      '--credential',
      'c',
      '--inject-header',
      'X-Key: {{token}}',
    ];
    expect(await errorCode(['proxy', 'create', 'github', ...taken])).toBe('mcp_proxy_exists');
    const refused = (await events('mcp_proxy.create'))
      .filter((e) => e.decision === 'deny')
      .map((e) => e.reason);
    expect(refused.sort()).toEqual([
      'invalid_injection',
      'invalid_injection',
      'invalid_mcp_proxy',
      'mcp_proxy_exists',
    ]);
    expect(await errorCode(['proxy', 'show', 'nope'])).toBe('mcp_proxy_not_found');
  });

  it('updates what is given and keeps the rest', async () => {
    const updated = await json([
      'proxy',
      'update',
      'github',
      '--allow-tool',
      'get_*',
      '--description',
      'GitHub',
    ]);
    expect(updated).toMatchObject({
      url: 'https://mcp.example.com/mcp',
      allow_tools: ['get_*'],
      deny_tools: ['delete_*'],
      description: 'GitHub',
    });
    const [event] = await events('mcp_proxy.update');
    expect(event?.details.fields).toEqual(['allowTools', 'description']);
  });

  it('creates a tv_proxy_ key for an agent, shown once and stored only as its hash', async () => {
    const created = await json(['proxy', 'key', 'create', 'github', '--agent', 'agent-42', '--ttl', '30d']);
    expect(Object.keys(created).slice(0, 2)).toEqual(['id', 'key']);
    expect(created).toMatchObject({ agent_name: 'agent-42', user: null, status: 'active' });
    const key = created.key as string;
    expect(key).toMatch(/^tv_proxy_[A-Za-z0-9_-]{43}$/);
    const rows = await t.vault.store.db.selectFrom('mcp_proxy_keys').selectAll().execute();
    expect(rows.map((r) => r.key_hash)).toContain(hashToken(key));
    expect(JSON.stringify(rows)).not.toContain(key);
    const listed = await json<Record<string, unknown>[]>(['proxy', 'key', 'list', 'github']);
    expect(listed).toHaveLength(1);
    expect(JSON.stringify(listed)).not.toContain(key);
    const [event] = await events('mcp_proxy.key.create');
    expect(event).toMatchObject({
      details: { agent_name: 'agent-42', proxy_name: 'github', key_id: created.id },
    });
  });

  it('refuses a user on a proxy that is not per-user, and asks for one on a per-user proxy', async () => {
    expect(
      await errorCode(['proxy', 'key', 'create', 'github', '--agent', 'agent-42', '--user', 'ann']),
    ).toBe('invalid_request');
    await json([
      'proxy',
      'create',
      'calendar',
      '--url',
      'https://cal.example/mcp',
      '--credential',
      'google',
      '--per-user',
      '--inject-header',
      'Authorization: Bearer {{access_token}}',
    ]);
    expect(await errorCode(['proxy', 'key', 'create', 'calendar', '--agent', 'agent-42'])).toBe(
      'invalid_request',
    );
    const key = await json([
      'proxy',
      'key',
      'create',
      'calendar',
      '--agent',
      'agent-42',
      '--user',
      'ann@example.com',
    ]);
    expect(key.user).toBe('ann@example.com');
    expect(await errorCode(['proxy', 'key', 'create', 'calendar', '--agent', 'nobody', '--user', 'x'])).toBe(
      'agent_not_found',
    );
  });

  it('revokes a key (moving the access generation, so every replica sees it next request), twice is a no-op', async () => {
    const created = await json(['proxy', 'key', 'create', 'github', '--agent', 'agent-42']);
    const generation = async () =>
      Number(
        (
          await sql<{ value: number }>`select value from access_generation where id = 1`.execute(
            t.vault.store.db,
          )
        ).rows[0]?.value,
      );
    const before = await generation();
    const revoked = await json(['proxy', 'key', 'revoke', 'github', created.id as string]);
    expect(revoked).toMatchObject({ id: created.id, status: 'revoked' });
    expect(await generation()).toBeGreaterThan(before);
    const scope = await sql<{
      generation: number;
    }>`select generation from access_changes where scope = 'n:default'`.execute(t.vault.store.db);
    expect(Number(scope.rows[0]?.generation)).toBeGreaterThan(before);
    const again = await generation();
    await json(['proxy', 'key', 'revoke', 'github', created.id as string]);
    expect(await generation()).toBe(again);
    expect((await events('mcp_proxy.key.revoke')).filter((e) => e.decision === 'allow')).toHaveLength(1);
    expect(await errorCode(['proxy', 'key', 'revoke', 'github', 'no-such-key'])).toBe('proxy_key_not_found');
  });

  it('prints each client’s configuration with the proxy URL and the key header', async () => {
    const url = `${addr}/mcp/github`;
    for (const client of ['claude', 'cursor', 'generic']) {
      const run = await cli(['proxy', 'config', 'github', '--client', client, '--key', 'tv_proxy_example']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(url);
      expect(run.stdout).toContain('Bearer tv_proxy_example');
    }
    const vscode = await json(['proxy', 'config', 'github', '--client', 'vscode']);
    const config = JSON.parse(vscode.config as string) as {
      servers: Record<string, { url: string; headers: Record<string, string> }>;
    };
    expect(config.servers['tokenvault-github']).toEqual({
      type: 'http',
      url,
      headers: { Authorization: 'Bearer ${input:tokenvault-github-key}' },
    });
    const legacy = await json(['proxy', 'config', 'github', '--client', 'sse', '--key', 'tv_proxy_example']);
    expect(legacy.url).toBe(`${url}/sse`);
    expect(JSON.parse(legacy.config as string)).toEqual({
      url: `${url}/sse`,
      transport: 'sse',
      headers: { Authorization: 'Bearer tv_proxy_example' },
    });
    expect((await cli(['proxy', 'config', 'github', '--client', 'emacs'])).code).toBe(2);
  });

  it('removes an agent’s proxy keys with the agent, and counts them in its audit event', async () => {
    expect((await cli(['agent', 'create', 'agent-short-lived'])).code).toBe(0);
    const created = await json(['proxy', 'key', 'create', 'github', '--agent', 'agent-short-lived']);
    expect((await cli(['agent', 'rm', 'agent-short-lived'])).code).toBe(0);
    const rows = await t.vault.store.db.selectFrom('mcp_proxy_keys').select('id').execute();
    expect(rows.map((r) => r.id)).not.toContain(created.id);
    expect((await events('agent.delete'))[0]).toMatchObject({ details: { proxy_keys_deleted: 1 } });
  });

  it('removes a proxy with its keys', async () => {
    const removed = await json(['proxy', 'rm', 'calendar']);
    expect(removed.name).toBe('calendar');
    const rows = await t.vault.store.db.selectFrom('mcp_proxy_keys').select('proxy_id').execute();
    expect(rows.map((r) => r.proxy_id)).not.toContain(removed.id);
    expect((await events('mcp_proxy.delete'))[0]).toMatchObject({ details: { keys_deleted: 1 } });
  });
});
