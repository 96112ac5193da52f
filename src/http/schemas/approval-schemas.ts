import { type Static, Type } from '@sinclair/typebox';
import type { Approval } from '../../approvals/approval-rules.js';

export const ApprovalView = Type.Object({
  id: Type.String(),
  state: Type.String({ description: 'pending, approved, denied or expired' }),
  agent: Type.String(),
  agent_id: Type.String(),
  credential: Type.String(),
  end_user: Type.Union([Type.String(), Type.Null()]),
  policy: Type.String(),
  rule_index: Type.Integer(),
  approvers: Type.Array(Type.String()),
  covers: Type.String({ description: '`request` or a time box such as `1800s`' }),
  requested_at: Type.String(),
  expires_at: Type.String(),
  decided_at: Type.Union([Type.String(), Type.Null()]),
  decided_by: Type.Union([Type.String(), Type.Null()]),
  decided_via: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  covers_until: Type.Union([Type.String(), Type.Null()]),
  used_at: Type.Union([Type.String(), Type.Null()]),
});

export const toApprovalView = (a: Approval): Static<typeof ApprovalView> => ({
  id: a.id,
  state: a.state,
  agent: a.agent.name,
  agent_id: a.agent.id,
  credential: a.credential.name,
  end_user: a.endUser,
  policy: a.policy.name,
  rule_index: a.ruleIndex,
  approvers: a.approvers,
  covers: a.coversSeconds === null ? 'request' : `${a.coversSeconds}s`,
  requested_at: a.requestedAt,
  expires_at: a.expiresAt,
  decided_at: a.decidedAt,
  decided_by: a.decidedBy,
  decided_via: a.decidedVia,
  reason: a.reason,
  covers_until: a.coversUntil,
  used_at: a.usedAt,
});

export const ApprovalList = Type.Object({ items: Type.Array(ApprovalView) });
export const ApprovalIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
export const ApprovalListQuery = Type.Object({
  state: Type.Optional(Type.Union(['pending', 'approved', 'denied', 'expired'].map((s) => Type.Literal(s)))),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
});
export const DecideBody = Type.Object(
  {
    reason: Type.Optional(Type.String({ maxLength: 500 })),
    via: Type.Optional(Type.Union([Type.Literal('api'), Type.Literal('cli'), Type.Literal('page')])),
  },
  { additionalProperties: false },
);
export const PushSubscriptionBody = Type.Object({
  endpoint: Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' }),
  keys: Type.Object({
    p256dh: Type.String({ minLength: 80, maxLength: 100, pattern: '^[A-Za-z0-9_-]+=*$' }),
    auth: Type.String({ minLength: 16, maxLength: 32, pattern: '^[A-Za-z0-9_-]+=*$' }),
  }),
  expirationTime: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1e15 }), Type.Null()])),
});
export const AgentApprovalParams = Type.Object({
  agentId: Type.String({ minLength: 1, maxLength: 200 }),
  id: Type.String({ minLength: 1, maxLength: 64 }),
});
export const AgentApprovalQuery = Type.Object({
  wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}$', description: 'Seconds to wait (0 to 60).' })),
});
export const AgentApprovalView = Type.Object({
  id: Type.String(),
  state: Type.String(),
  expires_at: Type.String(),
  covers_until: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  retry_url: Type.Union([Type.String(), Type.Null()]),
});
