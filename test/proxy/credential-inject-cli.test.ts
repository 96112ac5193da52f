import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/** `credential add --inject …` repeated, through the real CLI against a real server (`npm run build` first). */
describe('tokenvault credential --inject, repeated', { timeout: 90_000 }, () => {
  let dir: TempDataDir;
  let server: ServerProcess;
  const env = cleanEnv();

  const cli = (args: string[], input?: string) =>
    runCli(args, { cwd: dir.dir, env: { ...env, TOKENVAULT_ADDR: server.url }, input });

  beforeAll(async () => {
    dir = await createTempDataDir();
    server = await startServer([], { cwd: dir.dir, env });
  });
  afterAll(async () => {
    await server?.stop('SIGKILL');
    await dir?.cleanup();
  });

  it('stores every injection, in order, and shows them all', async () => {
    const added = await cli(
      [
        'credential',
        'add',
        'exchange',
        '--type',
        'custom',
        '--secret-stdin',
        '--base-url',
        'https://api.exchange.example/v3',
        '--inject',
        'header:X-Api-Key:{{api_key}}',
        '--inject',
        'header:X-Api-Secret:{{api_secret}}',
        '--inject',
        'query:signature:{{api_secret}}',
      ],
      '{"api_key":"k-cli-1","api_secret":"s-cli-1"}',
    );
    expect(added.code, added.stderr).toBe(0);

    const shown = await cli(['credential', 'show', 'exchange']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(
      /injections:\s+header X-Api-Key: \{\{api_key\}\}, header X-Api-Secret: \{\{api_secret\}\}, query signature: \{\{api_secret\}\}/,
    );
    expect(shown.stdout).toContain('https://api.exchange.example/v3');
    expect(shown.stdout).not.toContain('s-cli-1');

    const json = JSON.parse((await cli(['credential', 'show', 'exchange', '--json'])).stdout) as {
      injection: unknown;
      injections: unknown[];
    };
    expect(json.injections).toEqual([
      { in: 'header', name: 'X-Api-Key', template: '{{api_key}}' },
      { in: 'header', name: 'X-Api-Secret', template: '{{api_secret}}' },
      { in: 'query', name: 'signature', template: '{{api_secret}}' },
    ]);
    expect(json.injection).toEqual(json.injections[0]);

    // One --inject on update replaces the list with that one.
    const updated = await cli([
      'credential',
      'update',
      'exchange',
      '--inject',
      'header:X-Api-Key:{{api_key}}',
    ]);
    expect(updated.code, updated.stderr).toBe(0);
    expect((await cli(['credential', 'show', 'exchange'])).stdout).toMatch(
      /injection:\s+header X-Api-Key: \{\{api_key\}\}\n/,
    );

    const clash = await cli([
      'credential',
      'update',
      'exchange',
      '--inject',
      'header:X-Api-Key:{{api_key}}',
      '--inject',
      'header:x-api-key:{{api_secret}}',
    ]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('invalid_injection');
  });
});
