import type { AccessContext, PolicyCheck, PolicyVerdict } from '../access/access-types.js';
import type { Grant } from '../grants/grant-types.js';
import type { Store } from '../store/database.js';
import { accessScope, type GenerationCache, type GenerationView } from '../store/generation-cache.js';
import { type CountryLookup, createCountryLookup } from './country-lookup.js';
import type { CountersPort } from './counters.js';
import {
  type ApprovalsPort,
  createPolicyEvaluator,
  type PolicyDecision,
  type RuleVerdict,
} from './evaluate-policies.js';
import { policyRefusal } from './policy-refusal.js';
import { policyRepo } from './policy-repo.js';
import type { Attachment, AttachedPolicy, PolicyRequest } from './policy-types.js';

/** The request as the decision point sees it, before its policies are known. */
export type PathContext = Omit<AccessContext, 'policies'>;

export interface PolicyEnforcementDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  /** Caches the namespace's attachments for one access generation, like the grants. */
  access: GenerationCache;
  /** Rate limits and usage caps (`VaultServices.policyCounters`). */
  counters: CountersPort;
  /** Live approvals, read only (the approvals step implements it). */
  approvals: ApprovalsPort;
  /** The geo rule's lookup when the client's country is not already known; opened when first needed. */
  countries?: CountryLookup | undefined;
}

/** An approvals port for a vault with no approvals yet: nothing covers a request, so it is parked. */
export const noApprovals: ApprovalsPort = { covering: () => Promise.resolve(undefined) };

const attachmentKey = (kind: Attachment['kind'], id: string) => `${kind}\u0000${id}`;

/** The kinds in path order: who asks, with what, under which grant, for what, through which proxy. */
const pathOf = (context: PathContext, grant: Grant | undefined): Attachment[] => {
  const path: Attachment[] = [{ kind: 'agent', id: context.agent.agentId }];
  if (context.agent.method === 'api_key' && context.agent.credentialRef) {
    path.push({ kind: 'agent_key', id: context.agent.credentialRef });
  }
  if (grant) path.push({ kind: 'grant', id: grant.id });
  if (context.credential) path.push({ kind: 'credential', id: context.credential.id });
  if (context.proxy) {
    // Attachments are stored by the proxy's id; one made before proxies were stored may hold its name.
    path.push({ kind: 'proxy', id: context.proxy.id });
    if (context.proxy.name !== context.proxy.id) path.push({ kind: 'proxy', id: context.proxy.name });
    if (context.proxy.keyId) path.push({ kind: 'proxy_key', id: context.proxy.keyId });
  }
  return path;
};

/** What the rules read about a request: ids, the client's address and country, the time. */
export const policyRequestOf = (context: PathContext, grant: Grant | undefined): PolicyRequest => {
  const approvalId = context.attributes.approval_id;
  return {
    agent: context.agent.agentId,
    credential: context.credential?.id ?? grant?.credentialId ?? context.service,
    ...(context.agent.method === 'api_key' && context.agent.credentialRef
      ? { agentKey: context.agent.credentialRef }
      : {}),
    ...(grant ? { grant: grant.id } : {}),
    ...(context.proxy ? { proxy: context.proxy.id } : {}),
    ...(context.proxy?.keyId ? { proxyKey: context.proxy.keyId } : {}),
    ...(context.endUser === undefined ? {} : { endUser: context.endUser }),
    // No address (an in-process caller): no allowlist matches it, and its country is unknown.
    clientAddress: context.client.ip ?? '',
    ...(context.client.country ? { country: context.client.country } : {}),
    time: context.now,
    ...(approvalId === undefined ? {} : { approvalId }),
  };
};

const ruleName = (rule: { index: number; kind: string }) => `rules[${rule.index}].${rule.kind}`;

/** The evaluator's decision as the checks `decide()` reads: none when allowed, else the one verdict. */
const checksOf = (decision: PolicyDecision, now: Date): PolicyCheck[] => {
  if (decision.outcome === 'allow') {
    // The approvals it relied on: the agent path spends the one-request ones (agent-request.ts).
    return decision.approvals.map((approval) => ({
      policy: 'approval',
      rule: approval.id,
      evaluate: () => ({
        outcome: 'pass',
        approval: { id: approval.id, oneRequest: approval.covers.kind === 'request' },
      }),
    }));
  }
  const ref = { policy: decision.policy.name, rule: ruleName(decision.rule) };
  let verdict: PolicyVerdict;
  if (decision.outcome === 'deny') {
    const refusal = policyRefusal(decision, now);
    const retryAfter = refusal.details?.retryAfterSeconds as number | undefined;
    verdict = { outcome: 'deny', code: refusal.code, message: refusal.message, retryAfter };
  } else {
    // The agent path parks the request (src/approvals/): it makes the approval this asks for.
    const { approvers, timeoutSeconds, covers } = decision.approval;
    verdict = {
      outcome: 'pending',
      approval: {
        ...ref,
        approvalId: '',
        retryAfter: Math.min(timeoutSeconds, 30),
        ask: {
          policyId: decision.policy.id,
          ruleIndex: decision.rule.index,
          approvers,
          timeoutSeconds,
          coversSeconds: covers.kind === 'request' ? null : covers.seconds,
        },
      },
    };
  }
  return [{ ...ref, evaluate: () => verdict }];
};

/**
 * The policies side of the decision point: which policies are attached to anything on a request's
 * path, and what they decide. The namespace's attachments (each with its policy's current version)
 * are read once per access generation and kept like the grants: a policy change, an attach or a
 * detach moves the generation (migration 0010), so the next request on every replica reads afresh.
 *
 * A policy attached to several things on one path is evaluated once, for the first of them in path
 * order (agent, agent key, grant, credential, proxy, proxy key): its counters count the request once.
 */
export const createPolicyEnforcement = ({
  store,
  access,
  counters,
  approvals,
  countries,
}: PolicyEnforcementDeps) => {
  let lookup = countries;
  const lazyCountries: CountryLookup = {
    countryOf: (address) => (lookup ??= createCountryLookup()).countryOf(address),
  };
  const evaluator = createPolicyEvaluator({ counters, approvals, countries: lazyCountries });

  const attachedIn = access.lookup({
    key: (namespace: string) => namespace,
    load: async (namespace: string) => {
      const byTarget = new Map<string, AttachedPolicy[]>();
      for (const row of await policyRepo.attachedInNamespace(store.db, namespace)) {
        const key = attachmentKey(row.attachment.kind, row.attachment.targetId);
        const attached: AttachedPolicy = {
          id: row.policyId,
          policy: row.policy,
          attachment: { kind: row.attachment.kind, id: row.attachment.targetId },
        };
        byTarget.set(key, [...(byTarget.get(key) ?? []), attached]);
      }
      return byTarget;
    },
    maxEntries: 10_000,
    scopes: (namespace: string) => [accessScope.policies(namespace)],
    name: 'policies',
  });

  /** Every policy attached to anything on the path, in path order, each once. */
  const attachedTo = async (view: GenerationView, context: PathContext, grant: Grant | undefined) => {
    const byTarget = await attachedIn(view, context.namespace);
    if (byTarget.size === 0) return [];
    const seen = new Set<string>();
    const found: AttachedPolicy[] = [];
    for (const step of pathOf(context, grant)) {
      for (const attached of byTarget.get(attachmentKey(step.kind, step.id)) ?? []) {
        if (seen.has(attached.id)) continue;
        seen.add(attached.id);
        found.push(attached);
      }
    }
    return found;
  };

  return {
    attachedTo,

    /**
     * The checks for `decide()`: the policies are evaluated here, counters consumed (all or nothing),
     * once the grant has allowed the use, and the outcome is handed to the pure decision.
     */
    async policiesFor(view: GenerationView, context: PathContext, grant: Grant): Promise<PolicyCheck[]> {
      const policies = await attachedTo(view, context, grant);
      if (policies.length === 0) return [];
      return checksOf(await evaluator.evaluate(policies, policyRequestOf(context, grant)), context.now);
    },

    /** A dry run: every rule's verdict and the decision, counters peeked, approvals only looked at. */
    async explain(
      view: GenerationView,
      context: PathContext,
      grant: Grant | undefined,
    ): Promise<{ decision: PolicyDecision; verdicts: RuleVerdict[]; policies: AttachedPolicy[] }> {
      const policies = await attachedTo(view, context, grant);
      const { decision, verdicts } = await evaluator.explain(policies, policyRequestOf(context, grant));
      return { decision, verdicts, policies };
    },
  };
};

export type PolicyEnforcement = ReturnType<typeof createPolicyEnforcement>;
