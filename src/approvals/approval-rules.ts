import { VaultError } from '../errors/vault-error.js';

/**
 * The pure rules of an approval (docs/approvals.md): its states, who may decide it, what an approved
 * one covers. Plain values in, plain values out; the service applies them to stored rows.
 *
 *   pending ──approve──▶ approved   (covers one request, or every request until `coversUntil`)
 *      │ └────deny────▶ denied
 *      └──timeout────▶ expired
 *
 * A decision is final: only a pending approval is decided, by a conditional update, so two deciders
 * (on two replicas) cannot both win.
 */

export const approvalStates = ['pending', 'approved', 'denied', 'expired'] as const;
export type ApprovalState = (typeof approvalStates)[number];

/** Where a decision came from, for the audit event and `approval show`. */
export type DecisionChannel = 'api' | 'cli' | 'page' | 'link';

export interface Approval {
  id: string;
  namespace: string;
  agent: { id: string; name: string };
  credential: { id: string; name: string };
  endUser: string | null;
  policy: { id: string; name: string };
  ruleIndex: number;
  approvers: string[];
  /** null: one request; else a time box of this many seconds from the approval. */
  coversSeconds: number | null;
  state: ApprovalState;
  requestedAt: string;
  /** A pending approval expires at this instant. */
  expiresAt: string;
  requestId: string | null;
  clientIp: string | null;
  decidedAt: string | null;
  decidedBy: string | null;
  decidedVia: string | null;
  reason: string | null;
  /** A time-box approval covers requests until this instant. */
  coversUntil: string | null;
  usedAt: string | null;
}

/** The state as of `now`: a pending approval past its expiry is expired, whether or not swept yet. */
export const stateAt = (approval: Pick<Approval, 'state' | 'expiresAt'>, now: Date): ApprovalState =>
  approval.state === 'pending' && Date.parse(approval.expiresAt) <= now.getTime()
    ? 'expired'
    : approval.state;

/**
 * The identities a request was made with, which its approver must not hold: the agent's name and
 * the end user it was made for. An approver is known by the name of the admin token they decide
 * with (docs/approvals.md, "Who is an approver").
 */
export const requestIdentities = (approval: Pick<Approval, 'agent' | 'endUser'>): string[] =>
  [approval.agent.name, approval.endUser].filter((name): name is string => name !== null && name !== '');

const sameName = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Throws why `approver` may not decide `approval`, if they may not. */
export const assertMayDecide = (
  approval: Pick<Approval, 'approvers' | 'agent' | 'endUser'>,
  approver: string,
): void => {
  if (requestIdentities(approval).some((identity) => sameName(identity, approver))) {
    throw new VaultError(
      'approval_self_decision',
      `${approver} made this request (as agent or end user) and cannot decide it; ask ${
        approval.approvers.filter((a) => !sameName(a, approver)).join(' or ') || 'another approver'
      }.`,
    );
  }
  if (!approval.approvers.some((listed) => sameName(listed, approver))) {
    throw new VaultError(
      'approval_not_approver',
      `The token's name ${approver} is not among this approval's approvers (${approval.approvers.join(', ')}).`,
    );
  }
};

/** Whether an approved approval lets a request through now (one request unused, or inside its box). */
export const approvalCovers = (
  approval: Pick<Approval, 'state' | 'coversSeconds' | 'usedAt' | 'coversUntil'>,
  now: Date,
): boolean => {
  if (approval.state !== 'approved') return false;
  if (approval.coversSeconds === null) return approval.usedAt === null;
  return approval.coversUntil !== null && Date.parse(approval.coversUntil) > now.getTime();
};

/** The refusal a retry naming a decided approval gets, instead of asking again. */
export const refusalOf = (approval: Approval, now: Date): VaultError | undefined => {
  switch (stateAt(approval, now)) {
    case 'denied':
      return new VaultError(
        'approval_denied',
        `Approval ${approval.id} was denied by ${approval.decidedBy ?? 'an approver'}${
          approval.reason ? `: ${approval.reason}` : ''
        }. A request without ?approval= asks again.`,
      );
    case 'expired':
      return new VaultError(
        'approval_expired',
        `Approval ${approval.id} expired at ${approval.expiresAt} undecided. A request without ?approval= asks again.`,
      );
    case 'approved':
      return approvalCovers(approval, now)
        ? undefined
        : new VaultError(
            approval.coversSeconds === null ? 'approval_used' : 'approval_expired',
            approval.coversSeconds === null
              ? `Approval ${approval.id} was already used by another request.`
              : `Approval ${approval.id} covered requests until ${approval.coversUntil ?? '?'}.`,
          );
    default:
      return undefined;
  }
};

/** Seconds the agent should wait before asking again: short, never past the expiry. */
export const retryAfterSeconds = (approval: Pick<Approval, 'expiresAt'>, now: Date): number => {
  const left = Math.ceil((Date.parse(approval.expiresAt) - now.getTime()) / 1000);
  return Math.max(1, Math.min(5, left));
};
