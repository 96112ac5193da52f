import { vaultError, type VaultError } from '../errors/vault-error.js';
import type { PolicyDecision } from './evaluate-policies.js';

type Denial = Extract<PolicyDecision, { outcome: 'deny' }>;

/**
 * The error a refusal becomes, built in one place so every path (retrieval, proxies, MCP tools)
 * words it the same: the message names the policy, the rule and why; `details` carries the same for
 * the audit event, and `retryAfterSeconds` when a counter's window will reset.
 */
export const policyRefusal = (denial: Denial, now: Date): VaultError => {
  const resetAt = denial.resetAt ?? undefined;
  return vaultError(
    denial.code,
    `Refused by policy "${denial.policy.name}", rule ${denial.rule.index} (${denial.rule.kind}): ${denial.message}.`,
    {
      details: {
        policy: denial.policy,
        rule: denial.rule,
        reason: denial.message,
        ...(resetAt === undefined
          ? {}
          : { retryAfterSeconds: Math.max(1, Math.ceil((resetAt.getTime() - now.getTime()) / 1000)) }),
      },
    },
  );
};
