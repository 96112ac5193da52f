import type { Grant } from '../../src/grants/grant-types.js';

/** The fixed "now" the pure grant and decision tests reason about. */
export const testNow = new Date('2026-06-01T12:00:00.000Z');

export const hoursFromNow = (hours: number, now = testNow) =>
  new Date(now.getTime() + hours * 3_600_000).toISOString();

/** A live reveal grant of agent a1 on credential c1, for an hour from `testNow`; override any field. */
export const testGrant = (over: Partial<Grant> = {}): Grant => ({
  id: 'g1',
  namespace: 'default',
  agentId: 'a1',
  credentialId: 'c1',
  scopes: ['read', 'write'],
  reveal: true,
  expiresAt: hoursFromNow(1),
  createdAt: '2026-06-01T11:00:00.000Z',
  createdBy: 'admin:t1',
  revokedAt: null,
  revokedReason: null,
  ...over,
});
