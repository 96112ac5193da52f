import type { AgentPrincipal } from '../agents/agent-types.js';
import type { AuditDetails } from '../audit/audit-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { constantTimeEqual, hashToken } from '../lib/token-hash.js';
import type { Db, McpProxy } from './proxy-repo.js';
import { proxyKeyRepo, proxyRepo } from './proxy-repo.js';

/** Who an MCP proxy request is from: the key's agent (and end user), through which proxy. */
export interface ProxyCaller {
  principal: AgentPrincipal;
  proxy: McpProxy;
  keyId: string;
  endUser: string | undefined;
}

const keyPattern = /^tv_proxy_[A-Za-z0-9_-]{43}$/;
const touchEveryMs = 60_000;

/**
 * The proxy key from the request's headers: `Authorization: Bearer tv_proxy_…` (what `proxy config`
 * prints), or `X-TokenVault-Proxy-Key` for clients that keep Authorization for something else.
 */
export const presentedProxyKey = (headers: Readonly<Record<string, string | string[] | undefined>>) => {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (match) return match[1];
  }
  const header = headers['x-tokenvault-proxy-key'];
  return typeof header === 'string' ? header.trim() : undefined;
};

/**
 * Authenticates a proxy key for the proxy named in the path, reading the key, its proxy and its
 * agent afresh on every request: a revoked or expired key, a removed proxy or a disabled agent is
 * refused on the very next request, on every replica, with no cache to reason about. The path's
 * proxy must be the key's (a key for one upstream never opens another).
 */
export const authenticateProxyKey = async (
  db: Db,
  clock: Clock,
  token: string | undefined,
  proxyName: string,
  /** What is learnt on the way (the key, its agent), for the refusal's audit event. */
  facts: AuditDetails = {},
): Promise<ProxyCaller> => {
  facts.proxy_name = proxyName.slice(0, 200);
  if (token === undefined || token === '') throw new VaultError('proxy_key_required');
  if (!keyPattern.test(token)) throw new VaultError('proxy_key_invalid');
  const row = await proxyKeyRepo.findByHash(db, hashToken(token));
  if (!row || !constantTimeEqual(row.key_hash, hashToken(token))) throw new VaultError('proxy_key_invalid');
  facts.proxy_key_id = row.id;
  facts.agent_id = row.agent_id;
  const proxy = await proxyRepo.findById(db, row.proxy_id);
  if (!proxy || proxy.name !== proxyName) throw new VaultError('proxy_key_invalid');
  const agent = await db
    .selectFrom('agents')
    .select(['id', 'name', 'namespace', 'status'])
    .where('id', '=', row.agent_id)
    .executeTakeFirst();
  if (!agent || agent.namespace !== row.namespace) throw new VaultError('proxy_key_invalid');
  facts.agent_name = agent.name;
  const now = clock.now();
  if (row.revoked_at !== null) throw new VaultError('proxy_key_revoked');
  if (row.expires_at !== null && Date.parse(row.expires_at) <= now.getTime()) {
    throw new VaultError('proxy_key_expired');
  }
  if (agent.status !== 'active') throw new VaultError('agent_disabled');
  // Bookkeeping, at most once a minute per key; no trigger listens to `last_used_at`. Written only when
  // the row just read says it is due: on SQLite an UPDATE takes the write lock even when it changes
  // nothing, and waits for the audit thread's commit with the event loop blocked (the bench's
  // mcp-proxy section: most of a proxied call's time, docs/benchmarks.md).
  const due = now.getTime() - touchEveryMs;
  if (row.last_used_at === null || Date.parse(row.last_used_at) < due)
    await proxyKeyRepo.touch(db, row.id, now.toISOString(), new Date(due).toISOString());
  return {
    principal: {
      agentId: agent.id,
      agentName: agent.name,
      namespace: agent.namespace,
      method: 'proxy_key',
      credentialRef: row.id,
    },
    proxy,
    keyId: row.id,
    endUser: row.end_user ?? undefined,
  };
};
