import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const binPath = fileURLToPath(new URL('../../bin/tokenvault', import.meta.url));

/** A clean environment: nothing from the developer's shell leaks into the vault or the CLI. */
export const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  ...extra,
});

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bin/tokenvault ARGS` to completion, optionally feeding standard input. */
export const runCli = (args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; input?: string }) =>
  new Promise<RunResult>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { cwd: options.cwd, env: options.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** Sends the signal and resolves with the exit code (null when killed by the signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `bin/tokenvault serve ARGS` (a real process on a real port, for tests that need a socket,
 * signals or the CLI) and resolves once it prints the address it listens on. For a vault in this
 * process on a real port, `startTestVault()` then `vault.listen()`.
 */
export const startServer = (
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
) =>
  new Promise<ServerProcess>((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, 'serve', '--port', '0', ...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start in time; it printed:\n${output}`));
    }, options.timeoutMs ?? 20_000);
    let listening = false;
    const onData = (chunk: Buffer) => {
      // Only the tail is kept: it is for failure messages, and a request log can be long.
      output = (output + chunk.toString()).slice(-100_000);
      if (listening) return;
      const match = /listening on (https?:\/\/\S+)/.exec(output);
      if (match) {
        listening = true;
        clearTimeout(timer);
        resolve({
          url: match[1] as string,
          child,
          output: () => output,
          async stop(signal = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening; it printed:\n${output}`));
    });
  });
