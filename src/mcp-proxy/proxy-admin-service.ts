import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange, type RecordAllowed } from '../audit/audit-context.js';
import { agentSubject } from '../audit/audit-subjects.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { requireAgent } from '../agents/agent-service.js';
import { assertDescription, assertKeyName, assertKeyTtl } from '../agents/agent-rules.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { mintKey } from '../lib/minted-key.js';
import type { Database } from '../store/schema.js';
import { isUniqueViolation } from '../store/store-errors.js';
import {
  configColumns,
  type Db,
  type McpProxy,
  type McpProxyKey,
  proxyKeyRepo,
  proxyRepo,
  toProxy,
  toProxyKey,
} from './proxy-repo.js';
import { assertProxyName, type ProxyConfigInput, validateProxyConfig } from './proxy-rules.js';

export type ProxyKeyStatus = 'active' | 'expired' | 'revoked';
export type ProxyKeyView = McpProxyKey & { status: ProxyKeyStatus; agentName: string | null };

export interface ProxyAdminServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

export type CreateProxyInput = ProxyConfigInput & { name: string; description?: string | undefined };
export type UpdateProxyInput = Partial<ProxyConfigInput> & { description?: string | undefined };

export interface CreateProxyKeyInput {
  agent: string;
  user?: string | undefined;
  name?: string | undefined;
  ttlSeconds?: number | undefined;
}

// eslint-disable-next-line no-control-regex -- a user id with a control character is refused
const endUserPattern = /^[^\s\u0000-\u001f\u007f]{1,256}$/u;
const maxLiveKeysPerProxy = 1000;

export const keyStatus = (key: McpProxyKey, now: Date): ProxyKeyStatus =>
  key.revokedAt !== null
    ? 'revoked'
    : key.expiresAt !== null && Date.parse(key.expiresAt) <= now.getTime()
      ? 'expired'
      : 'active';

/** The proxy with that name, or `mcp_proxy_not_found`. */
export const requireProxy = async (db: Db, namespace: string, name: string): Promise<McpProxy> => {
  assertNamespace(namespace);
  const proxy = await proxyRepo.findByName(db, namespace, name);
  if (!proxy) {
    throw new VaultError(
      'mcp_proxy_not_found',
      `No MCP proxy is named "${name.slice(0, 64)}" in namespace "${namespace}".`,
    );
  }
  return proxy;
};

/**
 * The facts every event about a proxy carries. The credential is named under a key of its own, not
 * the subject keys (audit-subjects.ts): a proxy names a credential that may not exist yet (a per-user
 * one is made by consent), so these events are not found by `--credential`; its uses are.
 */
const proxyFacts = (proxy: Pick<McpProxy, 'id' | 'name' | 'credential'>): AuditDetails => ({
  proxy_id: proxy.id,
  proxy_name: proxy.name,
  proxy_credential: proxy.credential,
});

/**
 * MCP proxies and their keys (admin side). Every change is audited in its own transaction; a proxy
 * key is random (`tv_proxy_…`), stored as its hash and returned only by the call that made it.
 */
export const createProxyAdminService = ({ db, clock, audit }: ProxyAdminServiceDeps) => {
  const change = <T>(
    ctx: AuditContext,
    namespace: string,
    action: AuditAction,
    ref: string,
    run: (trx: Db, record: RecordAllowed) => Promise<T>,
  ) => auditedChange({ db, audit }, { ctx, namespace, action, target: { type: 'mcp_proxy', id: ref } }, run);

  const recordOn = (record: RecordAllowed, proxy: McpProxy, details: AuditDetails = {}) =>
    record({ target: { type: 'mcp_proxy', id: proxy.id }, details: { ...proxyFacts(proxy), ...details } });

  const nameTaken = (namespace: string, name: string) =>
    new VaultError(
      'mcp_proxy_exists',
      `An MCP proxy named "${name}" already exists in namespace "${namespace}".`,
    );

  /** The facts of a configuration worth recording: where it goes and how, never a template's text. */
  const configFacts = (proxy: McpProxy): AuditDetails => ({
    transport: proxy.transport,
    upstream: proxy.url ?? proxy.command ?? null,
    per_user: proxy.perUser,
    injected: proxy.injections.map((i) => `${i.in}:${i.name}`),
    allow_tools: proxy.allowTools,
    deny_tools: proxy.denyTools,
  });

  const create = (namespace: string, input: CreateProxyInput) => async (trx: Db, record: RecordAllowed) => {
    assertNamespace(namespace);
    assertProxyName(input.name);
    assertDescription(input.description ?? '');
    const config = validateProxyConfig(input);
    if (await proxyRepo.findByName(trx, namespace, input.name)) throw nameTaken(namespace, input.name);
    const now = clock.now().toISOString();
    const row = {
      id: newId(),
      namespace,
      name: input.name,
      description: input.description ?? '',
      ...configColumns(config),
      created_at: now,
      updated_at: now,
    };
    try {
      await proxyRepo.insert(trx, row);
    } catch (error) {
      if (isUniqueViolation(error)) throw nameTaken(namespace, input.name);
      throw error;
    }
    const proxy = toProxy(row);
    await recordOn(record, proxy, configFacts(proxy));
    return proxy;
  };

  const update =
    (namespace: string, name: string, input: UpdateProxyInput) => async (trx: Db, record: RecordAllowed) => {
      const proxy = await requireProxy(trx, namespace, name);
      if (input.description !== undefined) assertDescription(input.description);
      // A URL replaces a command and the other way round; anything not given stays as it was.
      const switching = input.url !== undefined || input.command !== undefined;
      const config = validateProxyConfig({
        transport: input.transport ?? (switching ? undefined : proxy.transport),
        url: switching ? (input.url ?? null) : proxy.url,
        command: switching ? (input.command ?? null) : proxy.command,
        args: input.args ?? (switching ? [] : proxy.args),
        cwd: input.cwd !== undefined ? input.cwd : switching ? null : proxy.cwd,
        credential: input.credential ?? proxy.credential,
        perUser: input.perUser ?? proxy.perUser,
        injections: input.injections ?? proxy.injections,
        allowTools: input.allowTools ?? proxy.allowTools,
        denyTools: input.denyTools ?? proxy.denyTools,
      });
      const row = await proxyRepo.update(trx, proxy.id, {
        description: input.description ?? proxy.description,
        ...configColumns(config),
        updated_at: clock.now().toISOString(),
      });
      const updated = toProxy(row);
      await recordOn(record, updated, {
        fields: Object.entries(input)
          .filter(([, value]) => value !== undefined)
          .map(([field]) => field),
        ...configFacts(updated),
      });
      return updated;
    };

  const remove = (namespace: string, name: string) => async (trx: Db, record: RecordAllowed) => {
    const proxy = await requireProxy(trx, namespace, name);
    const { keys } = await proxyRepo.remove(trx, proxy.id);
    await recordOn(record, proxy, { keys_deleted: keys });
    return proxy;
  };

  const createKey =
    (namespace: string, name: string, input: CreateProxyKeyInput) =>
    async (trx: Db, record: RecordAllowed) => {
      const proxy = await requireProxy(trx, namespace, name);
      const agent = await requireAgent(trx, namespace, input.agent);
      const keyName = input.name ?? 'default';
      assertKeyName(keyName);
      if (input.ttlSeconds !== undefined) assertKeyTtl(input.ttlSeconds);
      if (proxy.perUser && input.user === undefined) {
        throw new VaultError(
          'invalid_request',
          `Proxy "${proxy.name}" injects each end user's own connection: give the key's user (--user).`,
        );
      }
      if (!proxy.perUser && input.user !== undefined) {
        throw new VaultError(
          'invalid_request',
          `Proxy "${proxy.name}" is not per-user, so a key has no user; create the proxy with --per-user.`,
        );
      }
      if (input.user !== undefined && !endUserPattern.test(input.user)) {
        throw new VaultError(
          'invalid_request',
          'A user is 1 to 256 characters with no space or control character.',
        );
      }
      const now = clock.now();
      const live = (await proxyKeyRepo.listForProxy(trx, proxy.id)).filter(
        (k) => keyStatus(k, now) === 'active',
      ).length;
      if (live >= maxLiveKeysPerProxy) {
        throw new VaultError(
          'invalid_request',
          `Proxy "${proxy.name}" has ${live} live keys; revoke some first.`,
        );
      }
      const { token: key, columns } = mintKey('tv_proxy_', now, input.ttlSeconds);
      const row = {
        id: newId(),
        namespace,
        proxy_id: proxy.id,
        agent_id: agent.id,
        end_user: input.user ?? null,
        name: keyName,
        ...columns,
      };
      await proxyKeyRepo.insert(trx, row);
      const created = toProxyKey(row);
      await recordOn(record, proxy, {
        ...agentSubject(agent),
        key_id: created.id,
        key_name: created.name,
        end_user: created.endUser,
        expires_at: created.expiresAt,
      });
      return { proxy, key, view: { ...created, status: keyStatus(created, now), agentName: agent.name } };
    };

  const revokeKey =
    (namespace: string, name: string, keyId: string) => async (trx: Db, record: RecordAllowed) => {
      const proxy = await requireProxy(trx, namespace, name);
      const now = clock.now();
      const revoked = await proxyKeyRepo.revoke(trx, proxy.id, keyId, now.toISOString());
      const row = revoked ?? (await proxyKeyRepo.find(trx, proxy.id, keyId));
      if (!row) {
        throw new VaultError(
          'proxy_key_not_found',
          `Proxy "${proxy.name}" has no key with id "${keyId.slice(0, 64)}".`,
        );
      }
      const agent = await trx
        .selectFrom('agents')
        .select(['id', 'name'])
        .where('id', '=', row.agent_id)
        .executeTakeFirst();
      if (revoked) {
        await recordOn(record, proxy, {
          ...(agent ? agentSubject(agent) : { agent_id: row.agent_id }),
          key_id: row.id,
          key_name: row.name,
        });
      }
      const key = toProxyKey(row);
      return { ...key, status: keyStatus(key, now), agentName: agent?.name ?? null };
    };

  return {
    create: (namespace: string, input: CreateProxyInput, ctx: AuditContext) =>
      change(ctx, namespace, 'mcp_proxy.create', input.name, create(namespace, input)),

    list: (namespace: string): Promise<McpProxy[]> => {
      assertNamespace(namespace);
      return proxyRepo.list(db, namespace);
    },

    get: (namespace: string, name: string): Promise<McpProxy> => requireProxy(db, namespace, name),

    update: (namespace: string, name: string, input: UpdateProxyInput, ctx: AuditContext) =>
      change(ctx, namespace, 'mcp_proxy.update', name, update(namespace, name, input)),

    /** Removes the proxy with its keys, pinned tools and sessions; its keys stop on the next request. */
    remove: (namespace: string, name: string, ctx: AuditContext) =>
      change(ctx, namespace, 'mcp_proxy.delete', name, remove(namespace, name)),

    /** A new `tv_proxy_…` key for an agent (and end user): returned here and never again. */
    createKey: (namespace: string, name: string, input: CreateProxyKeyInput, ctx: AuditContext) =>
      change(ctx, namespace, 'mcp_proxy.key.create', name, createKey(namespace, name, input)),

    async listKeys(namespace: string, name: string): Promise<ProxyKeyView[]> {
      const proxy = await requireProxy(db, namespace, name);
      const now = clock.now();
      const keys = await proxyKeyRepo.listForProxy(db, proxy.id);
      const agentIds = [...new Set(keys.map((k) => k.agentId))];
      const agents =
        agentIds.length === 0
          ? []
          : await db.selectFrom('agents').select(['id', 'name']).where('id', 'in', agentIds).execute();
      const names = new Map(agents.map((a) => [a.id, a.name]));
      return keys.map((k) => ({ ...k, status: keyStatus(k, now), agentName: names.get(k.agentId) ?? null }));
    },

    /** Revokes one key: refused from the very next request on every replica. Twice changes nothing. */
    revokeKey: (namespace: string, name: string, keyId: string, ctx: AuditContext) =>
      change(ctx, namespace, 'mcp_proxy.key.revoke', name, revokeKey(namespace, name, keyId)),
  };
};

export type ProxyAdminService = ReturnType<typeof createProxyAdminService>;
