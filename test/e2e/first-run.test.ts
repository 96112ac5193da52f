import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binPath, cleanEnv, runCli } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startKms, type TestKms, webhookSettings } from '../keys/key-fixtures.js';

/**
 * What a new user stumbled on in a first run (issue 12), each through the real CLI against a real
 * vault: the mistakes a person makes on day one get a message that says what to do, and no way of
 * adding a credential hands an agent more than its access token.
 */

const refreshToken = '1//0refresh-token-first-run';
const accessToken = 'ya29.first-run-access';
const tokenResponse = JSON.stringify({
  access_token: accessToken,
  refresh_token: refreshToken,
  token_type: 'Bearer',
});

describe('first run: the CLI against a listening vault', () => {
  let t: TestVault;
  let url: string;
  let dir: TempDataDir;
  let agentKey: string;

  const cli = (args: string[], input?: string) =>
    runCli([...args, '--addr', url], {
      cwd: dir.dir,
      env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }),
      input,
    });
  const retrieve = async (service: string) => {
    const response = await fetch(`${url}/v1/agents/agent-42/credentials/${service}`, {
      headers: { authorization: `Bearer ${agentKey}` },
    });
    return { status: response.status, text: await response.text() };
  };

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
    dir = await createTempDataDir();
    const created = await cli(['agent', 'create', 'agent-42', '--json']);
    agentKey = (JSON.parse(created.stdout) as { api_key: string }).api_key;
  });
  afterAll(async () => {
    await t?.stop();
    await dir?.cleanup();
  });

  describe('an oauth2 token response never hands its refresh token to an agent', () => {
    it('takes a JSON token response on stdin field by field, without --secret-json', async () => {
      const added = await cli(
        ['credential', 'add', 'gcal', '--type', 'oauth2', '--secret-stdin', '--json'],
        `${tokenResponse}\n`,
      );
      expect(added.code, added.stderr).toBe(0);
      expect(JSON.parse(added.stdout)).toMatchObject({
        secret_fields: ['access_token', 'refresh_token', 'token_type'],
      });
      expect(
        (
          await cli([
            'grant',
            'create',
            '--agent',
            'agent-42',
            '--credential',
            'gcal',
            '--ttl',
            '1h',
            '--reveal',
          ])
        ).code,
      ).toBe(0);
      const got = await retrieve('gcal');
      expect(got.status).toBe(200);
      expect(JSON.parse(got.text)).toMatchObject({ access_token: accessToken, token_type: 'Bearer' });
      expect(got.text).not.toContain(refreshToken);
    });

    it('does the same for a token response in --secret-file, and for an update', async () => {
      writeFileSync(join(dir.dir, 'token.json'), tokenResponse, { mode: 0o600 });
      const added = await cli([
        'credential',
        'add',
        'gcal-file',
        '--type',
        'oauth2',
        '--secret-file',
        join(dir.dir, 'token.json'),
        '--json',
      ]);
      expect(added.code, added.stderr).toBe(0);
      expect(JSON.parse(added.stdout)).toMatchObject({
        secret_fields: ['access_token', 'refresh_token', 'token_type'],
      });
      const updated = await cli(['credential', 'update', 'gcal', '--secret-stdin', '--json'], tokenResponse);
      expect(updated.code, updated.stderr).toBe(0);
      expect(JSON.parse(updated.stdout)).toMatchObject({
        version: 2,
        secret_fields: ['access_token', 'refresh_token', 'token_type'],
      });
      expect((await retrieve('gcal')).text).not.toContain(refreshToken);
    });

    it('takes a token response’s expires_in and scope as the credential’s expiry and scopes', async () => {
      const before = Date.now();
      const added = await cli(
        ['credential', 'add', 'gcal-full', '--type', 'oauth2', '--secret-stdin', '--json'],
        JSON.stringify({
          access_token: accessToken,
          expires_in: 3599,
          refresh_token: refreshToken,
          scope: 'calendar.readonly calendar.events',
          token_type: 'Bearer',
        }),
      );
      expect(added.code, added.stderr).toBe(0);
      const created = JSON.parse(added.stdout) as {
        secret_fields: string[];
        scopes: string[];
        expires_at: string;
      };
      expect(created.secret_fields).toEqual(['access_token', 'refresh_token', 'token_type']);
      expect(created.scopes).toEqual(['calendar.readonly', 'calendar.events']);
      expect(Date.parse(created.expires_at)).toBeGreaterThanOrEqual(before + 3_598_000);
      expect(Date.parse(created.expires_at)).toBeLessThanOrEqual(Date.now() + 3_600_000);
    });

    it('is refused by the admin API when the access token is itself a JSON object', async () => {
      for (const [method, path, body] of [
        [
          'POST',
          '/v1/admin/credentials',
          { name: 'gcal-raw', type: 'oauth2', secret: { access_token: tokenResponse } },
        ],
        ['PATCH', '/v1/admin/credentials/gcal', { secret: { access_token: ` ${tokenResponse}` } }],
      ] as const) {
        const response = await t.request(method, path, { body });
        expect(response.status, `${method} ${path}`).toBe(400);
        expect(response.body).toMatchObject({ error: { code: 'invalid_secret' } });
        expect(response.text).not.toContain(refreshToken);
      }
      // A plain access token is stored as it is.
      const plain = await t.request('POST', '/v1/admin/credentials', {
        body: { name: 'gcal-plain', type: 'oauth2', secret: { access_token: accessToken } },
      });
      expect(plain.status).toBe(201);
    });
  });

  it('names a typo in --type first, with the list of types, before reading any secret', async () => {
    const typo = await cli(['credential', 'add', 'x', '--type', 'api_ky', '--secret-stdin'], 'not-json');
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe(
      'error: unknown --type "api_ky"; use one of api_key, bearer, basic, oauth2, custom\n',
    );
  });

  it('prints a clear error for a --secret-file that does not exist', async () => {
    const missing = join(dir.dir, 'no-such-file.txt');
    const result = await cli(['credential', 'add', 'gh', '--type', 'bearer', '--secret-file', missing]);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`error: cannot read --secret-file "${missing}": no such file\n`);
  });

  it('refuses an --expires-at in the past, locally', async () => {
    const result = await cli(
      [
        'credential',
        'add',
        'old',
        '--type',
        'api_key',
        '--secret-stdin',
        '--expires-at',
        '2020-01-01T00:00:00Z',
      ],
      'k',
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^error: --expires-at 2020-01-01T00:00:00Z is in the past/);
    expect((await cli(['credential', 'show', 'old'])).code).toBe(1);
    const update = await cli(['credential', 'update', 'gcal', '--expires-at', '2001-01-01T00:00:00Z']);
    expect(update.code).toBe(2);
  });

  it('sends a custom credential’s secret, not its client_id, by default', async () => {
    const added = await cli(
      ['credential', 'add', 'partner-api', '--type', 'custom', '--secret-stdin', '--json'],
      '{"client_id":"abc","client_secret":"s3cr3t-first-run"}',
    );
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({
      injection: { in: 'header', name: 'Authorization', template: 'Bearer {{client_secret}}' },
    });
    await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'partner-api',
      '--ttl',
      '1h',
      '--reveal',
    ]);
    expect(JSON.parse((await retrieve('partner-api')).text)).toMatchObject({
      access_token: 's3cr3t-first-run',
      token_type: 'Bearer',
    });
    // Several fields, none named like a secret: no guess, the operator says which one.
    const unclear = await cli(
      ['credential', 'add', 'unclear', '--type', 'custom', '--secret-stdin'],
      '{"client_id":"abc","region":"eu"}',
    );
    expect(unclear.code).toBe(1);
    expect(unclear.stderr).toMatch(/no default injection.*\(invalid_injection/);
  });

  it('names --until-revoked in TTL errors', async () => {
    for (const ttl of ['90d', '10m', 'forever']) {
      const result = await cli([
        'grant',
        'create',
        '--agent',
        'agent-42',
        '--credential',
        'gcal',
        '--ttl',
        ttl,
      ]);
      expect(result.code, ttl).toBe(2);
      expect(result.stderr, ttl).toContain('--until-revoked');
      expect(result.stderr, ttl).not.toMatch(/use until revoked/);
    }
    const importing = await cli(
      ['grant', 'import', '-', '--ttl', '31d'],
      '{"agent_id":"agent-42","allowed_credentials":["gcal"]}',
    );
    expect(importing.code).toBe(2);
    expect(importing.stderr).toContain('--until-revoked');
  });

  it('keeps the code and the request id out of a --json error’s message', async () => {
    const result = await cli(['credential', 'show', 'nope', '--json']);
    expect(result.code).toBe(1);
    const { error } = JSON.parse(result.stderr) as {
      error: { code: string; message: string; status: number; request_id: string };
    };
    expect(error).toMatchObject({ code: 'credential_not_found', status: 404 });
    expect(error.request_id).toMatch(/^req_/);
    expect(error.message).toBe('No credential named "nope" in namespace "default".');
    // Without --json the one line still carries both, for people.
    const text = await cli(['credential', 'show', 'nope']);
    expect(text.stderr).toMatch(/ \(credential_not_found, request req_\S+\)\n$/);
  });
});

describe('first run: mode set platform', () => {
  let kms: TestKms;
  let t: TestVault;
  let dir: TempDataDir;

  beforeAll(async () => {
    kms = await startKms();
    t = await startTestVault({ settings: webhookSettings(kms) });
    dir = await createTempDataDir();
    for (const name of ['a', 'b', 'c']) {
      await t.request('POST', '/v1/admin/credentials', {
        body: { name, type: 'api_key', secret: { api_key: `key-${name}` } },
      });
    }
  });
  afterAll(async () => {
    await t?.stop();
    await kms?.stop();
    await dir?.cleanup();
  });

  it('tells the operator to back up the new master key, and prints progress once into a pipe', async () => {
    const url = await t.vault.listen();
    const result = await runCli(['mode', 'set', 'platform', '--addr', url], {
      cwd: dir.dir,
      env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }),
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('The vault is now in platform mode.');
    expect(result.stderr).toContain('Back up the platform master key now');
    expect(result.stderr).toContain('<data-dir>/master.key');
    expect(existsSync(join(t.dataDir, 'master.key'))).toBe(true);
    // Standard error is a pipe here: one progress line, not a bar drawn again and again.
    // "Re-wrap … started" and "re-wrapped 4/4": three credentials' data keys and the audit chain key.
    expect(result.stderr.match(/re-wrap/gi)).toHaveLength(2);
    expect(result.stderr).toContain('re-wrapped 4/4 data key(s)\n');
  });
});

const exitOf = (child: ReturnType<typeof spawn>, timeoutMs: number) =>
  new Promise<number | null | 'timeout'>((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('timeout');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });

const spawnServe = (args: string[], cwd: string) => {
  const child = spawn(process.execPath, [binPath, 'serve', ...args], { cwd, env: cleanEnv() });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
  return { child, out };
};

describe('first run: tokenvault serve', () => {
  let dir: TempDataDir;
  let blocker: Server | undefined;

  beforeAll(async () => {
    dir = await createTempDataDir();
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    await dir?.cleanup();
  });

  it('exits non-zero with the reason when its port is taken, after closing the store', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    const { child, out } = spawnServe(['--port', String(port)], dir.dir);
    expect(await exitOf(child, 20_000)).toBe(1);
    expect(out.stderr).toContain(
      `error: cannot listen on 127.0.0.1:${port}: the port is already in use (another vault or program?)`,
    );
    // The store was created and then closed: SQLite folds its WAL back in and removes it on close.
    const storeDir = join(dir.dir, '.tokenvault');
    expect(existsSync(join(storeDir, 'tokenvault.db'))).toBe(true);
    expect(readdirSync(storeDir).filter((f) => f.endsWith('-wal') || f.endsWith('-shm'))).toEqual([]);
  });

  it('reports a short --master-key with every other problem, before anything touches the disk', async () => {
    const empty = join(dir.dir, 'empty');
    const { child, out } = spawnServe(
      ['--data-dir', empty, '--master-key', 'short', '--body-limit', 'abc', '--port', '0'],
      dir.dir,
    );
    expect(await exitOf(child, 20_000)).toBe(2);
    expect(out.stderr).toContain('--master-key must be exactly 32 bytes');
    expect(out.stderr).toContain('--body-limit must be a whole number');
    expect(out.stderr).not.toContain('short');
    expect(existsSync(empty)).toBe(false);
  });

  it('prints the README’s two human lines on stderr, and only JSON log lines on stdout', async () => {
    const fresh = await createTempDataDir();
    try {
      const { child, out } = spawnServe(['--port', '0'], fresh.dir);
      const exited = exitOf(child, 30_000);
      for (let waited = 0; !out.stderr.includes('listening on') && waited < 20_000; waited += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const stderr = out.stderr.split('\n').filter((line) => line !== '');
      const storeDir = join(fresh.dir, '.tokenvault');
      expect(stderr).toEqual([
        `Root admin token written to ${join(storeDir, 'admin-token')} (mode 0600). The CLI on this machine uses it.`,
        expect.stringMatching(
          new RegExp(
            `^Token Vault \\(SQLite: ${join(storeDir, 'tokenvault.db')}\\) listening on http://127\\.0\\.0\\.1:\\d+$`,
          ),
        ),
        'SIGTERM received: finishing requests in flight, then stopping',
      ]);
      const logLines = out.stdout.split('\n').filter((line) => line !== '');
      expect(logLines.length).toBeGreaterThan(0);
      for (const line of logLines) expect(() => JSON.parse(line), line).not.toThrow();
    } finally {
      await fresh.cleanup();
    }
  });
});
