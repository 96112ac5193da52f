import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanEnv, runCli, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

const secret = 'xoxb-quickstart-secret-4711';

/**
 * The README's quick start, as a new user runs it: `serve` with no config in an empty directory, add a
 * credential from stdin, list it, stop with SIGTERM, start again, and it is still there.
 */
export const quickstartContract = (
  storeEnv: () => Promise<{ env: Record<string, string>; cleanup?: () => Promise<void> }>,
) => {
  let dir: TempDataDir;
  let env: NodeJS.ProcessEnv;
  let cleanup: (() => Promise<void>) | undefined;
  let server: ServerProcess | undefined;

  const cli = (args: string[], input?: string) =>
    runCli(args, { cwd: dir.dir, env: { ...env, TOKENVAULT_ADDR: server!.url }, input });

  beforeAll(async () => {
    dir = await createTempDataDir();
    const store = await storeEnv();
    env = cleanEnv(store.env);
    cleanup = store.cleanup;
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await cleanup?.();
    await dir.cleanup();
  });

  it('starts with zero config, creating the store, the key and a 0600 root admin token', async () => {
    server = await startServer([], { cwd: dir.dir, env });
    const tokenPath = join(dir.dir, '.tokenvault', 'admin-token');
    expect(server.output()).toContain(`Root admin token written to ${tokenPath}`);
    expect(statSync(tokenPath).mode & 0o777).toBe(0o600);
    expect(existsSync(join(dir.dir, '.tokenvault', 'master.key'))).toBe(true);
    expect(statSync(join(dir.dir, '.tokenvault', 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('adds a credential from stdin and lists it without its secret', async () => {
    const added = await cli(
      ['credential', 'add', 'slack', '--type', 'api_key', '--secret-stdin'],
      `${secret}\n`,
    );
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain('Stored credential "slack"');
    const listed = await cli(['credential', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+TYPE\s+STATUS/);
    expect(listed.stdout).toMatch(/\nslack\s+api_key\s+active\s+1/);
    const asJson = await cli(['credential', 'list', '--json']);
    expect(JSON.parse(asJson.stdout)).toEqual([
      expect.objectContaining({ name: 'slack', secret_fields: ['api_key'] }),
    ]);
    for (const output of [added, listed, asJson]) expect(output.stdout + output.stderr).not.toContain(secret);
  });

  it('stops cleanly on SIGTERM and keeps the credential across a restart', async () => {
    expect(await server!.stop('SIGTERM')).toBe(0);
    expect(server!.output()).not.toContain(secret);
    server = await startServer([], { cwd: dir.dir, env });
    expect(server.output()).not.toContain('Root admin token written');
    const listed = await cli(['credential', 'show', 'slack', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject({ name: 'slack', type: 'api_key', version: 1 });
  });

  it('explains a mistake with a stable code and a non-zero exit', async () => {
    const missing = await cli(['credential', 'show', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^error: No credential named "nope" in namespace "default"\. \(credential_not_found/,
    );
    const json = await cli(['credential', 'show', 'nope', '--json']);
    expect(JSON.parse(json.stderr)).toMatchObject({ error: { code: 'credential_not_found', status: 404 } });
    const usage = await cli(['credential', 'add', 'x']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain("required option '--type <type>' not specified");
  });
};
