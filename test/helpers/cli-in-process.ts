import { PassThrough, Readable } from 'node:stream';
import { runCli } from '../../src/cli/cli-main.js';

/** Runs `tokenvault ARGS` in this process against `addr`, as a person would, capturing its output. */
export const cliAgainst =
  (addr: string, token: string) =>
  async (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await runCli(['node', 'tokenvault', ...args], {
      stdout,
      stderr,
      stdin: Readable.from([input]),
      env: { TOKENVAULT_ADDR: addr, TOKENVAULT_TOKEN: token },
    });
    process.exitCode = undefined;
    return { code, stdout: out, stderr: err };
  };
