import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  auditEventsOf,
  grant,
  onlyAuditEventOf,
  requestIdOf,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';
import { attach, createPolicy, detach, retrieveFrom, seedPolicy } from './policy-fixtures.js';

/**
 * Issue 15 item 5: each example in docs/policies, stored and attached through the admin API and
 * enforced on real retrievals with an injected clock. The server runs in a time zone far from the
 * policy's (UTC+14, where Friday 17:00 UTC is already Saturday), so a window judged in the server's
 * zone instead of the policy's would fail here.
 */
describe('the example policies, through the real vault, in a server time zone of UTC+14', () => {
  const clock = fixedClock('2026-11-27T10:00:00Z');
  const serverZone = process.env.TZ;
  let t: TestVault;
  let agent: TestAgent;

  beforeAll(async () => {
    process.env.TZ = 'Pacific/Kiritimati';
    // Node applies a changed TZ at once: this process's local time is now UTC+14.
    expect(new Date('2026-11-27T17:00:00Z').getHours()).toBe(7);
    expect(new Date('2026-11-27T17:00:00Z').getDay()).toBe(6);
    t = await startTestVault({ clock });
    await addCredential(t, { name: 'notion', type: 'api_key', secret: { api_key: 'ntn-seed' } });
    agent = await addAgent(t, 'agent-b');
    await grant(t, { agent: 'agent-b', credential: 'notion', until_revoked: true, reveal: true });
  });
  afterAll(async () => {
    await t?.stop();
    if (serverZone === undefined) delete process.env.TZ;
    else process.env.TZ = serverZone;
  });

  it('business hours: Friday 17:59 in Berlin allowed; 18:00 and Saturday refused, naming the rule', async () => {
    await createPolicy(t, seedPolicy('business-hours.yaml'));
    await attach(t, 'business-hours', 'credential', 'notion');
    clock.set('2026-11-27T16:59:00Z'); // Friday 17:59 in Berlin (CET, UTC+1)
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    clock.set('2026-11-27T16:59:59.999Z');
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);

    clock.set('2026-11-27T17:00:00Z'); // Friday 18:00 in Berlin
    const closed = await retrieveFrom(t, agent, 'notion');
    expect([closed.status, closed.body.error?.code]).toEqual([403, 'policy_denied']);
    expect(closed.body.error?.message).toBe(
      'Refused by policy "business-hours", rule 0 (time_window): outside the time window mon,tue,wed,thu,fri 09:00–18:00 Europe/Berlin (it is fri 18:00 there).',
    );
    expect(await onlyAuditEventOf(t, closed)).toMatchObject({
      decision: 'deny',
      reason: 'policy_denied',
      details: { policy: 'business-hours', policy_rule: 'rules[0].time_window' },
    });

    for (const saturday of ['2026-11-28T08:00:00Z', '2026-11-28T12:00:00Z']) {
      clock.set(saturday);
      expect((await retrieveFrom(t, agent, 'notion')).body.error?.message).toContain('(it is sat');
    }
    clock.set('2026-11-30T08:00:00Z'); // Monday 09:00 in Berlin
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    await detach(t, 'business-hours', 'credential', 'notion');
  });

  it('office IP range: inside over IPv4, IPv4-mapped IPv6 and IPv6; outside refused', async () => {
    await createPolicy(t, seedPolicy('office-ip-range.yaml'));
    await attach(t, 'office-ip-range', 'agent', 'agent-b');
    for (const ip of ['203.0.113.200', '::ffff:203.0.113.9', '2001:db8:1234:5::1']) {
      expect([ip, (await retrieveFrom(t, agent, 'notion', ip)).status]).toEqual([ip, 200]);
    }
    for (const ip of ['203.0.114.1', '2001:db8:1235::1', '127.0.0.1']) {
      const refused = await retrieveFrom(t, agent, 'notion', ip);
      expect([ip, refused.body.error?.code]).toEqual([ip, 'policy_denied']);
    }
    await detach(t, 'office-ip-range', 'agent', 'agent-b');
  });

  it('100 calls a day: the 100th allowed, the 101st refused until the next New York day', async () => {
    await createPolicy(t, seedPolicy('daily-100.json'));
    await attach(t, 'daily-100', 'credential', 'notion');
    clock.set('2026-11-27T23:00:00Z'); // 18:00 in New York
    const statuses: number[] = [];
    for (let i = 0; i < 100; i += 1) statuses.push((await retrieveFrom(t, agent, 'notion')).status);
    expect(statuses.every((status) => status === 200)).toBe(true);
    const spent = await retrieveFrom(t, agent, 'notion');
    expect([spent.status, spent.body.error?.code]).toEqual([429, 'usage_cap_exhausted']);
    // The New York day ends at 05:00 UTC: six hours.
    expect(Number(spent.headers['retry-after'])).toBe(6 * 3600);
    clock.set('2026-11-28T04:59:59Z');
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(429);
    clock.set('2026-11-28T05:00:00Z');
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    await detach(t, 'daily-100', 'credential', 'notion');
  });

  it('production approval: the request is held for a person, naming the approval rule', async () => {
    await createPolicy(t, seedPolicy('production-approval.yaml'));
    await attach(t, 'production-approval', 'credential', 'notion');
    const dryRun = await t.request('POST', '/v1/admin/policies/test', {
      body: { agent: 'agent-b', credential: 'notion' },
    });
    expect(dryRun.body).toMatchObject({
      decision: 'pending',
      message: 'policy "production-approval" needs approval by one of alice, bob',
    });
    // Parked for a person (docs/approvals.md): 202 with the approval to wait on.
    const held = await retrieveFrom(t, agent, 'notion');
    expect([held.status, held.body.error?.code]).toEqual([202, 'approval_pending']);
    expect(held.body.error?.message).toContain('Policy production-approval (rules[0].approval)');
    const events = await auditEventsOf(t, requestIdOf(held));
    expect(events.map((e) => e.action).sort()).toEqual(['approval.request', 'credential.retrieve']);
    expect(events.find((e) => e.action === 'credential.retrieve')).toMatchObject({
      reason: 'approval_pending',
      details: { policy: 'production-approval', policy_rule: 'rules[0].approval' },
    });
  });
});
