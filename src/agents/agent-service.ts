import type { Kysely } from 'kysely';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { agentSubject } from '../audit/audit-subjects.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { mintKey } from '../lib/minted-key.js';
import type { Database } from '../store/schema.js';
import { isUniqueViolation } from '../store/store-errors.js';
import { type AuditContext, auditedChange, type RecordAllowed } from '../audit/audit-context.js';
import { grantRepo } from '../grants/grant-repo.js';
import { proxyKeyRepo } from '../mcp-proxy/proxy-repo.js';
import { validatePublicJwks } from './agent-jwks.js';
import { agentKeyRepo, agentRepo, bindingRepo, type Db, toAgent, toAgentKey } from './agent-repo.js';
import {
  assertAgentName,
  assertDescription,
  assertKeyName,
  assertKeyTtl,
  maxLiveKeysPerAgent,
} from './agent-rules.js';
import type { Agent, AgentKey } from './agent-types.js';
import { checkFetchUrl } from './remote-keys.js';

export type AgentKeyStatus = 'active' | 'expired' | 'revoked';
export type AgentKeyView = AgentKey & { status: AgentKeyStatus };

export interface AgentServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

export interface CreateAgentInput {
  name: string;
  description?: string | undefined;
  /** Lifetime of the first API key; none: until revoked. */
  keyTtlSeconds?: number | undefined;
}

export interface CreateKeyInput {
  name?: string | undefined;
  ttlSeconds?: number | undefined;
}

export type JwksInput = { jwks: unknown; jwksUrl?: undefined } | { jwks?: undefined; jwksUrl: string };

const maxPageSize = 500;

/** The agent with that id or name in the namespace, or `agent_not_found`. */
export const requireAgent = async (db: Db, namespace: string, ref: string): Promise<Agent> => {
  assertNamespace(namespace);
  const agent = await agentRepo.findByRef(db, namespace, ref);
  if (!agent) {
    throw new VaultError(
      'agent_not_found',
      `No agent has id or name "${ref.slice(0, 64)}" in namespace "${namespace}".`,
    );
  }
  return agent;
};

/** Agents and their API keys and registered public keys. Every change is audited in its transaction. */
export const createAgentService = ({ db, clock, audit }: AgentServiceDeps) => {
  const find = requireAgent;

  /** The allow event of a change to `agent`, filed against its id with its name. */
  const recordOn = (record: RecordAllowed, agent: Pick<Agent, 'id' | 'name'>, details: AuditDetails = {}) =>
    record({ target: { type: 'agent', id: agent.id }, details: { ...agentSubject(agent), ...details } });

  const keyStatus = (key: AgentKey, now: Date): AgentKeyStatus =>
    key.revokedAt !== null
      ? 'revoked'
      : key.expiresAt !== null && Date.parse(key.expiresAt) <= now.getTime()
        ? 'expired'
        : 'active';

  /** Inserts a new `tv_agent_…` key; the only place the key exists in the clear is the return value. */
  const insertKey = async (trx: Db, agent: Agent, input: CreateKeyInput) => {
    const name = input.name ?? 'default';
    assertKeyName(name);
    if (input.ttlSeconds !== undefined) assertKeyTtl(input.ttlSeconds);
    const now = clock.now();
    const { token: apiKey, columns } = mintKey('tv_agent_', now, input.ttlSeconds);
    const row = { id: newId(), namespace: agent.namespace, agent_id: agent.id, name, ...columns };
    await agentKeyRepo.insert(trx, row);
    const key = toAgentKey(row);
    return { apiKey, key: { ...key, status: keyStatus(key, now) } };
  };

  /**
   * Runs a change in one audited transaction; a refusal is recorded as a deny of `action` on the
   * agent as it was named.
   */
  const change = <T>(
    ctx: AuditContext,
    namespace: string,
    action: AuditAction,
    ref: string,
    run: (trx: Db, record: RecordAllowed) => Promise<T>,
  ) => auditedChange({ db, audit }, { ctx, namespace, action, target: { type: 'agent', id: ref } }, run);

  const setStatus = (namespace: string, ref: string, status: Agent['status'], ctx: AuditContext) => {
    const action = status === 'disabled' ? 'agent.disable' : 'agent.enable';
    return change(ctx, namespace, action, ref, async (trx, record) => {
      const agent = await find(trx, namespace, ref);
      if (agent.status === status) return agent;
      const row = await agentRepo.update(trx, agent.id, { status, updated_at: clock.now().toISOString() });
      await recordOn(record, agent);
      return toAgent(row);
    });
  };

  const nameTaken = (namespace: string, name: string | undefined) =>
    new VaultError('agent_exists', `An agent named "${name}" already exists in namespace "${namespace}".`);

  /** Two replicas taking the same name at once: the unique constraint decides. */
  const uniqueName = async <T>(namespace: string, name: string | undefined, run: () => Promise<T>) => {
    try {
      return await run();
    } catch (error) {
      if (isUniqueViolation(error)) throw nameTaken(namespace, name);
      throw error;
    }
  };

  const create = (namespace: string, input: CreateAgentInput) => async (trx: Db, record: RecordAllowed) => {
    assertNamespace(namespace);
    assertAgentName(input.name);
    assertDescription(input.description ?? '');
    if (input.keyTtlSeconds !== undefined) assertKeyTtl(input.keyTtlSeconds);
    const now = clock.now().toISOString();
    const row = {
      id: newId(),
      namespace,
      name: input.name,
      description: input.description ?? '',
      status: 'active',
      jwks: null,
      jwks_url: null,
      created_at: now,
      updated_at: now,
    };
    if (await agentRepo.findByRef(trx, namespace, input.name)) throw nameTaken(namespace, input.name);
    await uniqueName(namespace, input.name, () => agentRepo.insert(trx, row));
    const agent = toAgent(row);
    const { apiKey, key } = await insertKey(trx, agent, { ttlSeconds: input.keyTtlSeconds });
    await recordOn(record, agent, { key_id: key.id });
    return { agent, key, apiKey };
  };

  const update =
    (
      namespace: string,
      ref: string,
      input: { name?: string | undefined; description?: string | undefined },
    ) =>
    async (trx: Db, record: RecordAllowed): Promise<Agent> => {
      if (input.name !== undefined) assertAgentName(input.name);
      if (input.description !== undefined) assertDescription(input.description);
      const agent = await find(trx, namespace, ref);
      const renamed = input.name !== undefined && input.name !== agent.name;
      if (renamed && (await agentRepo.findByRef(trx, namespace, input.name as string))) {
        throw nameTaken(namespace, input.name);
      }
      const row = await uniqueName(namespace, input.name, () =>
        agentRepo.update(trx, agent.id, {
          name: input.name ?? agent.name,
          description: input.description ?? agent.description,
          updated_at: clock.now().toISOString(),
        }),
      );
      await recordOn(record, agent, {
        fields: Object.entries(input)
          .filter(([, value]) => value !== undefined)
          .map(([field]) => field),
        ...(renamed ? { new_name: input.name as string } : {}),
      });
      return toAgent(row);
    };

  const remove = (namespace: string, ref: string) => async (trx: Db, record: RecordAllowed) => {
    const agent = await find(trx, namespace, ref);
    const keys = await agentKeyRepo.removeForAgent(trx, agent.id);
    const bindings = await bindingRepo.removeForAgent(trx, agent.id);
    // A grant must not outlive its agent; the grants module removes its own rows.
    const grantsDeleted = await grantRepo.removeForAgent(trx, agent.id);
    const proxyKeysDeleted = await proxyKeyRepo.removeForAgent(trx, agent.id);
    await agentRepo.remove(trx, agent.id);
    await recordOn(record, agent, {
      keys_deleted: Number(keys.numDeletedRows),
      bindings_deleted: Number(bindings.numDeletedRows),
      grants_deleted: grantsDeleted,
      proxy_keys_deleted: proxyKeysDeleted,
    });
    return agent;
  };

  /** The registered keys, checked before the transaction (a JWK set is parsed, a URL vetted). */
  const checkJwks = async (input: JwksInput) => {
    if ((input.jwks === undefined) === (input.jwksUrl === undefined)) {
      throw new VaultError(
        'invalid_request',
        'Give either jwks (a public JWK or JWK set) or jwks_url, not both.',
      );
    }
    const jwks = input.jwks === undefined ? null : await validatePublicJwks(input.jwks);
    const jwksUrl = input.jwksUrl === undefined ? null : checkFetchUrl(input.jwksUrl, 'JWKS URL');
    return { jwks, jwksUrl };
  };

  const setJwks =
    (namespace: string, ref: string) =>
    async (
      trx: Db,
      record: RecordAllowed,
      { jwks, jwksUrl }: Awaited<ReturnType<typeof checkJwks>>,
    ): Promise<Agent> => {
      const agent = await find(trx, namespace, ref);
      const row = await agentRepo.update(trx, agent.id, {
        jwks: jwks === null ? null : JSON.stringify(jwks),
        jwks_url: jwksUrl,
        updated_at: clock.now().toISOString(),
      });
      await recordOn(record, agent, {
        ...(jwks ? { kids: jwks.keys.map((k) => k.kid ?? '(none)'), key_count: jwks.keys.length } : {}),
        ...(jwksUrl ? { jwks_url: jwksUrl } : {}),
      });
      return toAgent(row);
    };

  const clearJwks =
    (namespace: string, ref: string) =>
    async (trx: Db, record: RecordAllowed): Promise<Agent> => {
      const agent = await find(trx, namespace, ref);
      const row = await agentRepo.update(trx, agent.id, {
        jwks: null,
        jwks_url: null,
        updated_at: clock.now().toISOString(),
      });
      await recordOn(record, agent);
      return toAgent(row);
    };

  const createKey =
    (namespace: string, ref: string, input: CreateKeyInput) => async (trx: Db, record: RecordAllowed) => {
      const agent = await find(trx, namespace, ref);
      const live = await agentKeyRepo.countLive(trx, agent.id, clock.now().toISOString());
      if (live >= maxLiveKeysPerAgent) {
        throw new VaultError(
          'invalid_request',
          `Agent "${agent.name}" already has ${maxLiveKeysPerAgent} live keys; revoke one first.`,
        );
      }
      const created = await insertKey(trx, agent, input);
      await recordOn(record, agent, {
        key_id: created.key.id,
        key_name: created.key.name,
        expires_at: created.key.expiresAt,
      });
      return { agent, ...created };
    };

  const revokeKey =
    (namespace: string, ref: string, keyId: string) =>
    async (trx: Db, record: RecordAllowed): Promise<AgentKeyView> => {
      const agent = await find(trx, namespace, ref);
      const now = clock.now();
      const revoked = await agentKeyRepo.revoke(trx, agent.id, keyId, now.toISOString());
      const row = revoked ?? (await agentKeyRepo.find(trx, agent.id, keyId));
      if (!row) {
        throw new VaultError(
          'agent_key_not_found',
          `Agent "${agent.name}" has no key with id "${keyId.slice(0, 64)}".`,
        );
      }
      if (revoked) await recordOn(record, agent, { key_id: row.id, key_name: row.name });
      const key = toAgentKey(row);
      return { ...key, status: keyStatus(key, now) };
    };

  return {
    /** Creates the agent and its first API key, which is returned here and never again. */
    create: (namespace: string, input: CreateAgentInput, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.create', input.name, create(namespace, input)),

    async list(namespace: string, options: { limit?: number | undefined; after?: string | undefined } = {}) {
      assertNamespace(namespace);
      const limit = Math.min(Math.max(options.limit ?? 100, 1), maxPageSize);
      const items = await agentRepo.list(db, namespace, { limit: limit + 1, after: options.after });
      const page = items.slice(0, limit);
      return { items: page, nextCursor: items.length > limit ? (page.at(-1)?.name ?? null) : null };
    },

    get: (namespace: string, ref: string): Promise<Agent> => find(db, namespace, ref),

    update: (
      namespace: string,
      ref: string,
      input: { name?: string | undefined; description?: string | undefined },
      ctx: AuditContext,
    ) => change(ctx, namespace, 'agent.update', ref, update(namespace, ref, input)),

    /** Takes effect on the very next request on every replica: authentication reads the status. */
    disable: (namespace: string, ref: string, ctx: AuditContext) =>
      setStatus(namespace, ref, 'disabled', ctx),
    enable: (namespace: string, ref: string, ctx: AuditContext) => setStatus(namespace, ref, 'active', ctx),

    /** Deletes the agent with its keys, workload bindings and grants, in one transaction. */
    remove: (namespace: string, ref: string, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.delete', ref, remove(namespace, ref)),

    /** Registers the agent's public keys for JWT assertions: a JWK set, or a URL that serves one. */
    setJwks: (namespace: string, ref: string, input: JwksInput, ctx: AuditContext) =>
      auditedChange(
        { db, audit },
        {
          ctx,
          namespace,
          action: 'agent.jwks.set',
          target: { type: 'agent', id: ref },
          prepare: () => checkJwks(input),
        },
        setJwks(namespace, ref),
      ),

    clearJwks: (namespace: string, ref: string, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.jwks.clear', ref, clearJwks(namespace, ref)),

    /** Another API key, so keys can be rotated without downtime; returned here and never again. */
    createKey: (namespace: string, ref: string, input: CreateKeyInput, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.key.create', ref, createKey(namespace, ref, input)),

    async listKeys(namespace: string, ref: string): Promise<AgentKeyView[]> {
      const agent = await find(db, namespace, ref);
      const now = clock.now();
      return (await agentKeyRepo.listForAgent(db, agent.id)).map((key) => ({
        ...key,
        status: keyStatus(key, now),
      }));
    },

    /** Revokes one key; it is refused from the very next request. Revoking twice changes nothing. */
    revokeKey: (namespace: string, ref: string, keyId: string, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.key.revoke', ref, revokeKey(namespace, ref, keyId)),
  };
};

export type AgentService = ReturnType<typeof createAgentService>;
