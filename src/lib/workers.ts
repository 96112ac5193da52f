import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';

/**
 * The compiled file of a worker thread, next to the module that starts it. Worker threads run plain
 * JavaScript: when the caller itself runs from TypeScript sources (the test runner), the worker is
 * taken from `dist/`, which `npm test` builds before it runs the tests.
 */
export const workerFile = (callerUrl: string, name: string): URL => {
  const beside = new URL(`./${name}.js`, callerUrl);
  if (!callerUrl.endsWith('.ts')) return beside;
  const built = new URL(beside.href.replace(/\/src\/(?!.*\/src\/)/, '/dist/'));
  if (!existsSync(fileURLToPath(built))) {
    throw new Error(`${fileURLToPath(built)} is missing: run \`npm run build\` first`);
  }
  return built;
};

/**
 * Asks a worker thread to finish (`message` is its own "close" message) and resolves once it has
 * exited. The worker is held meanwhile: the caller may be all that is left to keep the process alive.
 */
export const closeWorker = async (worker: Worker, message: unknown): Promise<void> => {
  worker.ref();
  const exited = once(worker, 'exit');
  worker.postMessage(message);
  await exited;
};
