import type { ErrorCode } from '../errors/error-registry.js';
import type { CountryLookup } from './country-lookup.js';
import type { CounterRequirement, CounterResult, CountersPort } from './counters.js';
import type {
  ApprovalRule,
  AttachedPolicy,
  PolicyRequest,
  RateLimitRule,
  Rule,
  RuleRef,
  UsageCapRule,
} from './policy-types.js';
import { checkPureRule, counterRequirement, describeCounterRule } from './rule-checks.js';

export interface ApprovalQuery {
  policyId: string;
  rule: RuleRef;
  agent: string;
  credential: string;
  /** The approval the request names (its retry after `approval_pending`), if any. */
  approvalId?: string;
  covers: ApprovalRule['covers'];
  at: Date;
}

/**
 * Live approvals, read only. `covering` answers whether an approved, unexpired approval lets this
 * request pass this rule: for `covers: request`, the one the request names, if it is not used yet;
 * for a time box, any approval of this policy's rule for this agent and credential whose box has not
 * ended. Using up a one-request approval is the caller's step, after an `allow` that lists it: mark it
 * used with a conditional update (`… WHERE used_at IS NULL`) in the transaction that records the
 * decision, and refuse the request if another request used it first. Keeping the port read-only is
 * what lets a dry run ask it, and stops an approval being spent on a request a later rule refuses.
 */
export interface ApprovalsPort {
  covering(query: ApprovalQuery): Promise<{ id: string } | undefined>;
}

export interface PolicyEvaluatorDeps {
  counters: CountersPort;
  approvals: ApprovalsPort;
  countries: CountryLookup;
}

export interface PolicyRef {
  id: string;
  name: string;
}

export type PolicyDecision =
  | {
      outcome: 'allow';
      /** Approvals this decision relied on; one-request approvals among them must now be marked used. */
      approvals: { id: string; covers: ApprovalRule['covers'] }[];
    }
  | {
      outcome: 'deny';
      policy: PolicyRef;
      rule: RuleRef;
      code: Extract<ErrorCode, 'policy_denied' | 'rate_limited' | 'usage_cap_exhausted'>;
      message: string;
      /** When a counter refused: when its window resets (null for a cap `per: total`). */
      resetAt?: Date | null;
    }
  | {
      outcome: 'pending';
      policy: PolicyRef;
      rule: RuleRef;
      approval: { approvers: string[]; timeoutSeconds: number; covers: ApprovalRule['covers'] };
    };

export interface RuleVerdict {
  policy: PolicyRef;
  rule: RuleRef;
  verdict: 'pass' | 'fail' | 'pending';
  message: string;
  counter?: { remaining: number; resetAt: Date | null };
}

interface Located<R> {
  attached: AttachedPolicy;
  ref: RuleRef;
  rule: R;
}

const policyRef = (attached: AttachedPolicy): PolicyRef => ({ id: attached.id, name: attached.policy.name });

/** The rules of the given kinds across the policies, in evaluation order, with where each sits. */
const located = <K extends Rule['kind']>(
  policies: readonly AttachedPolicy[],
  kinds: readonly K[],
): Located<Extract<Rule, { kind: K }>>[] =>
  policies.flatMap((attached) =>
    attached.policy.rules.flatMap((rule, index) =>
      kinds.includes(rule.kind as K)
        ? [{ attached, ref: { index, kind: rule.kind }, rule: rule as Extract<Rule, { kind: K }> }]
        : [],
    ),
  );

const counterDenial = (
  entry: Located<RateLimitRule | UsageCapRule>,
  result: CounterResult,
): PolicyDecision => ({
  outcome: 'deny',
  policy: policyRef(entry.attached),
  rule: entry.ref,
  code: entry.rule.kind === 'rate_limit' ? 'rate_limited' : 'usage_cap_exhausted',
  message: `${describeCounterRule(entry.rule)} reached${result.resetAt ? `; it resets at ${result.resetAt.toISOString()}` : ''}`,
  resetAt: result.resetAt,
});

/**
 * Policies decide a request together: every rule of every attached policy must pass (AND). The
 * order is fixed so the refusal named is always the same one:
 * 1. the rules the request alone decides (time window, IP allowlist, geo), policies in attachment
 *    order and rules in document order; the first that fails is the refusal and nothing is counted;
 * 2. approvals, in the same order: the first approval rule no live approval covers parks the request
 *    (`pending`), after a read-only look at the counters so nobody is asked to approve a request a
 *    limit would refuse anyway; a parked request counts nothing;
 * 3. counters (rate limits, usage caps), consumed all-or-nothing in one call: if one refuses, none
 *    is counted, and the first refusing one in the order above is named.
 */
export const createPolicyEvaluator = (deps: PolicyEvaluatorDeps) => {
  const counterEntries = (policies: readonly AttachedPolicy[], request: PolicyRequest) => {
    const entries = located(policies, ['rate_limit', 'usage_cap']);
    const requirements: CounterRequirement[] = entries.map((entry) =>
      counterRequirement(entry.attached, entry.ref.index, entry.rule, request),
    );
    return { entries, requirements };
  };

  const approvalQuery = (entry: Located<ApprovalRule>, request: PolicyRequest): ApprovalQuery => ({
    policyId: entry.attached.id,
    rule: entry.ref,
    agent: request.agent,
    credential: request.credential,
    ...(request.approvalId === undefined ? {} : { approvalId: request.approvalId }),
    covers: entry.rule.covers,
    at: request.time,
  });

  const evaluate = async (
    policies: readonly AttachedPolicy[],
    request: PolicyRequest,
  ): Promise<PolicyDecision> => {
    for (const attached of policies) {
      for (const [index, rule] of attached.policy.rules.entries()) {
        const check = checkPureRule(rule, request, deps.countries);
        if (check !== undefined && !check.pass) {
          return {
            outcome: 'deny',
            policy: policyRef(attached),
            rule: { index, kind: rule.kind },
            code: 'policy_denied',
            message: check.message,
          };
        }
      }
    }

    const { entries, requirements } = counterEntries(policies, request);
    const approvals: { id: string; covers: ApprovalRule['covers'] }[] = [];
    for (const entry of located(policies, ['approval'])) {
      const covering = await deps.approvals.covering(approvalQuery(entry, request));
      if (covering !== undefined) {
        approvals.push({ id: covering.id, covers: entry.rule.covers });
        continue;
      }
      const peeked = requirements.length === 0 ? [] : await deps.counters.peek(requirements, request.time);
      const refused = peeked.findIndex((result) => !result.allowed);
      if (refused >= 0) return counterDenial(entries[refused]!, peeked[refused]!);
      return {
        outcome: 'pending',
        policy: policyRef(entry.attached),
        rule: entry.ref,
        approval: {
          approvers: entry.rule.approvers,
          timeoutSeconds: entry.rule.timeoutSeconds,
          covers: entry.rule.covers,
        },
      };
    }

    if (requirements.length > 0) {
      const results = await deps.counters.consume(requirements, request.time);
      const refused = results.findIndex((result) => !result.allowed);
      if (refused >= 0) return counterDenial(entries[refused]!, results[refused]!);
    }
    return { outcome: 'allow', approvals };
  };

  /**
   * Every rule's verdict for a dry run, and the decision `evaluate` would reach, without counting
   * anything or using an approval up: counters are only peeked and approvals only looked at.
   */
  const explain = async (
    policies: readonly AttachedPolicy[],
    request: PolicyRequest,
  ): Promise<{ decision: PolicyDecision; verdicts: RuleVerdict[] }> => {
    const verdicts: RuleVerdict[] = [];
    const { entries, requirements } = counterEntries(policies, request);
    const peeked = requirements.length === 0 ? [] : await deps.counters.peek(requirements, request.time);
    let decision: PolicyDecision | undefined;
    let pending: PolicyDecision | undefined;
    let counterRefusal: PolicyDecision | undefined;
    const approvals: { id: string; covers: ApprovalRule['covers'] }[] = [];

    for (const attached of policies) {
      for (const [index, rule] of attached.policy.rules.entries()) {
        const base = { policy: policyRef(attached), rule: { index, kind: rule.kind } };
        if (rule.kind === 'rate_limit' || rule.kind === 'usage_cap') {
          const at = entries.findIndex((entry) => entry.attached === attached && entry.ref.index === index);
          const result = peeked[at]!;
          const counter = { remaining: result.allowed ? result.remaining + 1 : 0, resetAt: result.resetAt };
          if (!result.allowed) counterRefusal ??= counterDenial(entries[at]!, result);
          verdicts.push({
            ...base,
            verdict: result.allowed ? 'pass' : 'fail',
            message: `${describeCounterRule(rule)}: ${counter.remaining} left`,
            counter,
          });
        } else if (rule.kind === 'approval') {
          const entry = { attached, ref: base.rule, rule };
          const covering = await deps.approvals.covering(approvalQuery(entry, request));
          if (covering !== undefined) approvals.push({ id: covering.id, covers: rule.covers });
          else
            pending ??= {
              outcome: 'pending',
              ...base,
              approval: {
                approvers: rule.approvers,
                timeoutSeconds: rule.timeoutSeconds,
                covers: rule.covers,
              },
            };
          verdicts.push({
            ...base,
            verdict: covering === undefined ? 'pending' : 'pass',
            message:
              covering === undefined
                ? `needs approval by one of ${rule.approvers.join(', ')}`
                : `covered by approval ${covering.id}`,
          });
        } else {
          const check = checkPureRule(rule, request, deps.countries)!;
          if (!check.pass) {
            decision ??= { outcome: 'deny', ...base, code: 'policy_denied', message: check.message };
          }
          verdicts.push({
            ...base,
            verdict: check.pass ? 'pass' : 'fail',
            message: check.pass ? 'passes' : check.message,
          });
        }
      }
    }
    return { decision: decision ?? counterRefusal ?? pending ?? { outcome: 'allow', approvals }, verdicts };
  };

  return { evaluate, explain };
};

export type PolicyEvaluator = ReturnType<typeof createPolicyEvaluator>;
