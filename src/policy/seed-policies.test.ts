import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createCountryLookup } from './country-lookup.js';
import { createMemoryCounters } from './counters.js';
import { createPolicyEvaluator } from './evaluate-policies.js';
import { loadPolicyDocument } from './policy-document.js';
import type { AttachedPolicy, PolicyRequest } from './policy-types.js';

const folder = new URL('../../docs/policies/', import.meta.url);
const load = (file: string): AttachedPolicy => {
  const policy = loadPolicyDocument(readFileSync(new URL(file, folder), 'utf8'));
  return { id: policy.name, policy, attachment: { kind: 'credential', id: 'cred_notion' } };
};

const evaluator = () =>
  createPolicyEvaluator({
    counters: createMemoryCounters(),
    approvals: { covering: () => Promise.resolve(undefined) },
    countries: createCountryLookup(),
  });

const request = (time: string, clientAddress = '203.0.113.5'): PolicyRequest => ({
  agent: 'agt_1',
  credential: 'cred_notion',
  clientAddress,
  time: new Date(time),
});

describe('the example policies in docs/policies', () => {
  it('every file there is valid and named after its policy', () => {
    const files = readdirSync(folder);
    expect(files.sort()).toEqual([
      'business-hours.yaml',
      'daily-100.json',
      'office-ip-range.yaml',
      'production-approval.yaml',
    ]);
    for (const file of files) expect(load(file).policy.name).toBe(file.replace(/\.(yaml|json)$/, ''));
  });

  it('business hours: Friday 17:59 in Berlin allowed, 18:00 and Saturday refused', async () => {
    const hours = [load('business-hours.yaml')];
    const decide = evaluator();
    expect((await decide.evaluate(hours, request('2026-11-27T16:59:00Z'))).outcome).toBe('allow');
    expect((await decide.evaluate(hours, request('2026-11-27T17:00:00Z'))).outcome).toBe('deny');
    expect((await decide.evaluate(hours, request('2026-11-28T10:00:00Z'))).outcome).toBe('deny');
  });

  it('office IP range: inside over IPv4, IPv4-mapped and IPv6; outside refused', async () => {
    const office = [load('office-ip-range.yaml')];
    const decide = evaluator();
    for (const address of ['203.0.113.200', '::ffff:203.0.113.9', '2001:db8:1234:5::1']) {
      expect((await decide.evaluate(office, request('2026-11-27T10:00:00Z', address))).outcome, address).toBe(
        'allow',
      );
    }
    for (const address of ['203.0.114.1', '2001:db8:1235::1']) {
      expect((await decide.evaluate(office, request('2026-11-27T10:00:00Z', address))).outcome, address).toBe(
        'deny',
      );
    }
  });

  it('100 a day: the 100th call allowed, the 101st refused, the next New York day allowed again', async () => {
    const daily = [load('daily-100.json')];
    const decide = evaluator();
    // 23:00Z on 27 November is 18:00 in New York: the same New York day until 05:00Z.
    const outcomes = [];
    for (let i = 0; i < 101; i += 1)
      outcomes.push((await decide.evaluate(daily, request('2026-11-27T23:00:00Z'))).outcome);
    expect(outcomes.filter((outcome) => outcome === 'allow')).toHaveLength(100);
    expect(outcomes[100]).toBe('deny');
    expect((await decide.evaluate(daily, request('2026-11-28T04:59:00Z'))).outcome).toBe('deny');
    expect((await decide.evaluate(daily, request('2026-11-28T05:00:00Z'))).outcome).toBe('allow');
  });

  it('production approval: parked for alice or bob, for 15 minutes, covering 30', async () => {
    expect(
      await evaluator().evaluate([load('production-approval.yaml')], request('2026-11-27T10:00:00Z')),
    ).toMatchObject({
      outcome: 'pending',
      approval: {
        approvers: ['alice', 'bob'],
        timeoutSeconds: 900,
        covers: { kind: 'time_box', seconds: 1800 },
      },
    });
  });
});
