import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import {
  addAgent,
  addCredential,
  errorOf,
  grant,
  onlyAuditEventOf,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { attach, createPolicy, detach, retrieveFrom } from './policy-fixtures.js';

/**
 * Issue 15 items 1 and 2: policies stored, versioned, attached and detached through the admin API,
 * and enforced at the one decision point on the retrieval path, the refusal naming policy and rule
 * in the answer and in the audit event.
 */
describe('policies: storage, attachments and enforcement through the real vault', () => {
  // A Wednesday, 10:00 in Berlin.
  const clock = fixedClock('2026-11-25T09:00:00Z');
  let t: TestVault;
  let agent: TestAgent;
  let other: TestAgent;
  let grantId: string;

  const hourly = (requests: number, key = 'agent_credential') =>
    `name: hourly\nrules:\n  - rate_limit: { requests: ${requests}, per: 1h, key: ${key} }\n`;

  beforeAll(async () => {
    t = await startTestVault({ clock });
    await addCredential(t, { name: 'notion', type: 'api_key', secret: { api_key: 'ntn-policy-test' } });
    agent = await addAgent(t, 'agent-b');
    other = await addAgent(t, 'agent-c');
    grantId = (await grant(t, { agent: 'agent-b', credential: 'notion', until_revoked: true, reveal: true }))
      .id;
    await grant(t, { agent: 'agent-c', credential: 'notion', until_revoked: true, reveal: true });
  });
  afterAll(() => t?.stop());

  it('refuses a document with every problem named by its path, and a name taken twice', async () => {
    const bad = await t.request('POST', '/v1/admin/policies', {
      body: {
        document:
          'name: bad\nrules:\n  - time_window: { start: "25:00", end: "18:00", time_zone: Europe/Berlin }\n  - ip_allowlist: { cidrs: [10.0.0.0/8], extra: 1 }\n',
      },
    });
    expect(bad.status).toBe(400);
    expect(errorOf(bad.body).code).toBe('invalid_policy');
    expect(errorOf(bad.body).message).toContain('rules[0].time_window.start');
    expect(errorOf(bad.body).message).toContain('rules[1].ip_allowlist.extra: is not a known field');

    await createPolicy(t, hourly(100));
    const again = await t.request('POST', '/v1/admin/policies', { body: { document: hourly(5) } });
    expect([again.status, errorOf(again.body).code]).toEqual([409, 'policy_exists']);
  });

  it('keeps every version: update adds one, show gives the current, versions the history', async () => {
    const updated = await t.request('PUT', '/v1/admin/policies/hourly', { body: { document: hourly(3) } });
    expect(updated.status, updated.text).toBe(200);
    expect(updated.body).toMatchObject({ name: 'hourly', version: 2, rules: ['rules[0].rate_limit'] });
    const renamed = await t.request('PUT', '/v1/admin/policies/hourly', {
      body: { document: hourly(3).replace('name: hourly', 'name: other') },
    });
    expect([renamed.status, errorOf(renamed.body).code]).toEqual([400, 'invalid_policy']);
    const versions = await t.request('GET', '/v1/admin/policies/hourly/versions');
    const items = (versions.body as { items: { version: number; document: string }[] }).items;
    expect(items.map((v) => v.version)).toEqual([2, 1]);
    expect(items[1]!.document).toContain('requests: 100');
    const shown = await t.request('GET', '/v1/admin/policies/hourly');
    expect(shown.body).toMatchObject({ version: 2, document: hourly(3), attachments: [] });
    const listed = await t.request('GET', '/v1/admin/policies');
    expect(listed.body).toMatchObject({ items: [{ name: 'hourly', version: 2, rules: 1, attachments: 0 }] });
  });

  it('enforces a policy attached to the agent on the next request, and names it in the refusal and audit', async () => {
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    await attach(t, 'hourly', 'agent', 'agent-b');
    // The count starts at the attach: three in the hour, the fourth refused.
    for (let i = 0; i < 3; i += 1) expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    const refused = await retrieveFrom(t, agent, 'notion');
    expect([refused.status, refused.body.error?.code]).toEqual([429, 'rate_limited']);
    expect(refused.body.error?.message).toContain('Refused by policy "hourly", rule 0 (rate_limit)');
    expect(Number(refused.headers['retry-after'])).toBe(3600);
    const event = await onlyAuditEventOf(t, refused);
    expect(event).toMatchObject({
      action: 'credential.retrieve',
      decision: 'deny',
      reason: 'rate_limited',
      details: { policy: 'hourly', policy_rule: 'rules[0].rate_limit', grant_id: grantId },
    });
    // The other agent has no policy on its path.
    expect((await retrieveFrom(t, other, 'notion')).status).toBe(200);
  });

  it('lifts the policy on the very next request once detached; detaching again changes nothing', async () => {
    expect(await detach(t, 'hourly', 'agent', agent.id)).toEqual({ policy: 'hourly', detached: true });
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    expect(await detach(t, 'hourly', 'agent', 'agent-b')).toEqual({ policy: 'hourly', detached: false });
  });

  it('applies a policy attached to the credential, the grant or the agent key, and to nothing else', async () => {
    await createPolicy(t, 'name: loopback-only\nrules:\n  - ip_allowlist: { cidrs: [127.0.0.0/8, "::1"] }\n');
    const keys = await t.request('GET', '/v1/admin/agents/agent-b/keys');
    const keyId = (keys.body as { items: { id: string }[] }).items[0]!.id;
    for (const [kind, target] of [
      ['credential', 'notion'],
      ['grant', grantId],
      ['agent_key', keyId],
    ] as const) {
      expect((await attach(t, 'loopback-only', kind, target)).already_attached).toBe(false);
      expect((await retrieveFrom(t, agent, 'notion', '127.0.0.1')).status).toBe(200);
      const outside = await retrieveFrom(t, agent, 'notion', '198.51.100.7');
      expect([kind, outside.status, outside.body.error?.code]).toEqual([kind, 403, 'policy_denied']);
      expect(outside.body.error?.message).toContain('client address 198.51.100.7 is not in the allowlist');
      // The other agent's request through the same credential is bound by a credential's policy only.
      const others = (await retrieveFrom(t, other, 'notion', '198.51.100.7')).status;
      expect([kind, others]).toEqual([kind, kind === 'credential' ? 403 : 200]);
      await detach(t, 'loopback-only', kind, target);
      expect((await retrieveFrom(t, agent, 'notion', '198.51.100.7')).status).toBe(200);
    }
  });

  it('refuses to attach to what does not exist, by the kind’s own code', async () => {
    for (const [kind, target, code] of [
      ['agent', 'nobody', 'agent_not_found'],
      ['credential', 'nothing', 'credential_not_found'],
      ['grant', 'no-grant', 'grant_not_found'],
      ['agent_key', 'no-key', 'agent_key_not_found'],
    ] as const) {
      const response = await t.request('POST', '/v1/admin/policies/loopback-only/attach', {
        body: { kind, target },
      });
      expect([kind, response.status, errorOf(response.body).code]).toEqual([kind, 404, code]);
    }
    const missing = await t.request('POST', '/v1/admin/policies/nope/attach', {
      body: { kind: 'agent', target: 'agent-b' },
    });
    expect(errorOf(missing.body).code).toBe('policy_not_found');
  });

  it('applies an update to an attached policy on the next request', async () => {
    await attach(t, 'hourly', 'credential', 'notion');
    // Counts belong to the policy and the rule's place in it: the earlier three still count.
    const refused = await retrieveFrom(t, agent, 'notion');
    expect(refused.body.error?.code).toBe('rate_limited');
    const raised = await t.request('PUT', '/v1/admin/policies/hourly', { body: { document: hourly(50) } });
    expect(raised.status).toBe(200);
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
  });

  it('refuses to remove an attached policy unless forced, and records every change', async () => {
    const refused = await t.request('DELETE', '/v1/admin/policies/hourly');
    expect([refused.status, errorOf(refused.body).code]).toEqual([409, 'policy_in_use']);
    const removed = await t.request('DELETE', '/v1/admin/policies/hourly?force=true');
    expect(removed.status, removed.text).toBe(200);
    expect((await t.request('GET', '/v1/admin/policies/hourly')).status).toBe(404);
    const events = await t.vault.store.db
      .selectFrom('audit_events')
      .select(['action', 'decision', 'reason'])
      .where('action', 'like', 'policy.%')
      .orderBy('seq')
      .execute();
    const actions = new Set(events.map((e) => `${e.action}:${e.decision}`));
    for (const expected of [
      'policy.create:allow',
      'policy.create:deny',
      'policy.update:allow',
      'policy.update:deny',
      'policy.attach:allow',
      'policy.attach:deny',
      'policy.detach:allow',
      'policy.delete:deny',
      'policy.delete:allow',
    ]) {
      expect(actions, expected).toContain(expected);
    }
  });
});
