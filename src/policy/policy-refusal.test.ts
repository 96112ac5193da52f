import { describe, expect, it } from 'vitest';
import { policyRefusal } from './policy-refusal.js';

describe('policy refusals as errors', () => {
  it('names the policy, the rule and why, with the registry status', () => {
    const error = policyRefusal(
      {
        outcome: 'deny',
        policy: { id: 'pol_1', name: 'business-hours' },
        rule: { index: 0, kind: 'time_window' },
        code: 'policy_denied',
        message: 'outside the time window fri 09:00–18:00 UTC (it is fri 18:00 there)',
      },
      new Date('2026-11-27T18:00:00Z'),
    );
    expect(error.status).toBe(403);
    expect(error.code).toBe('policy_denied');
    expect(error.message).toBe(
      'Refused by policy "business-hours", rule 0 (time_window): outside the time window fri 09:00–18:00 UTC (it is fri 18:00 there).',
    );
    expect(error.details).toEqual({
      policy: { id: 'pol_1', name: 'business-hours' },
      rule: { index: 0, kind: 'time_window' },
      reason: 'outside the time window fri 09:00–18:00 UTC (it is fri 18:00 there)',
    });
  });

  it('says when to retry after a counter refused, in whole seconds', () => {
    const error = policyRefusal(
      {
        outcome: 'deny',
        policy: { id: 'pol_2', name: 'burst' },
        rule: { index: 1, kind: 'rate_limit' },
        code: 'rate_limited',
        message: 'rate limit of 5 per 1m reached',
        resetAt: new Date('2026-11-27T18:01:00Z'),
      },
      new Date('2026-11-27T18:00:20.500Z'),
    );
    expect(error.status).toBe(429);
    expect(error.details).toMatchObject({ retryAfterSeconds: 40 });
  });
});
