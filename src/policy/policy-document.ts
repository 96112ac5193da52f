import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import { vaultError } from '../errors/vault-error.js';
import { parseDuration } from '../lib/duration.js';
import { parseCidr } from './ip-match.js';
import { policyDocumentSchema, ruleSchemas } from './policy-schema.js';
import {
  ruleKinds,
  weekdays,
  type Cidr,
  type CounterScope,
  type Policy,
  type Rule,
  type RuleKind,
  type Weekday,
} from './policy-types.js';
import { canonicalTimeZone, parseClockTime } from './time-window.js';

export type PolicyParseResult = { ok: true; policy: Policy } | { ok: false; problems: string[] };

const namePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** `/rules/2/time_window/start` → `rules[2].time_window.start`. */
const pathOf = (pointer: string): string =>
  pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');

const join = (base: string, pointer: string) => {
  const rest = pathOf(pointer);
  return rest === '' ? base : rest.startsWith('[') || base === '' ? `${base}${rest}` : `${base}.${rest}`;
};

const describeError = (error: ValueError): string => {
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties:
      return 'is not a known field';
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.Union: {
      const options = (error.schema.anyOf as TSchema[] | undefined)?.map((option) => String(option.const));
      return `must be one of ${options?.join(', ')}`;
    }
    case ValueErrorType.Integer:
    case ValueErrorType.IntegerMinimum:
      return `must be a whole number${'minimum' in error.schema ? ` of at least ${error.schema.minimum}` : ''}`;
    case ValueErrorType.ArrayMinItems:
      return `must list at least ${error.schema.minItems}`;
    default:
      return error.message.charAt(0).toLowerCase() + error.message.slice(1);
  }
};

/** Every structural problem of a value against a schema, one line each, by path. */
const schemaProblems = (schema: TSchema, value: unknown, base: string): string[] => {
  const problems: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    // A union reports its failure once more for each member; the summary line says it all.
    if (error.type === ValueErrorType.Literal) continue;
    // A missing field is reported once, as required, not again as the wrong type.
    if (error.value === undefined && error.type !== ValueErrorType.ObjectRequiredProperty) continue;
    const path = join(base, error.path) || '(document)';
    problems.push(`${path}: ${describeError(error)}`);
  }
  return problems;
};

const show = (value: unknown) => JSON.stringify(value);

/** Collects problems for one rule; each check adds a line and returns undefined when it fails. */
class Checker {
  readonly problems: string[] = [];
  constructor(private readonly base: string) {}

  fail(field: string, message: string): undefined {
    this.problems.push(`${this.base}.${field}: ${message}`);
    return undefined;
  }

  duration(field: string, text: string): number | undefined {
    const seconds = parseDuration(text);
    if (seconds === undefined || seconds === 0) {
      return this.fail(field, `${show(text)} is not a duration like 30s, 15m, 1h or 1d`);
    }
    return seconds;
  }

  timeZone(field: string, text: string): string | undefined {
    return (
      canonicalTimeZone(text) ?? this.fail(field, `${show(text)} is not an IANA time zone like Europe/Berlin`)
    );
  }
}

const dayNames: Record<string, Weekday> = Object.fromEntries(
  weekdays.flatMap((day, index) => [
    [day, day],
    [['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'][index] as string, day],
  ]),
);

const counterScope = (key: unknown): CounterScope => (key as CounterScope | undefined) ?? 'agent_credential';

type Body = Record<string, unknown>;

const normalisers: Record<RuleKind, (body: Body, check: Checker) => Rule | undefined> = {
  time_window(body, check) {
    const days = ((body.days as string[] | undefined) ?? [...weekdays]).map((text, index) => {
      return (
        dayNames[text.toLowerCase()] ?? check.fail(`days[${index}]`, `${show(text)} is not a day (mon … sun)`)
      );
    });
    const start = parseClockTime(body.start as string, false);
    if (start === undefined) check.fail('start', `${show(body.start)} is not a time HH:MM`);
    const end = parseClockTime(body.end as string, true);
    if (end === undefined)
      check.fail('end', `${show(body.end)} is not a time HH:MM (24:00 ends at midnight)`);
    if (start !== undefined && start === end) {
      check.fail('end', 'equals start, so the window would be empty; for a whole day use 00:00–24:00');
    }
    const timeZone = check.timeZone('time_zone', body.time_zone as string);
    if (days.includes(undefined) || start === undefined || end === undefined || timeZone === undefined)
      return;
    const set = new Set(days);
    return { kind: 'time_window', days: weekdays.filter((day) => set.has(day)), start, end, timeZone };
  },

  ip_allowlist(body, check) {
    const cidrs = (body.cidrs as string[]).map(
      (text, index) =>
        parseCidr(text) ??
        check.fail(`cidrs[${index}]`, `${show(text)} is not an IPv4 or IPv6 address or CIDR`),
    );
    if (cidrs.includes(undefined)) return;
    return { kind: 'ip_allowlist', cidrs: cidrs as Cidr[] };
  },

  rate_limit(body, check) {
    const perSeconds = check.duration('per', body.per as string);
    if (perSeconds === undefined) return;
    return { kind: 'rate_limit', requests: body.requests as number, perSeconds, key: counterScope(body.key) };
  },

  usage_cap(body, check) {
    const timeZone =
      body.time_zone === undefined ? 'UTC' : check.timeZone('time_zone', body.time_zone as string);
    if (body.per === 'total' && body.time_zone !== undefined) {
      check.fail('time_zone', 'only applies to per: day or per: month');
    }
    if (timeZone === undefined || check.problems.length > 0) return;
    return {
      kind: 'usage_cap',
      uses: body.uses as number,
      per: body.per as 'total' | 'day' | 'month',
      timeZone,
      key: counterScope(body.key),
    };
  },

  geo(body, check) {
    const lists = (['allow', 'deny'] as const).filter((field) => body[field] !== undefined);
    if (lists.length !== 1)
      check.fail(lists.length === 0 ? 'allow' : 'deny', 'give exactly one of allow and deny');
    const field = lists[0] ?? 'allow';
    const codes = ((body[field] as string[] | undefined) ?? []).map((text, index) =>
      /^[A-Za-z]{2}$/.test(text)
        ? text.toUpperCase()
        : check.fail(`${field}[${index}]`, `${show(text)} is not a two-letter country code (ISO 3166-1)`),
    );
    if (check.problems.length > 0) return;
    return {
      kind: 'geo',
      [field]: [...new Set(codes as string[])],
      unknownCountry: (body.unknown_country as 'deny' | 'allow' | undefined) ?? 'deny',
    };
  },

  approval(body, check) {
    const timeoutSeconds = check.duration('timeout', body.timeout as string);
    const covers = (body.covers as string | undefined) ?? 'request';
    const boxSeconds =
      covers === 'request'
        ? undefined
        : parseDuration(covers) ||
          check.fail('covers', `${show(covers)} is neither "request" nor a duration like 30m`);
    if (timeoutSeconds === undefined || (covers !== 'request' && boxSeconds === undefined)) return;
    return {
      kind: 'approval',
      approvers: [...new Set(body.approvers as string[])],
      timeoutSeconds,
      covers: boxSeconds === undefined ? { kind: 'request' } : { kind: 'time_box', seconds: boxSeconds },
    };
  },
};

const normaliseRule = (item: unknown, index: number, problems: string[]): Rule | undefined => {
  const base = `rules[${index}]`;
  const keys = typeof item === 'object' && item !== null && !Array.isArray(item) ? Object.keys(item) : [];
  const kind = keys[0] as RuleKind;
  if (keys.length !== 1 || !ruleKinds.includes(kind)) {
    problems.push(
      keys.length === 1
        ? `${base}.${keys[0]}: is not a rule kind (${ruleKinds.join(', ')})`
        : `${base}: must be an object with exactly one rule kind (${ruleKinds.join(', ')})`,
    );
    return undefined;
  }
  const body = (item as Record<string, unknown>)[kind];
  const structural = schemaProblems(ruleSchemas[kind], body, `${base}.${kind}`);
  if (structural.length > 0) {
    problems.push(...structural);
    return undefined;
  }
  const check = new Checker(`${base}.${kind}`);
  const rule = normalisers[kind](body as Body, check);
  problems.push(...check.problems);
  return rule;
};

/** Validates a parsed document and normalises it; every problem is reported, each by its path. */
export const validatePolicyDocument = (document: unknown): PolicyParseResult => {
  const problems = schemaProblems(policyDocumentSchema, document, '');
  const value = (typeof document === 'object' && document !== null ? document : {}) as Record<
    string,
    unknown
  >;
  if (typeof value.name === 'string' && !namePattern.test(value.name)) {
    problems.push(
      `name: ${show(value.name)} is not a name (1 to 64 lowercase letters, digits, -, _ and ., starting with a letter or digit)`,
    );
  }
  const items = Array.isArray(value.rules) ? value.rules : [];
  const rules = items.map((item, index) => normaliseRule(item, index, problems));
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    policy: {
      name: value.name as string,
      ...(value.description === undefined ? {} : { description: value.description as string }),
      rules: rules as Rule[],
    },
  };
};

/** Parses YAML (or JSON, which YAML reads the same) and validates it. Duplicate keys are problems. */
export const parsePolicyDocument = (text: string): PolicyParseResult => {
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => `(document): ${error.message.split('\n')[0]}`),
    };
  }
  return validatePolicyDocument(document.toJS());
};

/** The same, throwing `invalid_policy` with every problem in the message and in `details.problems`. */
export const loadPolicyDocument = (text: string): Policy => {
  const result = parsePolicyDocument(text);
  if (result.ok) return result.policy;
  throw vaultError('invalid_policy', `The policy document is not valid: ${result.problems.join('; ')}`, {
    details: { problems: result.problems },
  });
};
