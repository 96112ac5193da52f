import { Type, type TSchema } from '@sinclair/typebox';
import type { RuleKind } from './policy-types.js';

/**
 * The document a person writes, in YAML or the same in JSON. Structure only: unknown fields are
 * refused here; what a string must look like (a time, a zone, a CIDR, a duration) is checked when the
 * document is normalised, so every message can say what was wrong with the value.
 */
const strict = { additionalProperties: false } as const;

const oneOf = (...values: string[]) => Type.Union(values.map((value) => Type.Literal(value)));
const counterKey = oneOf('agent_credential', 'agent', 'credential', 'attachment');

export const policyDocumentSchema = Type.Object(
  {
    name: Type.String(),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    // Each item is checked by its kind's schema below, so its errors carry the rule's own path.
    rules: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 100 }),
  },
  strict,
);

export const ruleSchemas: Record<RuleKind, TSchema> = {
  time_window: Type.Object(
    {
      days: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      start: Type.String(),
      end: Type.String(),
      time_zone: Type.String(),
    },
    strict,
  ),
  ip_allowlist: Type.Object({ cidrs: Type.Array(Type.String(), { minItems: 1 }) }, strict),
  rate_limit: Type.Object(
    {
      requests: Type.Integer({ minimum: 1 }),
      per: Type.String(),
      key: Type.Optional(counterKey),
    },
    strict,
  ),
  usage_cap: Type.Object(
    {
      uses: Type.Integer({ minimum: 1 }),
      per: oneOf('total', 'day', 'month'),
      time_zone: Type.Optional(Type.String()),
      key: Type.Optional(counterKey),
    },
    strict,
  ),
  geo: Type.Object(
    {
      allow: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      deny: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      unknown_country: Type.Optional(oneOf('deny', 'allow')),
    },
    strict,
  ),
  approval: Type.Object(
    {
      approvers: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
      timeout: Type.String(),
      covers: Type.Optional(Type.String()),
    },
    strict,
  ),
};
