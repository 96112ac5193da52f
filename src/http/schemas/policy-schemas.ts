import { type Static, Type } from '@sinclair/typebox';
import type { DryRunResult } from '../../policy/policy-dry-run.js';
import type { StoredAttachment, StoredPolicy, PolicyVersion } from '../../policy/policy-repo.js';
import type { PolicyDetails } from '../../policy/policy-service.js';
import type { PolicyUsage } from '../../policy/policy-usage.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const PolicyDocumentBody = Type.Object(
  {
    document: Type.String({
      minLength: 1,
      maxLength: 65_536,
      description: 'The policy document as YAML or JSON text (docs/policies.md).',
    }),
  },
  { additionalProperties: false },
);

export const PolicyNameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export const AttachmentKind = Type.Union(
  ['agent', 'agent_key', 'grant', 'credential', 'proxy', 'proxy_key'].map((kind) => Type.Literal(kind)),
  { description: 'What the policy is attached to.' },
);

export const AttachBody = Type.Object(
  {
    kind: AttachmentKind,
    target: Type.String({
      minLength: 1,
      maxLength: 200,
      description:
        'An agent’s id or name, a credential’s name, or the id of a key, grant, proxy or proxy key.',
    }),
  },
  { additionalProperties: false },
);

export const RemoveQuery = Type.Object({
  force: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
});

export const AttachmentView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  target_id: Type.String(),
  created_at: Type.String(),
  created_by: Type.String(),
});

export const PolicyView = Type.Object({
  id: Type.String(),
  namespace: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  version: Type.Integer({ description: 'The current version: every update adds one.' }),
  document: Type.String({ description: 'The current version’s document as it was given.' }),
  rules: Type.Array(Type.String(), { description: 'Each rule as `rules[i].kind`.' }),
  created_at: Type.String(),
  updated_at: Type.String(),
  updated_by: Type.String(),
  attachments: Type.Array(AttachmentView),
});

export const PolicyList = Type.Object({
  items: Type.Array(
    Type.Object({
      name: Type.String(),
      description: Nullable(Type.String()),
      version: Type.Integer(),
      rules: Type.Integer(),
      attachments: Type.Integer(),
      updated_at: Type.String(),
    }),
  ),
});

export const PolicyVersionList = Type.Object({
  items: Type.Array(
    Type.Object({
      version: Type.Integer(),
      document: Type.String(),
      created_at: Type.String(),
      created_by: Type.String(),
    }),
  ),
});

export const AttachResult = Type.Object({
  policy: Type.String(),
  attachment: AttachmentView,
  already_attached: Type.Boolean(),
});

export const DetachResult = Type.Object({ policy: Type.String(), detached: Type.Boolean() });

export const DryRunBody = Type.Object(
  {
    agent: Type.String({ minLength: 1, maxLength: 200, description: 'The agent’s id or name.' }),
    credential: Type.String({ minLength: 1, maxLength: 200, description: 'The credential’s name.' }),
    ip: Type.Optional(Type.String({ maxLength: 64, description: 'The client address to assume.' })),
    at: Type.Optional(
      Type.String({ maxLength: 40, description: 'The time to assume (ISO 8601); now if absent.' }),
    ),
    country: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z]{2}$',
        description: 'The client’s country to assume (ISO 3166-1 alpha-2).',
      }),
    ),
    agent_key: Type.Optional(Type.String({ maxLength: 200 })),
    proxy: Type.Optional(Type.String({ maxLength: 200 })),
    proxy_key: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const DryRunView = Type.Object({
  decision: Type.String({ description: 'allow, deny or pending (an approval would be asked for)' }),
  code: Nullable(Type.String()),
  message: Type.String(),
  at: Type.String(),
  grant: Type.Object({
    outcome: Type.String(),
    code: Nullable(Type.String()),
    grant_id: Nullable(Type.String()),
  }),
  policies: Type.Array(
    Type.Object({
      name: Type.String(),
      attached_to: Type.Object({ kind: Type.String(), id: Type.String() }),
    }),
  ),
  rules: Type.Array(
    Type.Object({
      policy: Type.String(),
      rule: Type.String(),
      verdict: Type.String({ description: 'pass, fail or pending' }),
      message: Type.String(),
      remaining: Type.Optional(Type.Integer()),
      reset_at: Type.Optional(Nullable(Type.String())),
    }),
  ),
});

export const toAttachmentView = (a: StoredAttachment): Static<typeof AttachmentView> => ({
  id: a.id,
  kind: a.kind,
  target_id: a.targetId,
  created_at: a.createdAt,
  created_by: a.createdBy,
});

export const toPolicyView = (p: PolicyDetails): Static<typeof PolicyView> => ({
  id: p.id,
  namespace: p.namespace,
  name: p.name,
  description: p.policy.description ?? null,
  version: p.version,
  document: p.document,
  rules: p.policy.rules.map((rule, index) => `rules[${index}].${rule.kind}`),
  created_at: p.createdAt,
  updated_at: p.updatedAt,
  updated_by: p.updatedBy,
  attachments: p.attachments.map(toAttachmentView),
});

export const toPolicyListItem = (p: StoredPolicy & { attachmentCount: number }) => ({
  name: p.name,
  description: p.policy.description ?? null,
  version: p.version,
  rules: p.policy.rules.length,
  attachments: p.attachmentCount,
  updated_at: p.updatedAt,
});

export const toVersionView = (v: PolicyVersion) => ({
  version: v.version,
  document: v.document,
  created_at: v.createdAt,
  created_by: v.createdBy,
});

export const toDryRunView = (r: DryRunResult): Static<typeof DryRunView> => ({
  decision: r.decision,
  code: r.code,
  message: r.message,
  at: r.at,
  grant: { outcome: r.grant.outcome, code: r.grant.code, grant_id: r.grant.grantId },
  policies: r.policies.map((p) => ({ name: p.name, attached_to: p.attachedTo })),
  rules: r.rules.map((rule) => ({
    policy: rule.policy,
    rule: rule.rule,
    verdict: rule.verdict,
    message: rule.message,
    ...(rule.remaining === undefined ? {} : { remaining: rule.remaining }),
    ...(rule.resetAt === undefined ? {} : { reset_at: rule.resetAt }),
  })),
});

const Named = Type.Object({
  id: Type.String(),
  name: Nullable(
    Type.String({ description: 'Null when the row is gone (or a credential counted by name).' }),
  ),
});

export const UsageView = Type.Object({
  policy: Type.String(),
  version: Type.Integer(),
  at: Type.String({ description: 'The moment the counters were read.' }),
  counters: Type.Array(
    Type.Object({
      rule: Type.Object({
        index: Type.Integer(),
        kind: Nullable(Type.String({ description: 'Null when the current version has no rule there.' })),
      }),
      agent: Type.Union([Named, Type.Null()], {
        description: 'The agent the counter counts, if it names one.',
      }),
      credential: Type.Union([Named, Type.Null()]),
      attachment: Type.Union([Type.Object({ kind: Type.String(), id: Type.String() }), Type.Null()], {
        description: 'For `key: attachment` counters on a key, grant, proxy or proxy key.',
      }),
      window: Type.Object(
        {
          kind: Type.String({ description: 'fixed, sliding, calendar or total' }),
          seconds: Type.Optional(Type.Integer()),
          per: Type.Optional(Type.String({ description: 'day or month (calendar windows)' })),
          time_zone: Type.Optional(Type.String()),
        },
        { description: 'Rate limits count in fixed windows; usage caps per day, per month or in total.' },
      ),
      limit: Type.Integer(),
      used: Type.Integer(),
      remaining: Type.Integer(),
      reset_at: Nullable(Type.String({ description: 'When the window ends; null for `per: total`.' })),
      counted: Type.Boolean({
        description: 'False: nothing counted against this rule yet (all of it left).',
      }),
    }),
  ),
});

export const UsageResetBody = Type.Object(
  {
    rule: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 999, description: 'Only this rule (its index).' }),
    ),
    agent: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Only this agent (id or name).' }),
    ),
    credential: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Only this credential (its name).' }),
    ),
  },
  { additionalProperties: false },
);

export const UsageResetResult = Type.Object({
  policy: Type.String(),
  reset: Type.Integer({ description: 'How many counters were forgotten.' }),
  at: Type.String(),
});

const windowView = (w: PolicyUsage['lines'][number]['window']) => {
  switch (w.kind) {
    case 'fixed':
    case 'sliding':
      return { kind: w.kind, seconds: w.seconds };
    case 'calendar':
      return { kind: w.kind, per: w.per, time_zone: w.timeZone };
    case 'total':
      return { kind: w.kind };
  }
};

export const toUsageView = (u: PolicyUsage): Static<typeof UsageView> => ({
  policy: u.policy.name,
  version: u.policy.version,
  at: u.at.toISOString(),
  counters: u.lines.map((line) => ({
    rule: line.rule,
    agent: line.agent,
    credential: line.credential,
    attachment: line.attachment,
    window: windowView(line.window),
    limit: line.limit,
    used: line.used,
    remaining: line.remaining,
    reset_at: line.resetAt?.toISOString() ?? null,
    counted: line.counted,
  })),
});
