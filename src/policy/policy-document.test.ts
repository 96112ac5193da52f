import { describe, expect, it } from 'vitest';
import { VaultError } from '../errors/vault-error.js';
import { loadPolicyDocument, parsePolicyDocument } from './policy-document.js';

const issueExample = `
name: business-hours
description: Notion only during office hours, from the office, at most 100 calls a minute
rules:
  - time_window: { days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00", time_zone: Europe/Berlin }
  - ip_allowlist: { cidrs: [203.0.113.0/24, "2001:db8::/32"] }
  - rate_limit: { requests: 100, per: 1m }          # per agent × credential unless \`key:\` says otherwise
  - usage_cap: { uses: 1000, per: day }             # per: total | day | month
  - geo: { allow: [DE, FR] }                        # or deny: [...]; unknown_country: deny | allow
  - approval: { approvers: [alice, bob], timeout: 15m, covers: request }   # or covers: 30m
`;

const problemsOf = (text: string) => {
  const result = parsePolicyDocument(text);
  if (result.ok) throw new Error('expected problems');
  return result.problems;
};

describe('policy documents', () => {
  it('reads the issue’s example and normalises every rule', () => {
    expect(loadPolicyDocument(issueExample)).toEqual({
      name: 'business-hours',
      description: 'Notion only during office hours, from the office, at most 100 calls a minute',
      rules: [
        {
          kind: 'time_window',
          days: ['mon', 'tue', 'wed', 'thu', 'fri'],
          start: 540,
          end: 1080,
          timeZone: 'Europe/Berlin',
        },
        {
          kind: 'ip_allowlist',
          cidrs: [
            { family: 'ipv4', address: '203.0.113.0', prefix: 24 },
            { family: 'ipv6', address: '2001:db8::', prefix: 32 },
          ],
        },
        { kind: 'rate_limit', requests: 100, perSeconds: 60, key: 'agent_credential' },
        { kind: 'usage_cap', uses: 1000, per: 'day', timeZone: 'UTC', key: 'agent_credential' },
        { kind: 'geo', allow: ['DE', 'FR'], unknownCountry: 'deny' },
        { kind: 'approval', approvers: ['alice', 'bob'], timeoutSeconds: 900, covers: { kind: 'request' } },
      ],
    });
  });

  it('reads the same document written as JSON', () => {
    const json = JSON.stringify({
      name: 'json-policy',
      rules: [
        { approval: { approvers: ['alice'], timeout: '1h', covers: '30m' } },
        { geo: { deny: ['ru', 'KP'], unknown_country: 'allow' } },
        { time_window: { days: ['Saturday', 'sun', 'sat'], start: '22:00', end: '02:00', time_zone: 'UTC' } },
      ],
    });
    expect(loadPolicyDocument(json).rules).toEqual([
      {
        kind: 'approval',
        approvers: ['alice'],
        timeoutSeconds: 3600,
        covers: { kind: 'time_box', seconds: 1800 },
      },
      { kind: 'geo', deny: ['RU', 'KP'], unknownCountry: 'allow' },
      { kind: 'time_window', days: ['sat', 'sun'], start: 1320, end: 120, timeZone: 'UTC' },
    ]);
  });

  it('reports every problem at once, each by its path', () => {
    const problems = problemsOf(`
name: Bad Name
colour: blue
rules:
  - time_window: { days: [mon, funday], start: "25:00", end: "18:00", time_zone: Mars/Olympus }
  - ip_allowlist: { cidrs: [203.0.113.0/33, "2001:db8::/32"], extra: 1 }
  - rate_limit: { requests: 0, per: 1 minute }
  - usage_cap: { uses: 10, per: week }
  - geo: { allow: [DE], deny: [FR] }
  - approval: { approvers: [], timeout: soon, covers: forever }
  - teleport: {}
  - { time_window: { start: "09:00", end: "10:00", time_zone: UTC }, geo: { allow: [DE] } }
  - rate_limit: { requests: 5, per: 0s, key: everyone }
  - usage_cap: { uses: 5, per: total, time_zone: UTC }
  - approval: { approvers: [alice], timeout: 15m, covers: 1x }
`);
    expect(problems).toEqual([
      'colour: is not a known field',
      'name: "Bad Name" is not a name (1 to 64 lowercase letters, digits, -, _ and ., starting with a letter or digit)',
      'rules[0].time_window.days[1]: "funday" is not a day (mon … sun)',
      'rules[0].time_window.start: "25:00" is not a time HH:MM',
      'rules[0].time_window.time_zone: "Mars/Olympus" is not an IANA time zone like Europe/Berlin',
      'rules[1].ip_allowlist.extra: is not a known field',
      'rules[2].rate_limit.requests: must be a whole number of at least 1',
      'rules[3].usage_cap.per: must be one of total, day, month',
      'rules[4].geo.deny: give exactly one of allow and deny',
      'rules[5].approval.approvers: must list at least 1',
      'rules[6].teleport: is not a rule kind (time_window, ip_allowlist, rate_limit, usage_cap, geo, approval)',
      'rules[7]: must be an object with exactly one rule kind (time_window, ip_allowlist, rate_limit, usage_cap, geo, approval)',
      'rules[8].rate_limit.key: must be one of agent_credential, agent, credential, attachment',
      'rules[9].usage_cap.time_zone: only applies to per: day or per: month',
      'rules[10].approval.covers: "1x" is neither "request" nor a duration like 30m',
    ]);
  });

  it('checks values once the structure is right, with a message about the value', () => {
    expect(
      problemsOf(
        'name: p\nrules:\n  - ip_allowlist: { cidrs: [203.0.113.0/33] }\n  - rate_limit: { requests: 5, per: 1 minute }',
      ),
    ).toEqual([
      'rules[0].ip_allowlist.cidrs[0]: "203.0.113.0/33" is not an IPv4 or IPv6 address or CIDR',
      'rules[1].rate_limit.per: "1 minute" is not a duration like 30s, 15m, 1h or 1d',
    ]);
    expect(
      problemsOf('name: p\nrules:\n  - time_window: { start: "09:00", end: "09:00", time_zone: UTC }'),
    ).toEqual([
      'rules[0].time_window.end: equals start, so the window would be empty; for a whole day use 00:00–24:00',
    ]);
  });

  it('requires a name and at least one rule, and refuses duplicate keys and broken YAML', () => {
    expect(problemsOf('description: x')).toEqual(['name: is required', 'rules: is required']);
    expect(problemsOf('name: p\nrules: []')).toEqual(['rules: must list at least 1']);
    expect(problemsOf('name: p\nname: q\nrules: []')[0]).toMatch(/^\(document\): .*unique/i);
    expect(problemsOf('name: [unclosed')[0]).toMatch(/^\(document\): /);
    expect(problemsOf('just text')).toEqual(['(document): expected object']);
  });

  it('defaults and canonical forms: every day, the zone’s IANA spelling, UTC days for caps, deny unknown countries, one request per approval', () => {
    const policy = loadPolicyDocument(`
name: defaults
rules:
  - time_window: { start: "00:00", end: "24:00", time_zone: europe/berlin }
  - usage_cap: { uses: 1, per: month, key: attachment }
  - geo: { allow: [de] }
  - approval: { approvers: [alice], timeout: 5m }
`);
    expect(policy.rules).toEqual([
      {
        kind: 'time_window',
        days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
        start: 0,
        end: 1440,
        timeZone: 'Europe/Berlin',
      },
      { kind: 'usage_cap', uses: 1, per: 'month', timeZone: 'UTC', key: 'attachment' },
      { kind: 'geo', allow: ['DE'], unknownCountry: 'deny' },
      { kind: 'approval', approvers: ['alice'], timeoutSeconds: 300, covers: { kind: 'request' } },
    ]);
  });

  it('loadPolicyDocument throws invalid_policy with the problems in details', () => {
    let thrown: unknown;
    try {
      loadPolicyDocument('name: p\nrules:\n  - geo: {}');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(VaultError);
    expect((thrown as VaultError).code).toBe('invalid_policy');
    expect((thrown as VaultError).details).toEqual({
      problems: ['rules[0].geo.allow: give exactly one of allow and deny'],
    });
  });
});
