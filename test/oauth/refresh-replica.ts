import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A vault process (test/oauth/refresh-child.mjs) for the multi-process and kill tests. */
const child = fileURLToPath(new URL('./refresh-child.mjs', import.meta.url));

export interface RefreshReplica {
  url: string;
  pid: number;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export const startRefreshReplica = (env: NodeJS.ProcessEnv): Promise<RefreshReplica> =>
  new Promise((resolve, reject) => {
    const process_ = spawn(process.execPath, [child], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const exited = new Promise<void>((done) => process_.on('exit', () => done()));
    const timer = setTimeout(() => reject(new Error(`replica did not start: ${output}`)), 20_000);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1]!,
          pid: process_.pid!,
          async stop() {
            if (process_.exitCode === null && process_.signalCode === null) process_.kill('SIGTERM');
            await exited;
          },
          async kill() {
            if (process_.exitCode === null && process_.signalCode === null) process_.kill('SIGKILL');
            await exited;
          },
        });
      }
    };
    process_.stdout.on('data', onData);
    process_.stderr.on('data', onData);
    process_.on('exit', (code) => reject(new Error(`replica exited with ${code}: ${output}`)));
  });
