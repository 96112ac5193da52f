import { afterEach, describe, expect, it } from 'vitest';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

describe('tokenvault serve shutdown', () => {
  let dir: TempDataDir | undefined;
  let server: ServerProcess | undefined;

  afterEach(async () => {
    await server?.stop('SIGKILL');
    server = undefined;
    await dir?.cleanup();
  });

  it('exits on SIGTERM even when nobody reads its log any more', async () => {
    dir = await createTempDataDir();
    server = await startServer(['--log-level', 'trace', '--shutdown-timeout-ms', '3000'], {
      cwd: dir.dir,
      env: cleanEnv(),
    });
    // The log reader stops reading (a stuck log shipper): the pipe fills and log lines pile up.
    server.child.stdout?.pause();
    server.child.stdout?.removeAllListeners('data');
    for (let i = 0; i < 1500; i++) await fetch(`${server.url}/v1/admin/credentials`);
    const started = Date.now();
    const code = await Promise.race([
      server.stop('SIGTERM'),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000)),
    ]);
    expect(code, 'still running 15 s after SIGTERM').not.toBe('hung');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

  it('exits on SIGTERM when its log pipe has died (the reader closed it)', async () => {
    dir = await createTempDataDir();
    server = await startServer(['--log-level', 'trace', '--shutdown-timeout-ms', '3000'], {
      cwd: dir.dir,
      env: cleanEnv(),
    });
    // The log reader is gone: the read end of the pipe is closed, so every later write fails (EPIPE).
    server.child.stdout?.destroy();
    for (let i = 0; i < 200; i++) expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    const started = Date.now();
    const code = await Promise.race([
      server.stop('SIGTERM'),
      new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000)),
    ]);
    expect(code, 'still running 15 s after SIGTERM').not.toBe('hung');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);
});
