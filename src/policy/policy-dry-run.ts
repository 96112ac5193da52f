import type { AccessContext } from '../access/access-types.js';
import { decide } from '../access/decide.js';
import { VaultError } from '../errors/vault-error.js';
import { prepareRetrievalGrants, grantTargets } from '../grants/grant-repo.js';
import type { Clock } from '../lib/clock.js';
import { proxyRepo } from '../mcp-proxy/proxy-repo.js';
import type { Store } from '../store/database.js';
import type { GenerationCache } from '../store/generation-cache.js';
import type { PolicyEnforcement } from './policy-enforcement.js';

export interface DryRunInput {
  /** The agent, by id or name. */
  agent: string;
  /** The credential's name. */
  credential: string;
  /** The client address to assume; none: no allowlist matches and the country is unknown. */
  ip?: string | undefined;
  /** The moment to assume (ISO 8601); now when absent. */
  at?: string | undefined;
  /** The client's country to assume (ISO 3166-1 alpha-2), instead of looking the address up. */
  country?: string | undefined;
  /** The agent key the request would come with (policies attached to it apply). */
  agentKey?: string | undefined;
  /** An MCP proxy (id or name) and proxy key the request would come through. */
  proxy?: string | undefined;
  proxyKey?: string | undefined;
}

export interface DryRunRule {
  policy: string;
  rule: string;
  verdict: 'pass' | 'fail' | 'pending';
  message: string;
  remaining?: number | undefined;
  resetAt?: string | null | undefined;
}

export interface DryRunResult {
  decision: 'allow' | 'deny' | 'pending';
  /** The refusal's code when denied. */
  code: string | null;
  message: string;
  /** The grant step alone: its outcome and the grant it found. */
  grant: { outcome: 'allow' | 'deny'; code: string | null; grantId: string | null };
  policies: { name: string; attachedTo: { kind: string; id: string } }[];
  rules: DryRunRule[];
  at: string;
}

export interface PolicyDryRunDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  access: GenerationCache;
  clock: Clock;
  enforcement: Pick<PolicyEnforcement, 'explain'>;
}

/**
 * `policy test`: the decision an agent's request would get, rule by rule, through the same grant
 * lookup, decision and attached policies as the agent path, without counting anything (counters are
 * peeked) or using an approval. The channel is `reveal`'s grant check; the policies are the same on
 * every channel.
 */
export const createPolicyDryRun = ({ store, access, clock, enforcement }: PolicyDryRunDeps) => {
  const grantsFor = prepareRetrievalGrants(store, access);

  return async (namespace: string, input: DryRunInput): Promise<DryRunResult> => {
    const at = input.at === undefined ? clock.now() : new Date(input.at);
    if (Number.isNaN(at.getTime())) {
      throw new VaultError('invalid_request', `at: "${input.at?.slice(0, 40)}" is not an ISO 8601 time.`);
    }
    const agent = await grantTargets.findAgent(store.db, namespace, input.agent);
    if (!agent)
      throw new VaultError('agent_not_found', `No agent "${input.agent.slice(0, 64)}" (id or name).`);
    // Attachments hold the proxy's id: one named by name is looked up (an unknown one is taken as given).
    const proxy =
      input.proxy === undefined ? undefined : await proxyRepo.findByName(store.db, namespace, input.proxy);
    const view = await access.view();
    const { grants, credential } = await grantsFor(view, {
      namespace,
      agentId: agent.id,
      name: input.credential,
    });
    const context: Omit<AccessContext, 'policies'> = {
      namespace,
      agent: {
        agentId: agent.id,
        agentName: agent.name,
        namespace,
        method: 'api_key',
        credentialRef: input.agentKey ?? null,
      },
      service: input.credential,
      credential,
      grants,
      requestedScopes: [],
      channel: 'reveal',
      ...(input.proxy === undefined
        ? {}
        : {
            proxy: {
              id: proxy?.id ?? input.proxy,
              name: proxy?.name ?? input.proxy,
              keyId: input.proxyKey ?? null,
            },
          }),
      client: { ip: input.ip ?? null, userAgent: null, country: input.country?.toUpperCase() },
      now: at,
      attributes: {},
    };
    const granted = decide({ ...context, policies: [] });
    const grant = granted.grant;
    const explained = await enforcement.explain(view, context, grant);
    const rules: DryRunRule[] = explained.verdicts.map((verdict) => ({
      policy: verdict.policy.name,
      rule: `rules[${verdict.rule.index}].${verdict.rule.kind}`,
      verdict: verdict.verdict,
      message: verdict.message,
      ...(verdict.counter
        ? { remaining: verdict.counter.remaining, resetAt: verdict.counter.resetAt?.toISOString() ?? null }
        : {}),
    }));
    const policyDecision = explained.decision;
    let decision: DryRunResult['decision'];
    let code: string | null = null;
    let message: string;
    if (granted.outcome === 'deny') {
      [decision, code, message] = ['deny', granted.code, `the grant step refuses: ${granted.code}`];
    } else if (policyDecision.outcome === 'deny') {
      decision = 'deny';
      code = policyDecision.code;
      message = `policy "${policyDecision.policy.name}", rules[${policyDecision.rule.index}].${policyDecision.rule.kind}: ${policyDecision.message}`;
    } else if (policyDecision.outcome === 'pending') {
      decision = 'pending';
      message = `policy "${policyDecision.policy.name}" needs approval by one of ${policyDecision.approval.approvers.join(', ')}`;
    } else {
      decision = 'allow';
      message = explained.policies.length === 0 ? 'allowed by the grant; no policy is attached' : 'allowed';
    }
    return {
      decision,
      code,
      message,
      grant: {
        outcome: granted.outcome === 'deny' ? 'deny' : 'allow',
        code: granted.outcome === 'deny' ? granted.code : null,
        grantId: grant?.id ?? null,
      },
      policies: explained.policies.map((attached) => ({
        name: attached.policy.name,
        attachedTo: { kind: attached.attachment.kind, id: attached.attachment.id },
      })),
      rules,
      at: at.toISOString(),
    };
  };
};

export type PolicyDryRun = ReturnType<typeof createPolicyDryRun>;
