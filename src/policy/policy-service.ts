import type { Kysely } from 'kysely';
import { type AuditContext, auditedChange } from '../audit/audit-context.js';
import type { AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { VaultError, vaultError } from '../errors/vault-error.js';
import { grantRepo, grantTargets } from '../grants/grant-repo.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { proxyRepo } from '../mcp-proxy/proxy-repo.js';
import type { Database } from '../store/schema.js';
import { loadPolicyDocument } from './policy-document.js';
import {
  type AttachmentKind,
  type Db,
  policyRepo,
  type PolicyVersion,
  type StoredAttachment,
  type StoredPolicy,
} from './policy-repo.js';

export interface PolicyServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

/** What `attach` and `detach` name: the kind, and the entity as a person writes it (name or id). */
export interface AttachmentTarget {
  kind: AttachmentKind;
  target: string;
}

/** A policy as `show` answers it: its current version and where it is attached. */
export interface PolicyDetails extends StoredPolicy {
  attachments: StoredAttachment[];
}

/** The text of a document, at most this long: a policy is at most 100 rules of a few lines each. */
const maxDocumentLength = 64 * 1024;

const actorRef = (ctx: AuditContext) => `${ctx.actor.type}:${ctx.actor.id ?? '-'}`;

const parse = (document: string) => {
  if (document.length > maxDocumentLength) {
    throw vaultError('invalid_policy', `(document): longer than ${maxDocumentLength} characters`, {
      details: { problems: [`(document): longer than ${maxDocumentLength} characters`] },
    });
  }
  return loadPolicyDocument(document);
};

const policyFacts = (policy: Pick<StoredPolicy, 'id' | 'name' | 'version'>): AuditDetails => ({
  policy_id: policy.id,
  policy_name: policy.name,
  version: policy.version,
});

/**
 * Policies: named documents, versioned (each update is a new version and the newest decides), and
 * attached to agents, agent keys, grants, credentials, MCP proxies and proxy keys. Every change is
 * audited in its own transaction, and moves the access generation (migration 0010), so it decides
 * the very next request on every replica.
 */
export const createPolicyService = ({ db, clock, audit }: PolicyServiceDeps) => {
  const audited = { db, audit };

  const policyOrFail = async (trx: Db, namespace: string, name: string) => {
    const found = await policyRepo.findByName(trx, namespace, name);
    if (!found) {
      throw new VaultError(
        'policy_not_found',
        `No policy named "${name.slice(0, 64)}" in namespace "${namespace}".`,
      );
    }
    return found;
  };

  /**
   * The id an attachment stores for what the person named. Agents and credentials are named or given
   * by id (stored by id, so a rename keeps the attachment); keys and grants by id. MCP proxies likewise
   * (named or given by id, stored by id); proxy keys by id. Naming something that does not exist is
   * refused, as for every other kind, so a typo cannot leave a policy that binds nothing.
   */
  const resolveTarget = async (
    trx: Db,
    namespace: string,
    { kind, target }: AttachmentTarget,
  ): Promise<{ id: string; facts: AuditDetails }> => {
    switch (kind) {
      case 'agent': {
        const agent = await grantTargets.findAgent(trx, namespace, target);
        if (!agent)
          throw new VaultError('agent_not_found', `No agent "${target.slice(0, 64)}" (id or name).`);
        return { id: agent.id, facts: { agent_id: agent.id, agent_name: agent.name } };
      }
      case 'credential': {
        const credential = await grantTargets.findCredential(trx, namespace, target);
        if (!credential) {
          throw new VaultError('credential_not_found', `No credential named "${target.slice(0, 64)}".`);
        }
        return {
          id: credential.id,
          facts: { credential_id: credential.id, credential_name: credential.name },
        };
      }
      case 'agent_key': {
        const key = await trx
          .selectFrom('agent_keys')
          .select(['id', 'agent_id'])
          .where('namespace', '=', namespace)
          .where('id', '=', target)
          .executeTakeFirst();
        if (!key) throw new VaultError('agent_key_not_found', `No agent key "${target.slice(0, 64)}".`);
        return { id: key.id, facts: { agent_id: key.agent_id } };
      }
      case 'grant': {
        const grant = await grantRepo.findById(trx, namespace, target);
        if (!grant) throw new VaultError('grant_not_found', `No grant "${target.slice(0, 64)}".`);
        return { id: grant.id, facts: { grant_id: grant.id } };
      }
      case 'proxy': {
        const proxy =
          (await proxyRepo.findByName(trx, namespace, target)) ??
          (await proxyRepo
            .findById(trx, target)
            .then((found) => (found?.namespace === namespace ? found : undefined)));
        if (!proxy) {
          throw new VaultError('mcp_proxy_not_found', `No MCP proxy "${target.slice(0, 64)}" (id or name).`);
        }
        return { id: proxy.id, facts: { proxy_id: proxy.id, proxy_name: proxy.name } };
      }
      case 'proxy_key': {
        const key = await trx
          .selectFrom('mcp_proxy_keys')
          .select(['id', 'proxy_id', 'agent_id'])
          .where('namespace', '=', namespace)
          .where('id', '=', target)
          .executeTakeFirst();
        if (!key) throw new VaultError('proxy_key_not_found', `No proxy key "${target.slice(0, 64)}".`);
        return { id: key.id, facts: { proxy_id: key.proxy_id, agent_id: key.agent_id } };
      }
    }
  };

  return {
    async list(namespace: string): Promise<(StoredPolicy & { attachmentCount: number })[]> {
      assertNamespace(namespace);
      const policies = await policyRepo.list(db, namespace);
      const counts = await db
        .selectFrom('policy_attachments')
        .select(['policy_id', db.fn.countAll<number>().as('n')])
        .where('namespace', '=', namespace)
        .groupBy('policy_id')
        .execute();
      const byPolicy = new Map(counts.map((row) => [row.policy_id, Number(row.n)]));
      return policies.map((policy) => ({ ...policy, attachmentCount: byPolicy.get(policy.id) ?? 0 }));
    },

    async show(namespace: string, name: string): Promise<PolicyDetails> {
      assertNamespace(namespace);
      const policy = await policyOrFail(db, namespace, name);
      return { ...policy, attachments: await policyRepo.attachments(db, policy.id) };
    },

    async versions(namespace: string, name: string): Promise<PolicyVersion[]> {
      assertNamespace(namespace);
      const policy = await policyOrFail(db, namespace, name);
      return policyRepo.versions(db, policy.id);
    },

    create: (namespace: string, document: string, ctx: AuditContext): Promise<PolicyDetails> =>
      auditedChange(
        audited,
        { ctx, namespace, action: 'policy.create', target: { type: 'policy', id: null } },
        async (trx, record) => {
          assertNamespace(namespace);
          const policy = parse(document);
          if (await policyRepo.findByName(trx, namespace, policy.name)) {
            throw new VaultError('policy_exists', `A policy named "${policy.name}" already exists.`);
          }
          const now = clock.now().toISOString();
          const id = newId();
          await policyRepo.insertPolicy(trx, { id, namespace, name: policy.name, createdAt: now });
          await policyRepo.insertVersion(trx, {
            id: newId(),
            namespace,
            policyId: id,
            version: 1,
            document,
            policy,
            createdAt: now,
            createdBy: actorRef(ctx),
          });
          const stored = await policyOrFail(trx, namespace, policy.name);
          await record({ target: { type: 'policy', id: stored.name }, details: policyFacts(stored) });
          return { ...stored, attachments: [] };
        },
      ),

    update: (namespace: string, name: string, document: string, ctx: AuditContext): Promise<PolicyDetails> =>
      auditedChange(
        audited,
        { ctx, namespace, action: 'policy.update', target: { type: 'policy', id: name.slice(0, 200) } },
        async (trx, record) => {
          assertNamespace(namespace);
          const current = await policyOrFail(trx, namespace, name);
          const policy = parse(document);
          if (policy.name !== current.name) {
            const problem = `name: must stay "${current.name}" (a policy is not renamed; create one under the new name)`;
            throw vaultError('invalid_policy', `The policy document is not valid: ${problem}`, {
              details: { problems: [problem] },
            });
          }
          const now = clock.now().toISOString();
          const version = current.version + 1;
          // Conditional on the version read: of two updates at once, one wins and the other is told.
          if (!(await policyRepo.setCurrentVersion(trx, current.id, current.version, version, now))) {
            throw new VaultError(
              'store_busy',
              `Another update of policy "${name}" committed first; show it, then update again.`,
            );
          }
          await policyRepo.insertVersion(trx, {
            id: newId(),
            namespace,
            policyId: current.id,
            version,
            document,
            policy,
            createdAt: now,
            createdBy: actorRef(ctx),
          });
          const stored = await policyOrFail(trx, namespace, name);
          await record({ details: { ...policyFacts(stored), previous_version: current.version } });
          return { ...stored, attachments: await policyRepo.attachments(trx, current.id) };
        },
      ),

    /** Removes the policy and its history; refused while attached unless `force` detaches it too. */
    remove: (namespace: string, name: string, ctx: AuditContext, { force = false } = {}) =>
      auditedChange(
        audited,
        { ctx, namespace, action: 'policy.delete', target: { type: 'policy', id: name.slice(0, 200) } },
        async (trx, record) => {
          assertNamespace(namespace);
          const current = await policyOrFail(trx, namespace, name);
          const attachments = await policyRepo.attachments(trx, current.id);
          if (attachments.length > 0 && !force) {
            throw new VaultError(
              'policy_in_use',
              `Policy "${name}" is attached ${attachments.length} time(s); detach it first, or remove it with --force.`,
            );
          }
          await policyRepo.deletePolicy(trx, current.id);
          await record({ details: { ...policyFacts(current), detached: attachments.length } });
          return { ...current, attachments };
        },
      ),

    /** Attaches the policy; attaching it again to the same entity changes nothing. */
    attach: (namespace: string, name: string, target: AttachmentTarget, ctx: AuditContext) =>
      auditedChange(
        audited,
        {
          ctx,
          namespace,
          action: 'policy.attach',
          target: { type: 'policy', id: name.slice(0, 200) },
          details: { target_kind: target.kind, target_ref: target.target.slice(0, 200) },
        },
        async (trx, record) => {
          assertNamespace(namespace);
          const policy = await policyOrFail(trx, namespace, name);
          const resolved = await resolveTarget(trx, namespace, target);
          const existing = await policyRepo.findAttachment(trx, policy.id, target.kind, resolved.id);
          const attachment: StoredAttachment = existing ?? {
            id: newId(),
            policyId: policy.id,
            kind: target.kind,
            targetId: resolved.id,
            createdAt: clock.now().toISOString(),
            createdBy: actorRef(ctx),
          };
          if (!existing) await policyRepo.insertAttachment(trx, namespace, attachment);
          await record({
            details: {
              ...policyFacts(policy),
              ...resolved.facts,
              target_id: resolved.id,
              attachment_id: attachment.id,
              already_attached: existing !== undefined,
            },
          });
          return { attachment, alreadyAttached: existing !== undefined };
        },
      ),

    /** Detaches the policy; detaching what is not attached changes nothing and says so. */
    detach: (namespace: string, name: string, target: AttachmentTarget, ctx: AuditContext) =>
      auditedChange(
        audited,
        {
          ctx,
          namespace,
          action: 'policy.detach',
          target: { type: 'policy', id: name.slice(0, 200) },
          details: { target_kind: target.kind, target_ref: target.target.slice(0, 200) },
        },
        async (trx, record) => {
          assertNamespace(namespace);
          const policy = await policyOrFail(trx, namespace, name);
          // An entity deleted since is detached by the id it had: try the reference as an id too.
          const resolved = await resolveTarget(trx, namespace, target).catch((error: unknown) => {
            if (error instanceof VaultError && error.status === 404)
              return { id: target.target, facts: {} as AuditDetails };
            throw error;
          });
          const existing = await policyRepo.findAttachment(trx, policy.id, target.kind, resolved.id);
          if (existing) await policyRepo.deleteAttachment(trx, existing.id);
          await record({
            details: {
              ...policyFacts(policy),
              ...resolved.facts,
              target_id: resolved.id,
              was_attached: existing !== undefined,
            },
          });
          return { detached: existing !== undefined };
        },
      ),
  };
};

export type PolicyService = ReturnType<typeof createPolicyService>;
