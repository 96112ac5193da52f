import { type ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../oauth/oauth-app-fixture.js';
import { canary, everythingBin } from './mcp-proxy-fixtures.js';

/**
 * server-everything run as an HTTP upstream on a free loopback port: `streamableHttp` (its `/mcp`)
 * or the deprecated `sse` (`/sse`, posting to `/message`). Its environment holds the canary, so its
 * `get-env` tool answers with the secret and the vault must redact it on the way back.
 */
export interface EverythingHttp {
  url: string;
  stop(): Promise<void>;
}

export const startEverythingHttp = async (mode: 'streamableHttp' | 'sse'): Promise<EverythingHttp> => {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [everythingBin, mode], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), UPSTREAM_API_TOKEN: canary },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${output}`)), 15_000);
    const seen = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      // Both modes print their port once they listen.
      if (new RegExp(`port ${port}`).test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', seen);
    child.stderr?.on('data', seen);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything exited (${code}): ${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}${mode === 'sse' ? '/sse' : '/mcp'}`,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
};
