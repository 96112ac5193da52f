import { readFileSync } from 'node:fs';
import type { SettingName } from '../../src/config/config-schema.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { Clock } from '../../src/lib/clock.js';
import { createVault, type Vault, type VaultOptions } from '../../src/main.js';
import { createTempDataDir } from './sqlite.js';

export interface TestVaultOptions {
  /** Reuse a data dir (to restart a vault); a fresh temp dir otherwise. */
  dataDir?: string;
  databaseUrl?: string | undefined;
  settings?: Partial<Record<SettingName, string>>;
  clock?: Clock;
  keyJob?: VaultOptions['keyJob'];
  oauthRefresh?: VaultOptions['oauthRefresh'];
}

export interface TestVault {
  vault: Vault;
  dataDir: string;
  rootToken: string;
  /** Every log line written so far, as one string. */
  logs(): string;
  /** An HTTP request through `inject()`; the root token unless `token` is given (null: none). */
  request(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    options?: { body?: unknown; rawBody?: string; token?: string | null; headers?: Record<string, string> },
  ): Promise<{ status: number; body: unknown; text: string; headers: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** A real vault (real store, real keys) with no listening socket, logging at trace level into memory. */
export const startTestVault = async (options: TestVaultOptions = {}): Promise<TestVault> => {
  const temp = options.dataDir ? undefined : await createTempDataDir();
  const dataDir = options.dataDir ?? temp!.dir;
  const lines: string[] = [];
  const config = loadConfig(
    { dataDir, databaseUrl: options.databaseUrl, port: '0', logLevel: 'trace', ...options.settings },
    {},
  );
  const vault = await createVault(config, {
    clock: options.clock,
    logDestination: { write: (line: string) => void lines.push(line) },
    keyJob: { pollMs: 50, leaseMs: 2000, ...options.keyJob },
    oauthRefresh: options.oauthRefresh,
  });
  const rootToken = readFileSync(`${dataDir}/admin-token`, 'utf8').trim();

  return {
    vault,
    dataDir,
    rootToken,
    logs: () => lines.join(''),
    async request(method, url, { body, rawBody, token, headers = {} } = {}) {
      const auth = token === null ? {} : { authorization: `Bearer ${token ?? rootToken}` };
      const payload = rawBody ?? (body === undefined ? undefined : JSON.stringify(body));
      const response = await vault.app.inject({
        method,
        url,
        headers: {
          ...auth,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        ...(payload === undefined ? {} : { payload }),
      });
      let parsed: unknown;
      try {
        parsed = response.body === '' ? undefined : JSON.parse(response.body);
      } catch {
        parsed = undefined;
      }
      return { status: response.statusCode, body: parsed, text: response.body, headers: response.headers };
    },
    async stop() {
      await vault.stop();
      await temp?.cleanup();
    },
  };
};
