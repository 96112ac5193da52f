import { earliestExpiry, type GrantSelection, isPast, selectGrant } from '../grants/grant-rules.js';
import type { Grant } from '../grants/grant-types.js';
import type {
  AccessContext,
  AccessDecision,
  AllowedDecision,
  AllowedFields,
  ApprovalUse,
  Channel,
  CredentialState,
  DeniedDecision,
} from './access-types.js';

/**
 * The decision point (DESIGN "The decision point"): every use of a credential, whatever the channel,
 * is decided here, from plain values, in this order:
 *
 * 1. the grant: a live grant of the agent covers the requested scopes (grants are checked before
 *    anything about the credential, and "no such credential" answers like "no grant", so a caller
 *    cannot learn which credentials exist);
 * 2. the credential: active and not expired;
 * 3. the channel: revealing the secret needs a grant that reveals; the proxies do not;
 * 4. the policies attached to anything on the path, every rule of each (evaluated by the agent path
 *    once the grant allows, src/policy/policy-enforcement.ts; the first refusing rule decides).
 *
 * Its outcome is also the audit event's decision and reason.
 */
export const decide = (context: AccessContext): AccessDecision => {
  const selection: GrantSelection = context.credential
    ? selectGrant({ grants: context.grants, requestedScopes: context.requestedScopes, now: context.now })
    : { selected: false, code: 'credential_not_granted' };
  if (!selection.selected) {
    return deny({ code: selection.code, message: selection.message, grant: selection.grant });
  }
  const { grant } = selection;
  const credential = context.credential as CredentialState;

  const unusable = credentialRefusal(credential, context.now);
  if (unusable) return deny({ code: unusable, grant });

  if (!channelAllows(context.channel, grant)) return deny({ code: 'reveal_not_granted', grant });

  const approvals: ApprovalUse[] = [];
  for (const check of context.policies) {
    const verdict = check.evaluate(context, grant);
    if (verdict.outcome === 'pass' && verdict.approval) approvals.push(verdict.approval);
    if (verdict.outcome === 'deny') {
      return deny({
        code: verdict.code,
        message: verdict.message,
        rule: { policy: check.policy, rule: check.rule },
        ...(verdict.retryAfter === undefined ? {} : { retryAfter: verdict.retryAfter }),
        grant,
      });
    }
    if (verdict.outcome === 'pending') return { outcome: 'pending', approval: verdict.approval, grant };
  }

  return allow(context, grant, credential, approvals);
};

/** Why a credential cannot be used now, if it cannot. */
const credentialRefusal = (credential: CredentialState, now: Date) => {
  if (credential.status === 'needs_reauth') return 'credential_needs_reauth' as const;
  if (credential.status === 'revoked') return 'credential_revoked' as const;
  if (credential.status === 'expired' || isPast(credential.expiresAt, now)) {
    return 'credential_expired' as const;
  }
  return undefined;
};

/** The reveal rule: a property of the channel, not of the grant decision. */
export const channelAllows = (channel: Channel, grant: Pick<Grant, 'reveal'>): boolean =>
  channel !== 'reveal' || grant.reveal;

const deny = (refusal: Omit<DeniedDecision, 'outcome'>): DeniedDecision => ({ outcome: 'deny', ...refusal });

/** The only place an AllowedDecision is made (the brand exists in the type only). */
const allow = (
  context: AccessContext,
  grant: Grant,
  credential: CredentialState,
  approvals: readonly ApprovalUse[],
): AllowedDecision => {
  const fields: AllowedFields = {
    outcome: 'allow',
    namespace: context.namespace,
    agentId: context.agent.agentId,
    credentialId: grant.credentialId,
    channel: context.channel,
    grant,
    scopes: context.requestedScopes.length > 0 ? [...new Set(context.requestedScopes)] : [...grant.scopes],
    expiresAt: earliestExpiry(grant.expiresAt, credential.expiresAt),
    ...(approvals.length > 0 ? { approvals } : {}),
  };
  return fields as AllowedDecision;
};
