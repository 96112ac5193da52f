// Child processes of the benchmark, spoken to over the IPC channel, and killed by `killChildren()`
// whatever happens to the run.

import { fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const children = new Set();

export const killChildren = () => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
};

/**
 * Forks `bench/<script>`; `call(cmd, args)` resolves with its answer, other messages go to `onMessage`.
 * `stdout`: a file descriptor for the child's standard output (the bench's own by default).
 */
export const forkChild = (script, args, env, onMessage = () => {}, { stdout = 'inherit' } = {}) => {
  const child = fork(join(here, script), args, {
    // Node options for the server processes only (`--trace-gc`, `--max-semi-space-size=64`, …).
    execArgv: process.env.BENCH_CHILD_EXEC_ARGV
      ? process.env.BENCH_CHILD_EXEC_ARGV.split(' ')
      : process.execArgv,
    env: { ...process.env, ...env },
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  });
  children.add(child);
  const pending = new Map();
  let nextId = 0;
  let exitError;
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      exitError = new Error(`${script} ${args.join(' ')} exited (${signal ?? code})`);
      for (const { reject } of pending.values()) reject(exitError);
      pending.clear();
      resolve(code);
    });
  });
  child.on('message', (message) => {
    if (message.id !== undefined && pending.has(message.id)) {
      const { resolve, reject } = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(`${script}: ${message.error}`));
      else resolve(message.result);
    } else {
      onMessage(message);
    }
  });
  return {
    exited,
    call(cmd, callArgs) {
      if (exitError) return Promise.reject(exitError);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, cmd, args: callArgs });
      });
    },
  };
};

/**
 * A server child (`ceiling`, `fastify` or `vault`), once it listens: its URL, admin token and IPC calls.
 * `options.stdout` as for `forkChild` (the vault's JSON log lines go there).
 */
export const startServer = async (kind, env = {}, options = {}) => {
  let onReady;
  const ready = new Promise((resolve) => {
    onReady = resolve;
  });
  const handle = forkChild(
    'server-child.mjs',
    [kind],
    env,
    (message) => {
      if (message.type === 'ready') onReady(message);
    },
    options,
  );
  const { url, token } = await Promise.race([
    ready,
    handle.exited.then(() => {
      throw new Error(`the ${kind} server exited before it was ready`);
    }),
  ]);
  return {
    ...handle,
    url,
    token,
    async stop() {
      await handle.call('stop').catch(() => {});
      await handle.exited;
    },
  };
};
