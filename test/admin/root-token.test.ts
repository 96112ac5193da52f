import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createVault } from '../../src/main.js';
import { openStore } from '../../src/store/database.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/**
 * The root admin token reaches the operator before it becomes the only way in, and an operator who
 * lost it gets back in with `admin reset-root` (data dir + master key, server stopped).
 */
describe('root admin token', () => {
  const dirs: TempDataDir[] = [];
  const vaults: TestVault[] = [];
  const tempDir = async () => {
    const dir = await createTempDataDir();
    dirs.push(dir);
    return dir.dir;
  };
  const start = async (dataDir: string, settings: Record<string, string> = {}) => {
    const vault = await startTestVault({ dataDir, settings });
    vaults.push(vault);
    return vault;
  };
  afterEach(async () => {
    for (const vault of vaults.splice(0)) await vault.stop();
    for (const dir of dirs.splice(0)) await dir.cleanup();
  });

  const countAdminTokens = async (dataDir: string) => {
    const store = await openStore({ dataDir });
    try {
      const rows = await store.db.selectFrom('admin_tokens').select('id').execute();
      return rows.length;
    } finally {
      await store.close();
    }
  };

  it('commits no root token when its file cannot be written, and the next start makes one', async () => {
    const dataDir = await tempDir();
    // A directory where the token file goes: writing the file fails, as a full disk or a kill would.
    mkdirSync(join(dataDir, 'admin-token'));
    const config = loadConfig({ dataDir, port: '0', logLevel: 'silent' }, {});
    await expect(createVault(config, { logDestination: { write: () => {} } })).rejects.toThrow();
    expect(await countAdminTokens(dataDir)).toBe(0);

    rmdirSync(join(dataDir, 'admin-token'));
    const vault = await start(dataDir);
    expect((await vault.request('GET', '/v1/admin/tokens')).status).toBe(200);
    expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);
  });

  it('creates a missing data dir (0700) before the token file, on every path', async () => {
    const dataDir = join(await tempDir(), 'not', 'yet');
    const vault = await start(dataDir, { masterKey: randomBytes(32).toString('base64') });
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect((await vault.request('GET', '/v1/admin/tokens')).status).toBe(200);
  });

  it('admin reset-root revokes the lost root token and writes a new one, with the server stopped', async () => {
    const dataDir = await tempDir();
    const masterKey = randomBytes(32).toString('base64');
    const first = await start(dataDir, { masterKey });
    const lost = first.rootToken;
    await vaults.pop()!.stop();
    rmSync(join(dataDir, 'admin-token'));

    // Without the master key, or with another one, access to the data dir is not enough.
    const env = (key?: string) => cleanEnv(key ? { TOKENVAULT_MASTER_KEY: key } : {});
    const noKey = await runCli(['admin', 'reset-root', '--data-dir', dataDir], { cwd: dataDir, env: env() });
    expect(noKey.code, noKey.stderr).toBe(1);
    expect(noKey.stderr).toMatch(/master key/i);
    const wrongKey = await runCli(['admin', 'reset-root', '--data-dir', dataDir], {
      cwd: dataDir,
      env: env(randomBytes(32).toString('base64')),
    });
    expect(wrongKey.code, wrongKey.stderr).toBe(1);
    expect(wrongKey.stderr).toMatch(/does not open/);
    expect(existsSync(join(dataDir, 'admin-token'))).toBe(false);

    const reset = await runCli(['admin', 'reset-root', '--data-dir', dataDir, '--json'], {
      cwd: dataDir,
      env: env(masterKey),
    });
    expect(reset.code, reset.stderr).toBe(0);
    expect(JSON.parse(reset.stdout)).toEqual({ path: join(dataDir, 'admin-token'), revoked_root_tokens: 1 });
    expect(statSync(join(dataDir, 'admin-token')).mode & 0o777).toBe(0o600);

    const again = await start(dataDir, { masterKey });
    expect(again.rootToken).not.toBe(lost);
    expect((await again.request('GET', '/v1/admin/tokens')).status).toBe(200);
    const old = await again.request('GET', '/v1/admin/tokens', { token: lost });
    expect([old.status, (old.body as { error: { code: string } }).error.code]).toEqual([
      401,
      'admin_token_revoked',
    ]);
    const events = await again.request('GET', '/v1/admin/audit/events?action=admin_token.reset_root');
    expect((events.body as { items: unknown[] }).items).toHaveLength(1);
    const verify = await again.request('POST', '/v1/admin/audit/verify');
    expect((verify.body as { ok: boolean }).ok).toBe(true);
    expect(readFileSync(join(dataDir, 'admin-token'), 'utf8')).toMatch(/^tv_admin_/);
  });
});
