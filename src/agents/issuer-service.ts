import type { Kysely } from 'kysely';
import type { AuditAction, AuditRecorder, AuditTarget } from '../audit/audit-types.js';
import { agentSubject } from '../audit/audit-subjects.js';
import { assertNamespace } from '../credentials/credential-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Database } from '../store/schema.js';
import { isUniqueViolation } from '../store/store-errors.js';
import { type AuditContext, auditedChange, type RecordAllowed } from '../audit/audit-context.js';
import { bindingRepo, type Db, issuerRepo, toBinding, toTrustedIssuer } from './agent-repo.js';
import { assertAudience, assertIssuerName, validateBindingClaims } from './agent-rules.js';
import { requireAgent } from './agent-service.js';
import type { TrustedIssuer, WorkloadBinding } from './agent-types.js';
import { checkFetchUrl, type RemoteKeySets } from './remote-keys.js';

export interface IssuerServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  remoteKeys: Pick<RemoteKeySets, 'discover'>;
  /** The audience a trusted issuer's tokens must carry when the admin names none. */
  vaultAudience: string;
}

export interface TrustIssuerInput {
  name: string;
  issuer: string;
  audience?: string | undefined;
}

export interface BindInput {
  /** Name of a trusted issuer of the namespace. */
  issuer: string;
  claims: unknown;
}

export type BindingView = WorkloadBinding & { issuerName: string };

/** OIDC workload federation: trusted issuers, and bindings of their tokens' claims to agents. */
export const createIssuerService = ({ db, clock, audit, remoteKeys, vaultAudience }: IssuerServiceDeps) => {
  const findIssuer = async (trx: Db, namespace: string, name: string): Promise<TrustedIssuer> => {
    assertNamespace(namespace);
    const issuer = await issuerRepo.findByName(trx, namespace, name);
    if (!issuer) {
      throw new VaultError(
        'issuer_not_found',
        `No trusted issuer named "${name.slice(0, 64)}" in namespace "${namespace}"; see \`tokenvault issuer list\`.`,
      );
    }
    return issuer;
  };

  /** Runs a change in one audited transaction; a refusal is filed against the target as it was named. */
  const change = <T>(
    ctx: AuditContext,
    namespace: string,
    action: AuditAction,
    target: AuditTarget,
    run: (trx: Db, record: RecordAllowed) => Promise<T>,
  ) => auditedChange({ db, audit }, { ctx, namespace, action, target }, run);

  /** Checked before the transaction, with the discovery fetch, so a typo shows here. */
  const checkTrust = async (namespace: string, input: TrustIssuerInput) => {
    assertNamespace(namespace);
    assertIssuerName(input.name);
    const issuer = checkFetchUrl(input.issuer, 'issuer URL', { query: false });
    const audience = input.audience ?? vaultAudience;
    assertAudience(audience);
    if (await issuerRepo.findByName(db, namespace, input.name)) throw issuerNameTaken(namespace, input.name);
    const twin = (await issuerRepo.findByIssuer(db, issuer, namespace)).find((i) => i.audience === audience);
    if (twin) {
      throw new VaultError(
        'issuer_exists',
        `${issuer} is already trusted for audience ${audience} as "${twin.name}".`,
      );
    }
    // Checked now, so a typo or an unreachable issuer shows here rather than at the first workload login.
    await remoteKeys.discover(issuer);
    return { issuer, audience };
  };

  const issuerNameTaken = (namespace: string, name: string) =>
    new VaultError(
      'issuer_exists',
      `A trusted issuer named "${name}" already exists in namespace "${namespace}".`,
    );

  const trust =
    (namespace: string, input: TrustIssuerInput) =>
    async (
      trx: Db,
      record: RecordAllowed,
      { issuer, audience }: { issuer: string; audience: string },
    ): Promise<TrustedIssuer> => {
      const row = {
        id: newId(),
        namespace,
        name: input.name,
        issuer,
        audience,
        created_at: clock.now().toISOString(),
      };
      try {
        await issuerRepo.insert(trx, row);
      } catch (error) {
        if (isUniqueViolation(error)) throw issuerNameTaken(namespace, input.name);
        throw error;
      }
      await record({ target: { type: 'issuer', id: row.id }, details: { name: row.name, issuer, audience } });
      return toTrustedIssuer(row);
    };

  const remove =
    (namespace: string, name: string) =>
    async (trx: Db, record: RecordAllowed): Promise<TrustedIssuer> => {
      const issuer = await findIssuer(trx, namespace, name);
      const bindings = await bindingRepo.removeForIssuer(trx, issuer.id);
      await issuerRepo.remove(trx, issuer.id);
      await record({
        target: { type: 'issuer', id: issuer.id },
        details: {
          name: issuer.name,
          issuer: issuer.issuer,
          bindings_deleted: Number(bindings.numDeletedRows),
        },
      });
      return issuer;
    };

  const bind =
    (namespace: string, agentRef: string, input: BindInput) =>
    async (trx: Db, record: RecordAllowed): Promise<BindingView> => {
      const claims = validateBindingClaims(input.claims);
      const agent = await requireAgent(trx, namespace, agentRef);
      const issuer = await findIssuer(trx, namespace, input.issuer);
      // Bindings with identical claims would make one token name two agents.
      const twin = (await bindingRepo.listForIssuers(trx, [issuer.id])).find(
        (b) => JSON.stringify(b.claims) === JSON.stringify(claims),
      );
      if (twin) {
        throw new VaultError(
          'binding_exists',
          `Tokens of "${issuer.name}" with these claims are already bound (binding ${twin.id}); a token must map to one agent.`,
        );
      }
      const row = {
        id: newId(),
        namespace,
        issuer_id: issuer.id,
        agent_id: agent.id,
        claims: JSON.stringify(claims),
        created_at: clock.now().toISOString(),
      };
      await bindingRepo.insert(trx, row);
      await record({
        target: { type: 'agent', id: agent.id },
        details: {
          ...agentSubject(agent),
          binding_id: row.id,
          issuer: issuer.name,
          claims: Object.entries(claims).map(([k, v]) => `${k}=${v}`),
        },
      });
      return { ...toBinding(row), issuerName: issuer.name };
    };

  const unbind =
    (namespace: string, agentRef: string, bindingId: string) =>
    async (trx: Db, record: RecordAllowed): Promise<WorkloadBinding> => {
      const agent = await requireAgent(trx, namespace, agentRef);
      const row = await bindingRepo.find(trx, agent.id, bindingId);
      if (!row) {
        throw new VaultError(
          'binding_not_found',
          `Agent "${agent.name}" has no workload binding with id "${bindingId.slice(0, 64)}".`,
        );
      }
      await bindingRepo.remove(trx, row.id);
      await record({
        target: { type: 'agent', id: agent.id },
        details: { ...agentSubject(agent), binding_id: row.id },
      });
      return toBinding(row);
    };

  return {
    /** Trusts an issuer after fetching its discovery document. */
    trust: (namespace: string, input: TrustIssuerInput, ctx: AuditContext) =>
      auditedChange(
        { db, audit },
        {
          ctx,
          namespace,
          action: 'issuer.trust',
          target: { type: 'issuer', id: input.name },
          prepare: () => checkTrust(namespace, input),
        },
        trust(namespace, input),
      ),

    list: (namespace: string): Promise<TrustedIssuer[]> => {
      assertNamespace(namespace);
      return issuerRepo.list(db, namespace);
    },

    get: (namespace: string, name: string): Promise<TrustedIssuer> => findIssuer(db, namespace, name),

    /** Stops trusting the issuer; its bindings go with it. */
    remove: (namespace: string, name: string, ctx: AuditContext) =>
      change(ctx, namespace, 'issuer.delete', { type: 'issuer', id: name }, remove(namespace, name)),

    /** Maps tokens of a trusted issuer whose claims have exactly these values to the agent. */
    bind: (namespace: string, agentRef: string, input: BindInput, ctx: AuditContext) =>
      change(ctx, namespace, 'agent.bind', { type: 'agent', id: agentRef }, bind(namespace, agentRef, input)),

    unbind: (namespace: string, agentRef: string, bindingId: string, ctx: AuditContext) =>
      change(
        ctx,
        namespace,
        'agent.unbind',
        { type: 'agent', id: agentRef },
        unbind(namespace, agentRef, bindingId),
      ),

    async listBindings(namespace: string, agentRef: string): Promise<BindingView[]> {
      const agent = await requireAgent(db, namespace, agentRef);
      const rows = await bindingRepo.listForAgent(db, agent.id);
      return rows.map(({ issuer_name, ...row }) => ({ ...toBinding(row), issuerName: issuer_name }));
    },
  };
};

export type IssuerService = ReturnType<typeof createIssuerService>;
