import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { binPath, cleanEnv } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * Issue 12 item 10: the first start reads as the README shows. The two human lines go to standard
 * error; standard output carries the log, as JSON lines when it is a pipe (a log shipper reads it)
 * unless text is asked for. On a terminal `auto` picks text (chooseLogFormat, unit-tested beside it).
 */
const serve = (dir: string, args: string[], env: Record<string, string> = {}) =>
  new Promise<{ stdout: string; stderr: string; code: number | null }>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', ...args], {
      cwd: dir,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let stopping = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    // SIGTERM the moment the server says it listens, once (a second one would find no handler
    // left): it stops cleanly, which also proves the signal handlers are in place by then.
    const stopWhenUp = () => {
      if (stopping || !stderr.includes('listening on')) return;
      stopping = true;
      child.kill('SIGTERM');
    };
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      stopWhenUp();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      stopWhenUp();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });

describe('serve start-up output', { timeout: 60_000 }, () => {
  let dir: TempDataDir | undefined;
  afterEach(async () => {
    await dir?.cleanup();
  });

  it('with standard output a pipe: JSON log lines on stdout, the two human lines on stderr', async () => {
    dir = await createTempDataDir();
    const { stdout, stderr, code } = await serve(dir.dir, []);
    expect(code, `${stderr}${stdout}`).toBe(0);
    const human = stderr.split('\n').filter((line) => line !== '');
    expect(human[0]).toMatch(/^Root admin token written to \S+admin-token \(mode 0600\)\./);
    expect(human[1]).toMatch(/^Token Vault \(SQLite: \S+\) listening on http:\/\/127\.0\.0\.1:\d+$/);
    const lines = stdout.split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ service: 'tokenvault' });
  });

  it('--log-format text (or TOKENVAULT_LOG_FORMAT) writes one short human line per log entry', async () => {
    dir = await createTempDataDir();
    const { stdout, stderr, code } = await serve(dir.dir, [], { TOKENVAULT_LOG_FORMAT: 'text' });
    expect(code, `${stderr}${stdout}`).toBe(0);
    const lines = stdout.split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines)
      expect(line, stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z \[(INFO|WARN|ERROR|DEBUG)\]\s+\S/);
    expect(stdout).not.toContain('{"level"');
  });
});
