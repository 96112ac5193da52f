import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { TestVault } from '../helpers/vault.js';

const require = createRequire(import.meta.url);

/** server-everything's entry point, run with this node as a stdio upstream (no npx, no network). */
export const everythingBin = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** A value no upstream answer may ever carry to the agent. */
export const canary = 'tvcanary-mcp-7f3a9c1e5b2d4068';

export const ok = async (
  t: TestVault,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  body?: unknown,
) => {
  const answer = await t.request(method, url, body === undefined ? {} : { body });
  if (answer.status >= 300) throw new Error(`${method} ${url}: ${answer.status} ${answer.text}`);
  return answer.body as Record<string, unknown>;
};

export interface AuditItem {
  action: string;
  decision: string;
  reason: string;
  details: Record<string, unknown>;
}

export const auditEvents = async (t: TestVault, action: string): Promise<AuditItem[]> =>
  (
    (await t.request('GET', `/v1/admin/audit/events?limit=1000&action=${action}`)).body as {
      items: AuditItem[];
    }
  ).items;

/** How a proxy reaches server-everything: a stdio child (the default), or its HTTP modes. */
export type EverythingUpstream = { kind: 'stdio' } | { kind: 'streamable-http' | 'sse'; url: string };

/** A credential, an agent granted it (proxy-only), a proxy to server-everything, and a key. */
export const setUpStdioProxy = async (
  t: TestVault,
  name = 'everything',
  upstream: EverythingUpstream = { kind: 'stdio' },
) => {
  await ok(t, 'POST', '/v1/admin/credentials', {
    name: `${name}-token`,
    type: 'api_key',
    secret: { api_key: canary },
  });
  const agent = await ok(t, 'POST', '/v1/admin/agents', { name: `${name}-agent` });
  const grant = await ok(t, 'POST', '/v1/admin/grants', {
    agent: `${name}-agent`,
    credential: `${name}-token`,
    until_revoked: true,
  });
  await ok(t, 'POST', '/v1/admin/mcp-proxies', {
    name,
    ...(upstream.kind === 'stdio'
      ? {
          command: process.execPath,
          args: [everythingBin, 'stdio'],
          injections: [{ in: 'env', name: 'UPSTREAM_API_TOKEN', template: '{{api_key}}' }],
        }
      : {
          url: upstream.url,
          transport: upstream.kind,
          injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
        }),
    credential: `${name}-token`,
    deny_tools: ['get-tiny-image'],
  });
  const key = await ok(t, 'POST', `/v1/admin/mcp-proxies/${name}/keys`, { agent: `${name}-agent` });
  return { agent, grant, key: key.key as string, keyId: key.id as string };
};

/**
 * A credential holding the canary, an agent granted it, and a proxy `name` to a Streamable HTTP
 * upstream that injects it as a bearer token; with `key`, a proxy key for the agent too.
 */
export const setUpHttpProxy = async (
  t: TestVault,
  options: { name: string; url: string; agent: string; credential?: string; key?: boolean },
): Promise<{ key?: string }> => {
  const { name, url, agent, credential = 'upstream-token' } = options;
  await ok(t, 'POST', '/v1/admin/credentials', {
    name: credential,
    type: 'api_key',
    secret: { api_key: canary },
  });
  await ok(t, 'POST', '/v1/admin/agents', { name: agent });
  await ok(t, 'POST', '/v1/admin/grants', { agent, credential, until_revoked: true });
  await ok(t, 'POST', '/v1/admin/mcp-proxies', {
    name,
    url,
    credential,
    injections: [{ in: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
  });
  if (!options.key) return {};
  return { key: (await ok(t, 'POST', `/v1/admin/mcp-proxies/${name}/keys`, { agent })).key as string };
};

/**
 * Stops a vault whose clients closed event streams. Node's fetch (undici), in this test process,
 * opens a spare connection whenever the connection of an aborted event stream ends, and sends nothing
 * on it; the vault's server would wait out its headers timeout (a minute) for each before it closes.
 * They are the test clients' leftovers, so they are cut while the vault stops.
 */
export const stopCuttingLeftovers = async (t: TestVault | undefined) => {
  if (!t) return;
  const reaper = setInterval(() => t.vault.app.server.closeAllConnections(), 50);
  await t.stop().finally(() => clearInterval(reaper));
};

/** The process ids of this process's children whose command line contains `pattern` (stdio upstreams). */
export const childPids = (pattern: string): number[] =>
  execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line))
    .filter(
      (m): m is RegExpExecArray => m !== null && Number(m[2]) === process.pid && m[3]!.includes(pattern),
    )
    .map((m) => Number(m[1]));

/** Whether a process of that id is still running. */
export const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Polls `check` until it holds (or `ms` pass), for what happens in the background. */
export const eventually = async (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
};
