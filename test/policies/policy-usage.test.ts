import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyUsageResetResult, PolicyUsageView } from '../../src/http/schemas/response-types.js';
import { fixedClock } from '../../src/lib/clock.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  auditEventsOf,
  grant,
  requestIdOf,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';
import { attach, createPolicy, retrieveFrom } from './policy-fixtures.js';

/**
 * `policy usage` and `policy reset-usage` (issue 15, usage_cap) against a real vault: what is left
 * after each retrieval, the refusal once the cap is spent, and the audited reset that lets the next
 * request through without moving the access generation.
 */
describe('policy usage and reset-usage', () => {
  const clock = fixedClock('2026-11-25T09:00:00Z');
  let t: TestVault;
  let url: string;
  let alice: TestAgent;
  let bob: TestAgent;
  let bobGrant: string;

  const cli = (args: string[]) =>
    runCli([...args, '--addr', url], { cwd: t.dataDir, env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }) });
  const json = async <T>(args: string[]) => {
    const result = await cli([...args, '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const capLine = (usage: PolicyUsageView, agent: string) =>
    usage.counters.find((c) => c.rule.index === 0 && c.agent?.name === agent);
  const generation = async () =>
    Number(
      (
        await t.vault.store.db
          .selectFrom('access_generation')
          .select('value')
          .where('id', '=', 1)
          .executeTakeFirstOrThrow()
      ).value,
    );

  beforeAll(async () => {
    t = await startTestVault({ clock });
    url = await t.vault.listen();
    await addCredential(t, { name: 'notion', type: 'api_key', secret: { api_key: 'ntn-usage' } });
    alice = await addAgent(t, 'alice');
    bob = await addAgent(t, 'bob');
    await grant(t, { agent: 'alice', credential: 'notion', until_revoked: true, reveal: true });
    bobGrant = (await grant(t, { agent: 'bob', credential: 'notion', until_revoked: true, reveal: true })).id;
    await createPolicy(
      t,
      [
        'name: three-a-day',
        'rules:',
        '  - usage_cap: { uses: 3, per: day, time_zone: Europe/Berlin }',
        '  - rate_limit: { requests: 100, per: 1m }',
        '',
      ].join('\n'),
    );
    await attach(t, 'three-a-day', 'credential', 'notion');
  });
  afterAll(() => t?.stop());

  it('shows every counting rule as full before anything is counted', async () => {
    const usage = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    expect(usage).toMatchObject({ policy: 'three-a-day', version: 1, at: '2026-11-25T09:00:00.000Z' });
    expect(usage.counters).toEqual([
      {
        rule: { index: 0, kind: 'usage_cap' },
        agent: null,
        credential: null,
        attachment: null,
        window: { kind: 'calendar', per: 'day', time_zone: 'Europe/Berlin' },
        limit: 3,
        used: 0,
        remaining: 3,
        // Midnight in Berlin (UTC+1 in November).
        reset_at: '2026-11-25T23:00:00.000Z',
        counted: false,
      },
      {
        rule: { index: 1, kind: 'rate_limit' },
        agent: null,
        credential: null,
        attachment: null,
        window: { kind: 'fixed', seconds: 60 },
        limit: 100,
        used: 0,
        remaining: 100,
        reset_at: '2026-11-25T09:01:00.000Z',
        counted: false,
      },
    ]);
  });

  it('counts down with each retrieval, names the agent and credential, and refuses the fourth', async () => {
    for (let k = 1; k <= 3; k += 1) {
      expect((await retrieveFrom(t, alice, 'notion')).status).toBe(200);
      const line = capLine(await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']), 'alice');
      expect(line).toMatchObject({ used: k, remaining: 3 - k, limit: 3, counted: true });
    }
    const usage = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    const line = capLine(usage, 'alice')!;
    expect(line.agent).toEqual({ id: alice.id, name: 'alice' });
    expect(line.credential).toMatchObject({ name: 'notion' });
    expect(line.reset_at).toBe('2026-11-25T23:00:00.000Z');

    const refused = await retrieveFrom(t, alice, 'notion');
    expect([refused.status, refused.body.error?.code]).toEqual([429, 'usage_cap_exhausted']);
    // Bob has his own counter: all of his three are left, and he is not listed until he uses one.
    expect(capLine(usage, 'bob')).toBeUndefined();
    expect((await retrieveFrom(t, bob, 'notion')).status).toBe(200);

    const text = await cli(['policy', 'usage', 'three-a-day']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(
      /rules\[0\]\.usage_cap\s+agent alice, credential notion\s+per day \(Europe\/Berlin\)\s+3\s+3\s+0/,
    );
    expect(text.stdout).toMatch(/agent bob, credential notion\s+per day \(Europe\/Berlin\)\s+3\s+1\s+2/);
  });

  it('resets one agent’s count, audited, without moving the access generation', async () => {
    const before = await generation();
    const reset = await json<PolicyUsageResetResult>([
      'policy',
      'reset-usage',
      'three-a-day',
      '--rule',
      '0',
      '--agent',
      'alice',
    ]);
    expect(reset).toMatchObject({ policy: 'three-a-day', reset: 1 });
    expect(await generation()).toBe(before);

    const usage = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    expect(capLine(usage, 'alice')).toBeUndefined();
    expect(capLine(usage, 'bob')).toMatchObject({ used: 1, remaining: 2 });
    // The rate limit's counters were not part of the reset.
    expect(usage.counters.filter((c) => c.rule.index === 1 && c.counted)).toHaveLength(2);

    expect((await retrieveFrom(t, alice, 'notion')).status).toBe(200);
    expect(capLine(await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']), 'alice')).toMatchObject({
      used: 1,
      remaining: 2,
    });

    const events = await t.vault.store.db
      .selectFrom('audit_events')
      .selectAll()
      .where('action', '=', 'policy.usage_reset')
      .execute();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ decision: 'allow', actor_type: 'admin', target_id: 'three-a-day' });
    expect(JSON.parse(events[0]!.details)).toMatchObject({
      policy_name: 'three-a-day',
      rule: 0,
      agent_id: alice.id,
      agent_name: 'alice',
      counters_reset: 1,
    });
  });

  it('resets every counter of the policy, and says so in text', async () => {
    const text = await cli(['policy', 'reset-usage', 'three-a-day']);
    expect(text.code, text.stderr).toBe(0);
    // alice's and bob's usage caps and rate limits.
    expect(text.stdout).toContain('Reset 4 counter(s) of policy "three-a-day"');
    const usage = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    expect(usage.counters.map((c) => [c.rule.index, c.counted, c.remaining])).toEqual([
      [0, false, 3],
      [1, false, 100],
    ]);
  });

  it('refuses an unknown policy, agent or rule, and records the refused reset', async () => {
    const unknown = await cli(['policy', 'usage', 'no-such-policy']);
    expect([unknown.code, unknown.stderr]).toEqual([1, expect.stringContaining('policy_not_found')]);
    const rest = await t.request('GET', '/v1/admin/policies/no-such-policy/usage');
    expect(rest.status).toBe(404);
    expect((rest.body as { error: { code: string } }).error.code).toBe('policy_not_found');

    const refused = await t.request('POST', '/v1/admin/policies/no-such-policy/usage/reset', { body: {} });
    expect(refused.status).toBe(404);
    const [event] = await auditEventsOf(t, requestIdOf(refused));
    expect(event).toMatchObject({
      action: 'policy.usage_reset',
      decision: 'deny',
      reason: 'policy_not_found',
    });

    const noAgent = await cli(['policy', 'reset-usage', 'three-a-day', '--agent', 'carol']);
    expect([noAgent.code, noAgent.stderr]).toEqual([1, expect.stringContaining('agent_not_found')]);
    const notCounting = await t.request('POST', '/v1/admin/policies/three-a-day/usage/reset', {
      body: { rule: 5 },
    });
    expect([notCounting.status, (notCounting.body as { error: { code: string } }).error.code]).toEqual([
      400,
      'invalid_request',
    ]);
    const badRule = await cli(['policy', 'reset-usage', 'three-a-day', '--rule', 'first']);
    expect([badRule.code, badRule.stderr]).toEqual([2, expect.stringContaining('--rule must be')]);
  });

  it('reads what is left against the current limit after the policy is edited', async () => {
    expect((await retrieveFrom(t, alice, 'notion')).status).toBe(200);
    const raised = await t.request('PUT', '/v1/admin/policies/three-a-day', {
      body: {
        document:
          'name: three-a-day\nrules:\n  - usage_cap: { uses: 5, per: day, time_zone: Europe/Berlin }\n',
      },
    });
    expect(raised.status, raised.text).toBe(200);
    const usage = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    expect(usage.version).toBe(2);
    expect(capLine(usage, 'alice')).toMatchObject({ limit: 5, used: 1, remaining: 4 });
    // The old rate limit's counter is still listed, by its position, until it is reset or ages out.
    expect(usage.counters.find((c) => c.rule.index === 1)).toMatchObject({ rule: { index: 1, kind: null } });
  });

  it('names the entity of a per-attachment counter, and resets by credential', async () => {
    await createPolicy(
      t,
      'name: per-grant\nrules:\n  - rate_limit: { requests: 10, per: 1m, key: attachment }\n',
    );
    await attach(t, 'per-grant', 'grant', bobGrant);
    expect((await retrieveFrom(t, bob, 'notion')).status).toBe(200);
    const usage = await json<PolicyUsageView>(['policy', 'usage', 'per-grant']);
    expect(usage.counters).toMatchObject([
      {
        rule: { index: 0, kind: 'rate_limit' },
        agent: null,
        credential: null,
        attachment: { kind: 'grant', id: bobGrant },
        used: 1,
        remaining: 9,
        counted: true,
      },
    ]);

    // three-a-day counts per agent and credential: alice's cap, alice's old rule 1, bob's cap.
    const reset = await json<PolicyUsageResetResult>([
      'policy',
      'reset-usage',
      'three-a-day',
      '--credential',
      'notion',
    ]);
    expect(reset.reset).toBe(3);
    const after = await json<PolicyUsageView>(['policy', 'usage', 'three-a-day']);
    expect(after.counters.map((c) => [c.rule.index, c.counted])).toEqual([[0, false]]);
    // Another policy's counters are its own.
    expect((await json<PolicyUsageView>(['policy', 'usage', 'per-grant'])).counters[0]).toMatchObject({
      used: 1,
    });
  });
});
