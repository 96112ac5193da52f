import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import type { PolicyDryRunView, PolicyList, PolicyView } from '../../src/http/schemas/response-types.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { retrieveFrom } from './policy-fixtures.js';

/**
 * `tokenvault policy …` as a person runs it (real processes, real HTTP), and the dry run (issue 15
 * item 4): every rule's verdict, and nothing counted.
 */
describe('policy CLI and dry run', () => {
  const clock = fixedClock('2026-11-25T09:00:00Z');
  let t: TestVault;
  let url: string;
  let agent: TestAgent;
  const docs = new URL('../../docs/policies/', import.meta.url);

  const cli = (args: string[], input?: string) =>
    runCli([...args, '--addr', url], {
      cwd: t.dataDir,
      env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }),
      input,
    });
  const json = async <T>(args: string[]) => {
    const result = await cli([...args, '--json']);
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };

  beforeAll(async () => {
    t = await startTestVault({ clock });
    url = await t.vault.listen();
    await addCredential(t, { name: 'notion', type: 'api_key', secret: { api_key: 'ntn-cli' } });
    agent = await addAgent(t, 'agent-b');
    await grant(t, { agent: 'agent-b', credential: 'notion', until_revoked: true, reveal: true });
  });
  afterAll(() => t?.stop());

  it('creates from a file, lists, shows, attaches, updates, detaches and removes', async () => {
    const created = await json<PolicyView>([
      'policy',
      'create',
      new URL('business-hours.yaml', docs).pathname,
    ]);
    expect(created).toMatchObject({ name: 'business-hours', version: 1, rules: ['rules[0].time_window'] });
    const listed = await json<PolicyList['items']>(['policy', 'list']);
    expect(listed).toMatchObject([{ name: 'business-hours', version: 1, attachments: 0 }]);

    const attached = await cli(['policy', 'attach', 'business-hours', '--credential', 'notion']);
    expect(attached.code, attached.stderr).toBe(0);
    expect(attached.stdout).toContain('Attached policy "business-hours" to credential notion');
    const both = await cli(['policy', 'attach', 'business-hours', '--credential', 'notion', '--agent', 'x']);
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining('exactly one of --agent')]);

    const shown = await cli(['policy', 'show', 'business-hours']);
    expect(shown.stdout).toContain('attached to');
    expect(shown.stdout).toContain("time_window: { days: [mon, tue, wed, thu, fri], start: '09:00'");

    const file = join(t.dataDir, 'later.yaml');
    writeFileSync(
      file,
      "name: business-hours\nrules:\n  - time_window: { start: '08:00', end: '20:00', time_zone: Europe/Berlin }\n",
    );
    const updated = await cli(['policy', 'update', 'business-hours', file]);
    expect(updated.stdout).toContain('Updated policy "business-hours" to version 2.');
    const history = await json<{ version: number }[]>(['policy', 'show', 'business-hours', '--history']);
    expect(history.map((v) => v.version)).toEqual([2, 1]);

    const refused = await cli(['policy', 'rm', 'business-hours']);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringContaining('policy_in_use')]);
    const detached = await cli(['policy', 'detach', 'business-hours', '--credential', 'notion']);
    expect(detached.stdout).toContain('Detached policy "business-hours" from credential notion.');
    const removed = await cli(['policy', 'rm', 'business-hours']);
    expect(removed.stdout).toContain('Removed policy "business-hours".');
  }, 120_000);

  it('reports every problem of a document by its path', async () => {
    const file = join(t.dataDir, 'bad.yaml');
    writeFileSync(file, 'name: Bad Name\nrules:\n  - usage_cap: { uses: 0, per: week }\n  - teleport: {}\n');
    const result = await cli(['policy', 'create', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('invalid_policy');
    for (const path of ['name:', 'rules[0].usage_cap.uses', 'rules[0].usage_cap.per', 'rules[1]']) {
      expect(result.stderr).toContain(path);
    }
  });

  it('explains a decision rule by rule, at a given time and address, without counting', async () => {
    writeFileSync(
      join(t.dataDir, 'guarded.yaml'),
      [
        'name: guarded',
        'rules:',
        "  - time_window: { days: [mon, tue, wed, thu, fri], start: '09:00', end: '18:00', time_zone: Europe/Berlin }",
        '  - ip_allowlist: { cidrs: [127.0.0.0/8, 203.0.113.0/24] }',
        '  - rate_limit: { requests: 2, per: 1h }',
        '  - geo: { deny: [KP], unknown_country: allow }',
        '',
      ].join('\n'),
    );
    await json(['policy', 'create', join(t.dataDir, 'guarded.yaml')]);
    await json(['policy', 'attach', 'guarded', '--agent', 'agent-b']);
    const test = (extra: string[]) =>
      json<PolicyDryRunView>(['policy', 'test', '--agent', 'agent-b', '--credential', 'notion', ...extra]);

    for (let i = 0; i < 3; i += 1) {
      const allowed = await test(['--ip', '203.0.113.9', '--at', '2026-11-27T17:59:00+01:00']);
      expect(allowed).toMatchObject({ decision: 'allow', grant: { outcome: 'allow' } });
      expect(allowed.rules.map((r) => [r.rule, r.verdict])).toEqual([
        ['rules[0].time_window', 'pass'],
        ['rules[1].ip_allowlist', 'pass'],
        ['rules[2].rate_limit', 'pass'],
        ['rules[3].geo', 'pass'],
      ]);
      // Peeked, never counted: still two left however often the dry run asks.
      expect(allowed.rules[2]).toMatchObject({ remaining: 2 });
    }

    const late = await test(['--ip', '198.51.100.1', '--at', '2026-11-27T18:00:00+01:00', '--country', 'KP']);
    expect(late).toMatchObject({ decision: 'deny', code: 'policy_denied' });
    expect(late.rules.map((r) => r.verdict)).toEqual(['fail', 'fail', 'pass', 'fail']);
    expect(late.message).toContain('outside the time window');

    // Two real requests use the allowance; the dry run then sees the limit reached.
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    expect((await retrieveFrom(t, agent, 'notion')).status).toBe(200);
    const spent = await test(['--ip', '127.0.0.1']);
    expect(spent).toMatchObject({ decision: 'deny', code: 'rate_limited' });
    expect(spent.rules[2]).toMatchObject({ verdict: 'fail', remaining: 0 });

    const text = await cli([
      'policy',
      'test',
      '--agent',
      'agent-b',
      '--credential',
      'notion',
      '--ip',
      '127.0.0.1',
    ]);
    expect(text.stdout).toContain('DENY (rate_limited)');
    expect(text.stdout).toContain('Nothing was counted.');

    const ungranted = await json<PolicyDryRunView>([
      'policy',
      'test',
      '--agent',
      'agent-b',
      '--credential',
      'github',
    ]);
    expect(ungranted).toMatchObject({ decision: 'deny', code: 'credential_not_granted' });
  }, 120_000);
});
