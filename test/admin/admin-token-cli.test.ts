import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/** `tokenvault admin token create --role … / list` as a person runs them (real processes, real HTTP). */
describe('admin token CLI', () => {
  let t: TestVault;
  let url: string;

  const cli = (args: string[], token = t.rootToken) =>
    runCli([...args, '--addr', url], { cwd: t.dataDir, env: cleanEnv({ TOKENVAULT_TOKEN: token }) });

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
  });
  afterAll(() => t?.stop());

  it('creates a token of the role asked for, and lists every token with its role', async () => {
    const created = await cli([
      'admin',
      'token',
      'create',
      'ci',
      '--role',
      'auditor',
      '--ttl',
      '1h',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const token = JSON.parse(created.stdout) as { token: string; role: string; expires_at: string };
    expect(token.role).toBe('auditor');

    const list = await cli(['admin', 'token', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/\bROLE\b/);
    expect(list.stdout).toMatch(/\bci\s+auditor\b/);
    expect(list.stdout).toMatch(/\broot\s+admin\s+yes\b/);

    // The auditor token reads, and is refused a token of its own, by role.
    expect((await cli(['admin', 'token', 'list'], token.token)).code).toBe(0);
    const refused = await cli(['admin', 'token', 'create', 'more', '--role', 'auditor'], token.token);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('forbidden_role');
    expect(refused.stderr).toContain('needs role admin');
  });

  it('needs a role, and one that exists', async () => {
    const missing = await cli(['admin', 'token', 'create', 'no-role']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--role');
    const unknown = await cli(['admin', 'token', 'create', 'bad-role', '--role', 'superuser']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('admin, operator, approver, auditor');
  });
});
