/**
 * The normalised form of a policy document, and what evaluating policies takes and returns. Plain
 * values only: `policy-document.ts` builds them, `evaluate-policies.ts` reads them, and the storage
 * step stores the document text beside them.
 */

export const weekdays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof weekdays)[number];

export const ruleKinds = [
  'time_window',
  'ip_allowlist',
  'rate_limit',
  'usage_cap',
  'geo',
  'approval',
] as const;
export type RuleKind = (typeof ruleKinds)[number];

export interface TimeWindowRule {
  kind: 'time_window';
  /** Days on which the window opens, in week order, no repeats. */
  days: Weekday[];
  /** Minutes after local midnight; start is inclusive, end exclusive (end 1440 is "24:00"). */
  start: number;
  end: number;
  /** Canonical IANA name, as `Intl` resolves it. */
  timeZone: string;
}

export interface Cidr {
  family: 'ipv4' | 'ipv6';
  address: string;
  prefix: number;
}

export interface IpAllowlistRule {
  kind: 'ip_allowlist';
  cidrs: Cidr[];
}

/** Whose requests a counter counts: the default is one counter per agent and credential. */
export type CounterScope = 'agent_credential' | 'agent' | 'credential' | 'attachment';

export interface RateLimitRule {
  kind: 'rate_limit';
  requests: number;
  perSeconds: number;
  key: CounterScope;
}

export interface UsageCapRule {
  kind: 'usage_cap';
  uses: number;
  per: 'total' | 'day' | 'month';
  /** Where a day or month begins; UTC unless the document names a zone. */
  timeZone: string;
  key: CounterScope;
}

export interface GeoRule {
  kind: 'geo';
  /** Exactly one of allow and deny is set; ISO 3166-1 alpha-2, upper case. */
  allow?: string[];
  deny?: string[];
  unknownCountry: 'deny' | 'allow';
}

export interface ApprovalRule {
  kind: 'approval';
  approvers: string[];
  timeoutSeconds: number;
  /** One approval lets one request through, or every request of that agent and credential for a time. */
  covers: { kind: 'request' } | { kind: 'time_box'; seconds: number };
}

export type Rule = TimeWindowRule | IpAllowlistRule | RateLimitRule | UsageCapRule | GeoRule | ApprovalRule;

export interface Policy {
  name: string;
  description?: string;
  rules: Rule[];
}

/** The entity a policy is attached to; counters with `key: attachment` count per this. */
export interface Attachment {
  kind: 'agent' | 'agent_key' | 'grant' | 'credential' | 'proxy' | 'proxy_key';
  id: string;
}

export interface AttachedPolicy {
  /** Stable id of the stored policy (its name is enough where nothing is stored, as in tests). */
  id: string;
  policy: Policy;
  attachment: Attachment;
}

/** What the rules may read about a request. Ids, never secrets. */
export interface PolicyRequest {
  agent: string;
  credential: string;
  agentKey?: string;
  grant?: string;
  proxy?: string;
  proxyKey?: string;
  endUser?: string;
  /** After trusted-proxy handling (`clientAddress`). */
  clientAddress: string;
  /** ISO 3166-1 alpha-2 if known; the evaluator asks the geo port when it is absent. */
  country?: string;
  time: Date;
  /** The approval the agent's retry names, if any (for `covers: request`). */
  approvalId?: string;
}

export interface RuleRef {
  index: number;
  kind: RuleKind;
}
