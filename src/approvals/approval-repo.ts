import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { ApprovalPushSubscriptionTable, ApprovalTable, Database } from '../store/schema.js';
import type { Approval, ApprovalState } from './approval-rules.js';

type Db = Kysely<Database> | Transaction<Database>;

export const toApproval = (row: Selectable<ApprovalTable>): Approval => ({
  id: row.id,
  namespace: row.namespace,
  agent: { id: row.agent_id, name: row.agent_name },
  credential: { id: row.credential_id, name: row.credential_name },
  endUser: row.end_user,
  policy: { id: row.policy_id, name: row.policy_name },
  ruleIndex: Number(row.rule_index),
  approvers: JSON.parse(row.approvers) as string[],
  coversSeconds: row.covers_seconds === null ? null : Number(row.covers_seconds),
  state: row.state as ApprovalState,
  requestedAt: row.requested_at,
  expiresAt: row.expires_at,
  requestId: row.request_id,
  clientIp: row.client_ip,
  decidedAt: row.decided_at,
  decidedBy: row.decided_by,
  decidedVia: row.decided_via,
  reason: row.reason,
  coversUntil: row.covers_until,
  usedAt: row.used_at,
});

/** The rule an approval belongs to, for one agent and credential. */
export interface ApprovalKey {
  agentId: string;
  credentialId: string;
  policyId: string;
  ruleIndex: number;
}

const byKey = (db: Db, key: ApprovalKey) =>
  db
    .selectFrom('approvals')
    .selectAll()
    .where('agent_id', '=', key.agentId)
    .where('credential_id', '=', key.credentialId)
    .where('policy_id', '=', key.policyId)
    .where('rule_index', '=', key.ruleIndex);

export const approvalRepo = {
  /**
   * Inserts a pending approval unless one for the same rule is pending already (on any replica: the
   * partial unique index decides); false when it was not inserted.
   */
  async insertPending(db: Db, row: ApprovalTable): Promise<boolean> {
    const result = await db
      .insertInto('approvals')
      .values(row)
      .onConflict((oc) =>
        oc
          .columns(['namespace', 'agent_id', 'credential_id', 'policy_id', 'rule_index'])
          .where(sql<boolean>`state = 'pending'`)
          .doNothing(),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  },

  async find(db: Db, id: string): Promise<Approval | undefined> {
    const row = await db.selectFrom('approvals').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toApproval(row);
  },

  async pendingFor(db: Db, key: ApprovalKey): Promise<Approval | undefined> {
    const row = await byKey(db, key).where('state', '=', 'pending').executeTakeFirst();
    return row && toApproval(row);
  },

  /** Approved approvals of the rule for this agent and credential that may still cover a request. */
  async approvedFor(db: Db, key: ApprovalKey, now: string): Promise<Approval[]> {
    const rows = await byKey(db, key)
      .where('state', '=', 'approved')
      .where((eb) =>
        eb.or([
          eb.and([eb('covers_seconds', 'is', null), eb('used_at', 'is', null)]),
          eb('covers_until', '>', now),
        ]),
      )
      .orderBy('decided_at')
      .limit(10)
      .execute();
    return rows.map(toApproval);
  },

  async list(
    db: Db,
    namespace: string,
    options: { state?: ApprovalState | undefined; limit: number },
  ): Promise<Approval[]> {
    let query = db.selectFrom('approvals').selectAll().where('namespace', '=', namespace);
    if (options.state) query = query.where('state', '=', options.state);
    const rows = await query.orderBy('requested_at', 'desc').limit(options.limit).execute();
    return rows.map(toApproval);
  },

  /** Decides a pending approval; false when it was no longer pending (decided or expired elsewhere). */
  async decide(
    db: Db,
    id: string,
    to: {
      state: 'approved' | 'denied' | 'expired';
      decidedAt: string;
      decidedBy: string | null;
      decidedVia: string | null;
      reason: string | null;
      coversUntil: string | null;
    },
  ): Promise<boolean> {
    const result = await db
      .updateTable('approvals')
      .set({
        state: to.state,
        decided_at: to.decidedAt,
        decided_by: to.decidedBy,
        decided_via: to.decidedVia,
        reason: to.reason,
        covers_until: to.coversUntil,
      })
      .where('id', '=', id)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },

  /** Spends a one-request approval; exactly one caller, on any replica, gets true. */
  async use(db: Db, id: string, at: string): Promise<boolean> {
    const result = await db
      .updateTable('approvals')
      .set({ used_at: at })
      .where('id', '=', id)
      .where('state', '=', 'approved')
      .where('covers_seconds', 'is', null)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  },

  async due(db: Db, now: string, limit: number): Promise<Approval[]> {
    const rows = await db
      .selectFrom('approvals')
      .selectAll()
      .where('state', '=', 'pending')
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .limit(limit)
      .execute();
    return rows.map(toApproval);
  },
};

export type PushSubscriptionRow = Selectable<ApprovalPushSubscriptionTable>;

export const pushSubscriptionRepo = {
  /** One row per endpoint: subscribing the same browser again replaces its keys and approver. */
  async upsert(db: Db, row: ApprovalPushSubscriptionTable): Promise<void> {
    await db
      .insertInto('approval_push_subscriptions')
      .values(row)
      .onConflict((oc) =>
        oc.column('endpoint').doUpdateSet({ approver: row.approver, p256dh: row.p256dh, auth: row.auth }),
      )
      .execute();
  },

  async forApprovers(db: Db, approvers: readonly string[]): Promise<PushSubscriptionRow[]> {
    if (approvers.length === 0) return [];
    return db
      .selectFrom('approval_push_subscriptions')
      .selectAll()
      .where('approver', 'in', [...approvers])
      .execute();
  },

  async remove(db: Db, endpoint: string): Promise<void> {
    await db.deleteFrom('approval_push_subscriptions').where('endpoint', '=', endpoint).execute();
  },
};
