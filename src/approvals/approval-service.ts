import type { Kysely, Transaction } from 'kysely';
import { type AuditContext, auditedChange, type AuditSpec } from '../audit/audit-context.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { VaultError } from '../errors/vault-error.js';
import type { EventPublisher, VaultEvent } from '../events/event-types.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { ApprovalQuery, ApprovalsPort } from '../policy/evaluate-policies.js';
import type { Database } from '../store/schema.js';
import { type ApprovalKey, approvalRepo } from './approval-repo.js';
import {
  type Approval,
  type ApprovalState,
  approvalCovers,
  assertMayDecide,
  type DecisionChannel,
  refusalOf,
  stateAt,
} from './approval-rules.js';

/** What a parked request asks approval for (the `approval` rule that parked it, and the request). */
export interface ParkRequest {
  namespace: string;
  agent: { id: string; name: string };
  credential: { id: string; name: string };
  endUser?: string | undefined;
  policy: { id: string; name: string };
  ruleIndex: number;
  approvers: readonly string[];
  timeoutSeconds: number;
  /** null: one request; else a time box of this many seconds. */
  coversSeconds: number | null;
  /** The approval the request named (`?approval=`), if any. */
  approvalId?: string | undefined;
  requestId: string;
  clientIp: string | null;
}

export interface ApprovalServiceDeps {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
  /** Publishes `approval.*` events (the signed webhook), in the change's transaction. */
  events?: EventPublisher | undefined;
  /** The signed approve/deny links of each approver, carried by the `approval.requested` event. */
  linksFor?:
    ((approval: Approval) => { approver: string; approve_url: string; deny_url: string }[]) | undefined;
  /** Called after a new approval commits: notifies its approvers (approval-notifier.ts). */
  onRequested?: ((approval: Approval) => void) | undefined;
}

/** The subject keys every approval event carries, so `audit list --agent/--credential` finds it. */
const subjects = (approval: Approval): AuditDetails => ({
  approval_id: approval.id,
  agent_id: approval.agent.id,
  agent_name: approval.agent.name,
  credential_id: approval.credential.id,
  credential_name: approval.credential.name,
  policy: approval.policy.name,
  rule_index: approval.ruleIndex,
});

const eventData = (approval: Approval): VaultEvent['data'] => ({
  approval_id: approval.id,
  agent: approval.agent.name,
  credential: approval.credential.name,
  end_user: approval.endUser,
  policy: approval.policy.name,
  approvers: approval.approvers,
  state: approval.state,
  expires_at: approval.expiresAt,
  covers: approval.coversSeconds === null ? 'request' : `${approval.coversSeconds}s`,
});

/** Per approver who may decide, in the same order: their signed one-time links. */
const linkData = (links: { approver: string; approve_url: string; deny_url: string }[]) => ({
  link_approvers: links.map((l) => l.approver),
  approve_urls: links.map((l) => l.approve_url),
  deny_urls: links.map((l) => l.deny_url),
});

const newRow = (request: ParkRequest, now: Date) => ({
  id: newId(),
  namespace: request.namespace,
  agent_id: request.agent.id,
  agent_name: request.agent.name,
  credential_id: request.credential.id,
  credential_name: request.credential.name,
  end_user: request.endUser ?? null,
  policy_id: request.policy.id,
  policy_name: request.policy.name,
  rule_index: request.ruleIndex,
  approvers: JSON.stringify([...request.approvers]),
  covers_seconds: request.coversSeconds,
  state: 'pending',
  requested_at: now.toISOString(),
  expires_at: new Date(now.getTime() + request.timeoutSeconds * 1000).toISOString(),
  request_id: request.requestId,
  client_ip: request.clientIp,
  decided_at: null,
  decided_by: null,
  decided_via: null,
  reason: null,
  covers_until: null,
  used_at: null,
});

const sameKey = (a: ApprovalKey, b: ApprovalKey) =>
  a.agentId === b.agentId &&
  a.credentialId === b.credentialId &&
  a.policyId === b.policyId &&
  a.ruleIndex === b.ruleIndex;

const keyOf = (r: {
  agent: { id: string };
  credential: { id: string };
  policy: { id: string };
  ruleIndex: number;
}): ApprovalKey => ({
  agentId: r.agent.id,
  credentialId: r.credential.id,
  policyId: r.policy.id,
  ruleIndex: r.ruleIndex,
});

/**
 * Approvals (issue 15 item 3, docs/approvals.md): parking a request, deciding, expiring, and the
 * read-only port the policy evaluator asks. Every step is one audited change; the `approval.*`
 * events go out through the events outbox in the same transaction.
 */
export const createApprovalService = ({
  db,
  clock,
  audit,
  events,
  linksFor,
  onRequested,
}: ApprovalServiceDeps) => {
  const spec = (ctx: AuditContext, namespace: string, action: AuditAction, id: string | null): AuditSpec => ({
    ctx,
    namespace,
    action,
    target: { type: 'approval', id },
  });

  const find = async (namespace: string, id: string): Promise<Approval> => {
    const approval = await approvalRepo.find(db, id);
    if (!approval || approval.namespace !== namespace) {
      throw new VaultError(
        'approval_not_found',
        `No approval "${id.slice(0, 64)}" in namespace ${namespace}.`,
      );
    }
    return approval;
  };

  const expireIn = async (trx: Transaction<Database>, approval: Approval, now: Date) => {
    const expired = await approvalRepo.decide(trx, approval.id, {
      state: 'expired',
      decidedAt: now.toISOString(),
      decidedBy: null,
      decidedVia: null,
      reason: null,
      coversUntil: null,
    });
    if (!expired) return false;
    const after = { ...approval, state: 'expired' as const };
    await audit.recordInTransaction(trx, {
      namespace: approval.namespace,
      actor: { type: 'system', id: null },
      action: 'approval.expire',
      target: { type: 'approval', id: approval.id },
      decision: 'allow',
      reason: 'ok',
      details: { ...subjects(approval), expires_at: approval.expiresAt },
    });
    await events?.publish(
      { type: 'approval.expired', namespace: approval.namespace, data: eventData(after) },
      trx,
    );
    return true;
  };

  /**
   * Parks a request: the pending approval of this agent × credential × rule, reused while pending
   * (one question to the approvers however often the agent asks), or a new one. A request that
   * names a decided approval gets that decision's refusal (`approval_denied`, `approval_expired`,
   * `approval_used`) rather than a new question. Returns the approval and whether it is new (the
   * caller notifies the approvers of a new one).
   */
  const park = (request: ParkRequest, ctx: AuditContext): Promise<{ approval: Approval; created: boolean }> =>
    auditedChange(
      { db, audit },
      {
        ...spec(ctx, request.namespace, 'approval.request', request.approvalId?.slice(0, 64) ?? null),
        details: {
          agent_id: request.agent.id,
          agent_name: request.agent.name,
          credential_id: request.credential.id,
          credential_name: request.credential.name,
          policy: request.policy.name,
          rule_index: request.ruleIndex,
        },
      },
      async (trx, record) => {
        const now = clock.now();
        if (request.approvalId !== undefined) {
          const named = await approvalRepo.find(trx, request.approvalId);
          if (!named || named.namespace !== request.namespace || !sameKey(keyOf(named), keyOf(request))) {
            throw new VaultError(
              'approval_not_found',
              `No approval "${request.approvalId.slice(0, 64)}" for this agent, credential and rule.`,
            );
          }
          const refusal = refusalOf(named, now);
          if (refusal) throw refusal;
        }
        const reuse = async (pending: Approval) => {
          await record({
            target: { type: 'approval', id: pending.id },
            details: { ...subjects(pending), reused: true },
          });
          return { approval: pending, created: false };
        };
        const pending = await approvalRepo.pendingFor(trx, keyOf(request));
        if (pending && stateAt(pending, now) === 'pending') return reuse(pending);
        // One past its expiry still holds the unique index: it is expired first, and recorded so.
        if (pending) await expireIn(trx, pending, now);
        const row = newRow(request, now);
        if (!(await approvalRepo.insertPending(trx, row))) {
          // Another replica parked the same rule's request at the same moment: its approval is ours.
          const winner = await approvalRepo.pendingFor(trx, keyOf(request));
          if (!winner) throw new VaultError('store_busy');
          return reuse(winner);
        }
        const approval = (await approvalRepo.find(trx, row.id))!;
        await record({
          target: { type: 'approval', id: approval.id },
          details: {
            ...subjects(approval),
            reused: false,
            approvers: approval.approvers,
            expires_at: approval.expiresAt,
          },
        });
        await events?.publish(
          {
            type: 'approval.requested',
            namespace: approval.namespace,
            data: { ...eventData(approval), ...linkData(linksFor?.(approval) ?? []) },
          },
          trx,
        );
        return { approval, created: true };
      },
    ).then((parked) => {
      if (parked.created) onRequested?.(parked.approval);
      return parked;
    });

  /**
   * An approver's decision: final, once. The approver is the admin token's name (or the one a signed
   * link was sent to); they must be listed and must not be the request's own identity.
   */
  const decide = (
    namespace: string,
    id: string,
    decision: 'approve' | 'deny',
    by: { approver: string; via: DecisionChannel; reason?: string | undefined },
    ctx: AuditContext,
  ): Promise<Approval> =>
    auditedChange(
      { db, audit },
      {
        ...spec(
          ctx,
          namespace,
          decision === 'approve' ? 'approval.approve' : 'approval.deny',
          id.slice(0, 64),
        ),
        details: { approver: by.approver.slice(0, 64), via: by.via },
      },
      async (trx, record) => {
        const now = clock.now();
        const approval = await approvalRepo.find(trx, id);
        if (!approval || approval.namespace !== namespace) throw new VaultError('approval_not_found');
        const state = stateAt(approval, now);
        if (state !== 'pending') {
          throw new VaultError(
            'approval_already_decided',
            `Approval ${approval.id} is already ${state}${approval.decidedBy ? ` (by ${approval.decidedBy})` : ''}; a decision is final.`,
          );
        }
        assertMayDecide(approval, by.approver);
        const reason = by.reason?.slice(0, 500) ?? null;
        const coversUntil =
          decision === 'approve' && approval.coversSeconds !== null
            ? new Date(now.getTime() + approval.coversSeconds * 1000).toISOString()
            : null;
        const decided = await approvalRepo.decide(trx, approval.id, {
          state: decision === 'approve' ? 'approved' : 'denied',
          decidedAt: now.toISOString(),
          decidedBy: by.approver,
          decidedVia: by.via,
          reason,
          coversUntil,
        });
        if (!decided) throw new VaultError('approval_already_decided');
        const after = (await approvalRepo.find(trx, approval.id))!;
        await record({ details: { ...subjects(after), state: after.state, covers_until: coversUntil } });
        await events?.publish(
          {
            type: 'approval.decided',
            namespace,
            data: { ...eventData(after), decided_by: by.approver, reason },
          },
          trx,
        );
        return after;
      },
    );

  /** Expires the pending approvals past their timeout, each once across replicas; returns how many. */
  const expireDue = async (limit = 100): Promise<number> => {
    const now = clock.now();
    let count = 0;
    for (const approval of await approvalRepo.due(db, now.toISOString(), limit)) {
      const expired = await db.transaction().execute((trx) => expireIn(trx, approval, now));
      if (expired) count += 1;
    }
    return count;
  };

  /** The read-only port of the policy evaluator (evaluate-policies.ts `ApprovalsPort`). */
  const port: ApprovalsPort = {
    async covering(query: ApprovalQuery) {
      const key: ApprovalKey = {
        agentId: query.agent,
        credentialId: query.credential,
        policyId: query.policyId,
        ruleIndex: query.rule.index,
      };
      if (query.approvalId !== undefined) {
        const named = await approvalRepo.find(db, query.approvalId);
        if (named && sameKey(keyOf(named), key) && approvalCovers(named, query.at)) {
          return { id: named.id };
        }
        if (query.covers.kind === 'request') return undefined;
      }
      // A repeated request that names none: any approval of this rule still covering the agent.
      const covering = (await approvalRepo.approvedFor(db, key, query.at.toISOString())).find((a) =>
        approvalCovers(a, query.at),
      );
      return covering && { id: covering.id };
    },
  };

  return {
    park,
    decide,
    expireDue,
    port,
    /**
     * Spends a one-request approval for the request an `allow` relied on: exactly once across
     * replicas (a conditional update). False: another request spent it first.
     */
    use: (id: string): Promise<boolean> => approvalRepo.use(db, id, clock.now().toISOString()),
    show: find,
    /** By id alone, for a signed link (which names its approval, in whatever namespace). */
    async find(id: string): Promise<Approval> {
      const approval = await approvalRepo.find(db, id);
      if (!approval) throw new VaultError('approval_not_found');
      return approval;
    },
    /** Newest first; `state` filters by the state as of now (expired includes pending past due). */
    async list(
      namespace: string,
      options: { state?: ApprovalState | undefined; limit?: number | undefined } = {},
    ) {
      const now = clock.now();
      const stored = options.state === 'expired' ? undefined : options.state;
      const rows = await approvalRepo.list(db, namespace, { state: stored, limit: options.limit ?? 100 });
      return rows
        .map((a) => ({ ...a, state: stateAt(a, now) }))
        .filter((a) => options.state === undefined || a.state === options.state);
    },
    /** For the agent's long-poll: the approval as of now, once it is no longer pending or `waitMs` passed. */
    async waitFor(namespace: string, agentId: string, id: string, waitMs: number): Promise<Approval> {
      const until = clock.now().getTime() + waitMs;
      for (;;) {
        const approval = await find(namespace, id);
        if (approval.agent.id !== agentId) throw new VaultError('approval_not_found');
        const now = clock.now();
        const state = stateAt(approval, now);
        if (state !== 'pending' || now.getTime() >= until) return { ...approval, state };
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
  };
};

export type ApprovalService = ReturnType<typeof createApprovalService>;
