import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { call, startUpstream, streamOf } from './proxy-upstream.js';

/**
 * Bodies stream through the proxy: a real `tokenvault serve` process (so its memory is its own), set
 * up through the real CLI (`credential add --base-url --allowed-host`), 200 MB uploads (with a length, and chunked) and a 200 MB
 * download, and the server's peak resident memory (`VmHWM`) read from /proc before and after.
 */
const peakRss = (pid: number): number => {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
};

describe.runIf(process.platform === 'linux')('HTTP proxy memory', { timeout: 120_000 }, () => {
  let dir: TempDataDir;
  let server: ServerProcess;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let apiKey: string;
  const env = cleanEnv();
  const cli = async (args: string[], input?: string) => {
    const result = await runCli(args, {
      cwd: dir.dir,
      env: { ...env, TOKENVAULT_ADDR: server.url },
      input,
    });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };

  beforeAll(async () => {
    upstream = await startUpstream();
    dir = await createTempDataDir();
    server = await startServer(['--log-level', 'warn'], { cwd: dir.dir, env });
    await cli(
      [
        'credential',
        'add',
        'bulk',
        '--type',
        'api_key',
        '--secret-stdin',
        '--base-url',
        `http://${upstream.host}/api`,
        '--allowed-host',
        upstream.host,
      ],
      'bulk-secret-value\n',
    );
    expect(JSON.parse(await cli(['credential', 'show', 'bulk', '--json']))).toMatchObject({
      base_url: `http://${upstream.host}/api`,
    });
    apiKey = (JSON.parse(await cli(['agent', 'create', 'bulk-agent', '--json'])) as { api_key: string })
      .api_key;
    await cli(['grant', 'create', '--agent', 'bulk-agent', '--credential', 'bulk', '--until-revoked']);
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await upstream?.close();
    await dir?.cleanup();
  });

  it('keeps the vault’s peak memory far below the body size, both ways', async () => {
    const base = new URL(server.url);
    const auth = { authorization: `Bearer ${apiKey}` };
    // Warm up (JIT, pools), then take the baseline.
    expect((await call(base, 'POST', '/v1/proxy/bulk/upload', { headers: auth, body: 'x' })).status).toBe(
      200,
    );
    const pid = server.child.pid as number;
    const before = peakRss(pid);
    // 200 MB: streaming costs a fixed amount whatever the size, buffering costs the size; the larger
    // the body, the wider the margin between the two for a collector that runs late on a busy machine.
    const size = 200 * 1024 * 1024;

    const upload = await call(base, 'POST', '/v1/proxy/bulk/upload', {
      headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: streamOf(size),
    });
    expect(upload.status, upload.text).toBe(200);
    expect(JSON.parse(upload.text)).toEqual({ bytes: size });

    const chunked = await call(base, 'PUT', '/v1/proxy/bulk/upload', {
      headers: { ...auth, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
      body: streamOf(size),
    });
    expect(JSON.parse(chunked.text)).toEqual({ bytes: size });

    const download = await call(base, 'GET', `/v1/proxy/bulk/download?bytes=${size}`, {
      headers: auth,
      keep: false,
    });
    expect(download.status).toBe(200);
    expect(download.bytes).toBe(size);

    // Streaming costs a fixed amount (buffers in flight, a larger heap before the next collection):
    // about 27 MiB for 10 MB bodies and 36 MiB for 100 or 150 MB ones on a quiet machine, up to 79 MiB
    // seen on a busy one. Buffering would cost at least the body: 200 MB.
    const growth = peakRss(pid) - before;
    expect(growth, `peak RSS grew by ${Math.round(growth / 1024 / 1024)} MiB`).toBeLessThan(size / 2);
  });
});
