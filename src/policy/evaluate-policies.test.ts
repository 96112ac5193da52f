import { describe, expect, it } from 'vitest';
import { createCountryLookup } from './country-lookup.js';
import { createMemoryCounters } from './counters.js';
import { createPolicyEvaluator, type ApprovalQuery, type ApprovalsPort } from './evaluate-policies.js';
import { loadPolicyDocument } from './policy-document.js';
import type { AttachedPolicy, Attachment, PolicyRequest } from './policy-types.js';

const countries = createCountryLookup();

/** Approvals granted by the test, matched the way the port's contract says. */
const approvalsGranted = (granted: { id: string; policyId: string; agent: string; until?: Date }[] = []) => {
  const asked: ApprovalQuery[] = [];
  const port: ApprovalsPort = {
    covering(query) {
      asked.push(query);
      const found = granted.find(
        (approval) =>
          approval.policyId === query.policyId &&
          approval.agent === query.agent &&
          (query.covers.kind === 'request'
            ? query.approvalId === approval.id
            : (approval.until ?? new Date(0)) > query.at),
      );
      return Promise.resolve(found === undefined ? undefined : { id: found.id });
    },
  };
  return { port, asked };
};

const attach = (yaml: string, attachment: Attachment = { kind: 'agent', id: 'agt_1' }): AttachedPolicy => {
  const policy = loadPolicyDocument(yaml);
  return { id: `pol_${policy.name}`, policy, attachment };
};

const request = (overrides: Partial<PolicyRequest> = {}): PolicyRequest => ({
  agent: 'agt_1',
  credential: 'cred_notion',
  clientAddress: '203.0.113.5',
  // Friday 27 November 2026, 10:00 in Berlin.
  time: new Date('2026-11-27T09:00:00Z'),
  ...overrides,
});

const officeHours = attach(`
name: office-hours
rules:
  - time_window: { days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00", time_zone: Europe/Berlin }
  - ip_allowlist: { cidrs: [203.0.113.0/24] }
`);

const evaluatorWith = (approvals: ApprovalsPort = approvalsGranted().port) => {
  const counters = createMemoryCounters();
  return { counters, evaluator: createPolicyEvaluator({ counters, approvals, countries }) };
};

describe('evaluating policies', () => {
  it('allows when every rule of every policy passes, and with no policies at all', async () => {
    const { evaluator } = evaluatorWith();
    expect(await evaluator.evaluate([officeHours], request())).toEqual({ outcome: 'allow', approvals: [] });
    expect(await evaluator.evaluate([], request())).toEqual({ outcome: 'allow', approvals: [] });
  });

  it('names the first failing rule: policies in attachment order, rules in document order', async () => {
    const { evaluator } = evaluatorWith();
    const saturdayFromElsewhere = request({
      time: new Date('2026-11-28T09:00:00Z'),
      clientAddress: '198.51.100.1',
    });
    expect(await evaluator.evaluate([officeHours], saturdayFromElsewhere)).toEqual({
      outcome: 'deny',
      policy: { id: 'pol_office-hours', name: 'office-hours' },
      rule: { index: 0, kind: 'time_window' },
      code: 'policy_denied',
      message:
        'outside the time window mon,tue,wed,thu,fri 09:00–18:00 Europe/Berlin (it is sat 10:00 there)',
    });
    const ipOnly = attach('name: ip-only\nrules:\n  - ip_allowlist: { cidrs: ["2001:db8::/32"] }');
    const decision = await evaluator.evaluate([ipOnly, officeHours], saturdayFromElsewhere);
    expect(decision).toMatchObject({
      outcome: 'deny',
      policy: { name: 'ip-only' },
      rule: { index: 0, kind: 'ip_allowlist' },
    });
    expect(decision).toHaveProperty(
      'message',
      'client address 198.51.100.1 is not in the allowlist (2001:db8::/32)',
    );
  });

  it('lets the N-th request through a rate limit and refuses the N+1-th with rate_limited', async () => {
    const { evaluator } = evaluatorWith();
    const limited = attach('name: three-a-minute\nrules:\n  - rate_limit: { requests: 3, per: 1m }');
    const outcomes = [];
    for (let i = 0; i < 4; i += 1) outcomes.push(await evaluator.evaluate([limited], request()));
    expect(outcomes.slice(0, 3).map((decision) => decision.outcome)).toEqual(['allow', 'allow', 'allow']);
    expect(outcomes[3]).toEqual({
      outcome: 'deny',
      policy: { id: 'pol_three-a-minute', name: 'three-a-minute' },
      rule: { index: 0, kind: 'rate_limit' },
      code: 'rate_limited',
      message: 'rate limit of 3 per 1m reached; it resets at 2026-11-27T09:01:00.000Z',
      resetAt: new Date('2026-11-27T09:01:00Z'),
    });
    // Another credential of the same agent has its own counter (per agent × credential).
    expect((await evaluator.evaluate([limited], request({ credential: 'cred_slack' }))).outcome).toBe(
      'allow',
    );
  });

  it('counts per attached entity when the rule says key: attachment', async () => {
    const { evaluator } = evaluatorWith();
    const shared = attach('name: shared\nrules:\n  - usage_cap: { uses: 2, per: total, key: attachment }', {
      kind: 'credential',
      id: 'cred_notion',
    });
    const decisions = [];
    for (const agent of ['agt_1', 'agt_2', 'agt_3'])
      decisions.push((await evaluator.evaluate([shared], request({ agent }))).outcome);
    expect(decisions).toEqual(['allow', 'allow', 'deny']);
  });

  it('a request one counter refuses consumes nothing from the others, and a pure refusal consumes nothing', async () => {
    const { evaluator } = evaluatorWith();
    const cap = attach('name: cap\nrules:\n  - usage_cap: { uses: 10, per: day }');
    const burst = attach('name: burst\nrules:\n  - rate_limit: { requests: 1, per: 1h }');
    expect((await evaluator.evaluate([cap, burst], request())).outcome).toBe('allow');
    expect(await evaluator.evaluate([cap, burst], request())).toMatchObject({
      outcome: 'deny',
      code: 'rate_limited',
      policy: { name: 'burst' },
    });
    // Refused by the time window before any counter: nothing counted either.
    await evaluator.evaluate([officeHours, cap], request({ time: new Date('2026-11-28T09:00:00Z') }));
    const { verdicts } = await evaluator.explain([cap], request());
    expect(verdicts[0]).toMatchObject({
      verdict: 'pass',
      message: 'usage cap of 10 per day: 9 left',
      counter: { remaining: 9 },
    });
  });

  it('refuses a used-up usage cap with usage_cap_exhausted', async () => {
    const { evaluator } = evaluatorWith();
    const once = attach('name: once\nrules:\n  - usage_cap: { uses: 1, per: total }');
    await evaluator.evaluate([once], request());
    expect(await evaluator.evaluate([once], request())).toMatchObject({
      outcome: 'deny',
      code: 'usage_cap_exhausted',
      message: 'usage cap of 1 in total reached',
      resetAt: null,
    });
  });

  describe('geo', () => {
    const { evaluator } = evaluatorWith();
    const europe = attach('name: europe\nrules:\n  - geo: { allow: [DE, FR] }');
    it('looks the country up when the request has none, and refuses unknown countries by default', async () => {
      expect((await evaluator.evaluate([europe], request({ clientAddress: '193.99.144.80' }))).outcome).toBe(
        'allow',
      );
      expect(await evaluator.evaluate([europe], request({ clientAddress: '8.8.8.8' }))).toMatchObject({
        outcome: 'deny',
        message: 'country US is not in the allowed countries (DE, FR)',
      });
      expect(await evaluator.evaluate([europe], request({ clientAddress: '127.0.0.1' }))).toMatchObject({
        outcome: 'deny',
        message: 'the country of 127.0.0.1 is unknown, and the rule denies unknown countries',
      });
    });
    it('uses the country the request carries, honours deny lists and unknown_country: allow', async () => {
      const notNorth = attach('name: not-kp\nrules:\n  - geo: { deny: [KP], unknown_country: allow }');
      expect(
        (await evaluator.evaluate([europe], request({ clientAddress: '8.8.8.8', country: 'FR' }))).outcome,
      ).toBe('allow');
      expect((await evaluator.evaluate([notNorth], request({ country: 'KP' }))).outcome).toBe('deny');
      expect((await evaluator.evaluate([notNorth], request({ clientAddress: '10.0.0.1' }))).outcome).toBe(
        'allow',
      );
    });
  });

  describe('approval', () => {
    const production = attach(`
name: production-approval
rules:
  - approval: { approvers: [alice, bob], timeout: 15m, covers: 30m }
  - rate_limit: { requests: 1, per: 1h }
`);

    it('parks a request no approval covers, counting nothing', async () => {
      const { evaluator, counters } = evaluatorWith();
      for (let i = 0; i < 3; i += 1) {
        expect(await evaluator.evaluate([production], request())).toEqual({
          outcome: 'pending',
          policy: { id: 'pol_production-approval', name: 'production-approval' },
          rule: { index: 0, kind: 'approval' },
          approval: {
            approvers: ['alice', 'bob'],
            timeoutSeconds: 900,
            covers: { kind: 'time_box', seconds: 1800 },
          },
        });
      }
      const [peeked] = await counters.peek(
        [
          {
            key: 'policy=pol_production-approval&rule=1&agent=agt_1&credential=cred_notion',
            limit: 1,
            window: { kind: 'fixed', seconds: 3600 },
          },
        ],
        request().time,
      );
      expect(peeked?.allowed).toBe(true);
    });

    it('lets a covered request through and lists the approval it relied on; the counters still apply', async () => {
      const { port, asked } = approvalsGranted([
        {
          id: 'apr_1',
          policyId: 'pol_production-approval',
          agent: 'agt_1',
          until: new Date('2026-11-27T09:30:00Z'),
        },
      ]);
      const { evaluator } = evaluatorWith(port);
      expect(await evaluator.evaluate([production], request())).toEqual({
        outcome: 'allow',
        approvals: [{ id: 'apr_1', covers: { kind: 'time_box', seconds: 1800 } }],
      });
      expect(asked[0]).toMatchObject({
        policyId: 'pol_production-approval',
        rule: { index: 0, kind: 'approval' },
        agent: 'agt_1',
      });
      expect(await evaluator.evaluate([production], request())).toMatchObject({
        outcome: 'deny',
        code: 'rate_limited',
      });
      // The time box has ended: parked again.
      expect(
        (await evaluator.evaluate([production], request({ time: new Date('2026-11-27T10:30:00Z') }))).outcome,
      ).toBe('pending');
    });

    it('does not ask anyone to approve a request a limit would refuse', async () => {
      const { evaluator } = evaluatorWith();
      const limit = attach('name: limit\nrules:\n  - rate_limit: { requests: 1, per: 1h }');
      await evaluator.evaluate([limit], request());
      expect(await evaluator.evaluate([production, limit], request())).toMatchObject({
        outcome: 'deny',
        code: 'rate_limited',
        policy: { name: 'limit' },
      });
    });

    it('a one-request approval covers the request that names it', async () => {
      const perRequest = attach(
        'name: per-request\nrules:\n  - approval: { approvers: [alice], timeout: 5m }',
      );
      const { evaluator } = evaluatorWith(
        approvalsGranted([{ id: 'apr_9', policyId: 'pol_per-request', agent: 'agt_1' }]).port,
      );
      expect((await evaluator.evaluate([perRequest], request())).outcome).toBe('pending');
      expect(await evaluator.evaluate([perRequest], request({ approvalId: 'apr_9' }))).toEqual({
        outcome: 'allow',
        approvals: [{ id: 'apr_9', covers: { kind: 'request' } }],
      });
    });
  });

  describe('explain (dry run)', () => {
    it('gives every rule’s verdict and the decision evaluate would reach, without counting', async () => {
      const { evaluator } = evaluatorWith();
      const limited = attach(`
name: limited
rules:
  - rate_limit: { requests: 2, per: 1m }
  - approval: { approvers: [alice], timeout: 5m }
`);
      const saturday = request({ time: new Date('2026-11-28T09:00:00Z') });
      for (let i = 0; i < 5; i += 1) {
        const explained = await evaluator.explain([officeHours, limited], saturday);
        expect(explained.verdicts).toEqual([
          {
            policy: { id: 'pol_office-hours', name: 'office-hours' },
            rule: { index: 0, kind: 'time_window' },
            verdict: 'fail',
            message:
              'outside the time window mon,tue,wed,thu,fri 09:00–18:00 Europe/Berlin (it is sat 10:00 there)',
          },
          {
            policy: { id: 'pol_office-hours', name: 'office-hours' },
            rule: { index: 1, kind: 'ip_allowlist' },
            verdict: 'pass',
            message: 'passes',
          },
          {
            policy: { id: 'pol_limited', name: 'limited' },
            rule: { index: 0, kind: 'rate_limit' },
            verdict: 'pass',
            message: 'rate limit of 2 per 1m: 2 left',
            counter: { remaining: 2, resetAt: new Date('2026-11-28T09:01:00Z') },
          },
          {
            policy: { id: 'pol_limited', name: 'limited' },
            rule: { index: 1, kind: 'approval' },
            verdict: 'pending',
            message: 'needs approval by one of alice',
          },
        ]);
        expect(explained.decision).toEqual(await evaluator.evaluate([officeHours, limited], saturday));
      }
      const friday = request();
      expect((await evaluator.explain([officeHours, limited], friday)).decision.outcome).toBe('pending');
    });

    it('agrees with evaluate when a counter refuses', async () => {
      const { evaluator } = evaluatorWith();
      const once = attach('name: once\nrules:\n  - usage_cap: { uses: 1, per: total }');
      await evaluator.evaluate([once], request());
      const explained = await evaluator.explain([once], request());
      expect(explained.verdicts[0]).toMatchObject({ verdict: 'fail', counter: { remaining: 0 } });
      expect(explained.decision).toEqual(await evaluator.evaluate([once], request()));
    });
  });
});
