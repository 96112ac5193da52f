import { formatDuration } from '../lib/duration.js';
import type { CountryLookup } from './country-lookup.js';
import type { CounterRequirement } from './counters.js';
import { addressMatcher, formatCidr, type AddressMatcher } from './ip-match.js';
import type {
  AttachedPolicy,
  GeoRule,
  IpAllowlistRule,
  PolicyRequest,
  RateLimitRule,
  Rule,
  TimeWindowRule,
  UsageCapRule,
} from './policy-types.js';
import { formatMinutes, wallClock, withinTimeWindow } from './time-window.js';

export type Check = { pass: true } | { pass: false; message: string };

const pass: Check = { pass: true };

const describeWindow = (rule: TimeWindowRule) =>
  `${rule.days.join(',')} ${formatMinutes(rule.start)}–${formatMinutes(rule.end)} ${rule.timeZone}`;

const checkTimeWindow = (rule: TimeWindowRule, request: PolicyRequest): Check => {
  if (withinTimeWindow(rule, request.time)) return pass;
  const local = wallClock(request.time, rule.timeZone);
  return {
    pass: false,
    message: `outside the time window ${describeWindow(rule)} (it is ${local.weekday} ${formatMinutes(local.minute)} there)`,
  };
};

// A rule's matcher is built once per normalised rule object, not per request.
const matchers = new WeakMap<IpAllowlistRule, AddressMatcher>();

const checkIpAllowlist = (rule: IpAllowlistRule, request: PolicyRequest): Check => {
  let matcher = matchers.get(rule);
  if (matcher === undefined) {
    matcher = addressMatcher(rule.cidrs);
    matchers.set(rule, matcher);
  }
  if (matcher.matches(request.clientAddress)) return pass;
  return {
    pass: false,
    message: `client address ${request.clientAddress} is not in the allowlist (${rule.cidrs.map(formatCidr).join(', ')})`,
  };
};

const checkGeo = (rule: GeoRule, request: PolicyRequest, countries: CountryLookup): Check => {
  const country = request.country ?? countries.countryOf(request.clientAddress);
  if (country === undefined) {
    return rule.unknownCountry === 'allow'
      ? pass
      : {
          pass: false,
          message: `the country of ${request.clientAddress} is unknown, and the rule denies unknown countries`,
        };
  }
  if (rule.allow !== undefined && !rule.allow.includes(country)) {
    return {
      pass: false,
      message: `country ${country} is not in the allowed countries (${rule.allow.join(', ')})`,
    };
  }
  if (rule.deny?.includes(country)) return { pass: false, message: `country ${country} is denied` };
  return pass;
};

/** The rules decided from the request alone; counters and approvals are the evaluator's. */
export const checkPureRule = (
  rule: Rule,
  request: PolicyRequest,
  countries: CountryLookup,
): Check | undefined => {
  switch (rule.kind) {
    case 'time_window':
      return checkTimeWindow(rule, request);
    case 'ip_allowlist':
      return checkIpAllowlist(rule, request);
    case 'geo':
      return checkGeo(rule, request, countries);
    default:
      return undefined;
  }
};

/**
 * The counter a rate limit or usage cap moves. The key names the policy and the rule's place in it,
 * then whose requests are counted; keys never contain secrets, only ids.
 */
export const counterRequirement = (
  attached: AttachedPolicy,
  index: number,
  rule: RateLimitRule | UsageCapRule,
  request: PolicyRequest,
): CounterRequirement => {
  const scope = {
    agent_credential: `agent=${request.agent}&credential=${request.credential}`,
    agent: `agent=${request.agent}`,
    credential: `credential=${request.credential}`,
    attachment: `${attached.attachment.kind}=${attached.attachment.id}`,
  }[rule.key];
  const key = `policy=${attached.id}&rule=${index}&${scope}`;
  return { key, ...counterLimitOf(rule) };
};

/** The window and limit a rate limit or usage cap counts against (also `policy usage` for rules not yet counted). */
export const counterLimitOf = (
  rule: RateLimitRule | UsageCapRule,
): Pick<CounterRequirement, 'window' | 'limit'> => {
  if (rule.kind === 'rate_limit') {
    return { limit: rule.requests, window: { kind: 'fixed', seconds: rule.perSeconds } };
  }
  return {
    limit: rule.uses,
    window:
      rule.per === 'total' ? { kind: 'total' } : { kind: 'calendar', per: rule.per, timeZone: rule.timeZone },
  };
};

export const describeCounterRule = (rule: RateLimitRule | UsageCapRule): string =>
  rule.kind === 'rate_limit'
    ? `rate limit of ${rule.requests} per ${formatDuration(rule.perSeconds)}`
    : `usage cap of ${rule.uses}${rule.per === 'total' ? ' in total' : ` per ${rule.per}`}`;
