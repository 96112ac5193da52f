import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import {
  type Approval,
  approvalCovers,
  assertMayDecide,
  refusalOf,
  retryAfterSeconds,
  stateAt,
} from './approval-rules.js';

const base: Approval = {
  id: 'a1',
  namespace: 'default',
  agent: { id: 'ag', name: 'agent-42' },
  credential: { id: 'cr', name: 'prod' },
  endUser: 'dana',
  policy: { id: 'p', name: 'prod-approval' },
  ruleIndex: 0,
  approvers: ['alice', 'Bob', 'agent-42'],
  coversSeconds: null,
  state: 'pending',
  requestedAt: '2026-11-27T10:00:00.000Z',
  expiresAt: '2026-11-27T10:15:00.000Z',
  requestId: null,
  clientIp: null,
  decidedAt: null,
  decidedBy: null,
  decidedVia: null,
  reason: null,
  coversUntil: null,
  usedAt: null,
};
const at = (iso: string) => new Date(iso);
const codeOf = (run: () => void) => {
  try {
    run();
    return 'ok';
  } catch (error) {
    return isVaultError(error) ? error.code : String(error);
  }
};

describe('approval rules', () => {
  it('expires a pending approval at its expiry instant, not a moment before', () => {
    expect(stateAt(base, at('2026-11-27T10:14:59.999Z'))).toBe('pending');
    expect(stateAt(base, at('2026-11-27T10:15:00.000Z'))).toBe('expired');
    expect(stateAt({ ...base, state: 'approved' }, at('2026-11-27T11:00:00Z'))).toBe('approved');
  });

  it('lets a listed approver decide, but never the agent or end user the request was made as', () => {
    expect(codeOf(() => assertMayDecide(base, 'alice'))).toBe('ok');
    expect(codeOf(() => assertMayDecide(base, 'bob'))).toBe('ok');
    expect(codeOf(() => assertMayDecide(base, 'agent-42'))).toBe('approval_self_decision');
    expect(codeOf(() => assertMayDecide({ ...base, approvers: ['dana'] }, 'Dana'))).toBe(
      'approval_self_decision',
    );
    expect(codeOf(() => assertMayDecide(base, 'carol'))).toBe('approval_not_approver');
  });

  it('covers one unused request, or requests inside the time box only', () => {
    const approved = { ...base, state: 'approved' as const };
    expect(approvalCovers(approved, at('2026-11-27T10:20:00Z'))).toBe(true);
    expect(approvalCovers({ ...approved, usedAt: '2026-11-27T10:05:00Z' }, at('2026-11-27T10:20:00Z'))).toBe(
      false,
    );
    const box = { ...approved, coversSeconds: 1800, coversUntil: '2026-11-27T10:35:00.000Z' };
    expect(approvalCovers(box, at('2026-11-27T10:34:59Z'))).toBe(true);
    expect(approvalCovers(box, at('2026-11-27T10:35:00Z'))).toBe(false);
    expect(approvalCovers({ ...base, state: 'denied' }, at('2026-11-27T10:01:00Z'))).toBe(false);
  });

  it('refuses a retry naming a decided approval with the decision’s own code', () => {
    const now = at('2026-11-27T10:20:00Z');
    expect(refusalOf({ ...base, state: 'denied', decidedBy: 'alice', reason: 'no' }, now)?.message).toContain(
      'denied by alice: no',
    );
    expect(refusalOf(base, now)?.code).toBe('approval_expired');
    expect(refusalOf({ ...base, state: 'approved', usedAt: now.toISOString() }, now)?.code).toBe(
      'approval_used',
    );
    expect(refusalOf({ ...base, state: 'approved' }, now)).toBeUndefined();
    expect(refusalOf(base, at('2026-11-27T10:01:00Z'))).toBeUndefined();
  });

  it('asks the agent to come back within seconds, never after the expiry', () => {
    expect(retryAfterSeconds(base, at('2026-11-27T10:00:00Z'))).toBe(5);
    expect(retryAfterSeconds(base, at('2026-11-27T10:14:58Z'))).toBe(2);
    expect(retryAfterSeconds(base, at('2026-11-27T10:16:00Z'))).toBe(1);
  });
});
