import { type Static, Type } from '@sinclair/typebox';
import type { AgentKeyView as AgentKeyModel } from '../../agents/agent-service.js';
import type { Agent, TrustedIssuer } from '../../agents/agent-types.js';
import type { BindingView as BindingModel } from '../../agents/issuer-service.js';

const nullableString = Type.Union([Type.String(), Type.Null()]);
const Ttl = Type.String({
  maxLength: 32,
  description: 'Key lifetime such as `90d`, `12h` or `2w`; leave out for a key that lasts until revoked.',
});

/** The public members of a JWK, and nothing else: a response cannot carry private key material. */
const PublicJwk = Type.Object({
  kty: Type.String(),
  kid: Type.Optional(Type.String()),
  alg: Type.Optional(Type.String()),
  use: Type.Optional(Type.String()),
  crv: Type.Optional(Type.String()),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String()),
  n: Type.Optional(Type.String()),
  e: Type.Optional(Type.String()),
});

export const AgentParams = Type.Object({
  agent: Type.String({ maxLength: 200, description: 'Agent id or name.' }),
});
export const KeyParams = Type.Object({
  agent: Type.String({ maxLength: 200 }),
  keyId: Type.String({ maxLength: 200 }),
});
export const BindingParams = Type.Object({
  agent: Type.String({ maxLength: 200 }),
  bindingId: Type.String({ maxLength: 200 }),
});
export const IssuerParams = Type.Object({ issuer: Type.String({ maxLength: 200 }) });

export const CreateAgentBody = Type.Object(
  {
    name: Type.String({ maxLength: 200, description: 'Unique in the namespace, e.g. `agent-42`.' }),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    key_ttl: Type.Optional(Ttl),
  },
  { additionalProperties: false },
);

export const UpdateAgentBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CreateKeyBody = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200, description: 'A label, e.g. `ci-2026-06`.' })),
    ttl: Type.Optional(Ttl),
  },
  { additionalProperties: false },
);

export const JwksBody = Type.Object(
  {
    jwks: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'A public JWK set `{"keys":[…]}` or a single public JWK. Private keys are refused.',
      }),
    ),
    jwks_url: Type.Optional(
      Type.String({ maxLength: 2048, description: 'An https URL serving the agent’s public JWK set.' }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const AgentView = Type.Object(
  {
    id: Type.String(),
    namespace: Type.String(),
    name: Type.String(),
    description: Type.String(),
    status: Type.String({ description: '`active` or `disabled`.' }),
    jwks: Type.Union([Type.Object({ keys: Type.Array(PublicJwk) }), Type.Null()]),
    jwks_url: nullableString,
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { description: 'An agent. Its API keys are never shown after creation.' },
);
export type AgentView = Static<typeof AgentView>;

export const toAgentView = (a: Agent): AgentView => ({
  id: a.id,
  namespace: a.namespace,
  name: a.name,
  description: a.description,
  status: a.status,
  jwks: a.jwks as AgentView['jwks'],
  jwks_url: a.jwksUrl,
  created_at: a.createdAt,
  updated_at: a.updatedAt,
});

export const AgentList = Type.Object({
  items: Type.Array(AgentView),
  next_cursor: Type.Union([
    Type.String({ description: 'Pass as `after` for the next page; null on the last.' }),
    Type.Null(),
  ]),
});

export const CreatedAgent = Type.Object({
  id: Type.String(),
  name: Type.String(),
  namespace: Type.String(),
  api_key: Type.String({ description: 'The first API key (`tv_agent_…`): shown only here; store it now.' }),
  key_id: Type.String(),
  key_expires_at: nullableString,
});

export const AgentKeyView = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  name: Type.String(),
  status: Type.String({ description: '`active`, `expired` or `revoked`.' }),
  created_at: Type.String(),
  expires_at: nullableString,
  revoked_at: nullableString,
  last_used_at: nullableString,
});
export type AgentKeyView = Static<typeof AgentKeyView>;

export const toAgentKeyView = (k: AgentKeyModel): AgentKeyView => ({
  id: k.id,
  agent_id: k.agentId,
  name: k.name,
  status: k.status,
  created_at: k.createdAt,
  expires_at: k.expiresAt,
  revoked_at: k.revokedAt,
  last_used_at: k.lastUsedAt,
});

export const CreatedAgentKey = Type.Composite([
  AgentKeyView,
  Type.Object({ api_key: Type.String({ description: 'Shown only in this response; store it now.' }) }),
]);

export const TrustIssuerBody = Type.Object(
  {
    name: Type.String({ maxLength: 200, description: 'Unique in the namespace, e.g. `github-actions`.' }),
    issuer: Type.String({
      maxLength: 2048,
      description:
        'The issuer URL exactly as in its tokens’ `iss`, e.g. https://token.actions.githubusercontent.com.',
    }),
    audience: Type.Optional(
      Type.String({
        maxLength: 512,
        description: 'The `aud` its tokens must carry; default: the vault’s audience.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const IssuerView = Type.Object({
  id: Type.String(),
  namespace: Type.String(),
  name: Type.String(),
  issuer: Type.String(),
  audience: Type.String(),
  created_at: Type.String(),
});

export const toIssuerView = (i: TrustedIssuer): Static<typeof IssuerView> => ({
  id: i.id,
  namespace: i.namespace,
  name: i.name,
  issuer: i.issuer,
  audience: i.audience,
  created_at: i.createdAt,
});

export const BindBody = Type.Object(
  {
    issuer: Type.String({ maxLength: 200, description: 'Name of a trusted issuer.' }),
    claims: Type.Record(Type.String(), Type.String(), {
      description: 'Exact claim values, e.g. {"repository":"acme/app","ref":"refs/heads/main"}.',
    }),
  },
  { additionalProperties: false },
);

export const BindingView = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  issuer: Type.String({ description: 'Name of the trusted issuer.' }),
  issuer_id: Type.String(),
  claims: Type.Record(Type.String(), Type.String()),
  created_at: Type.String(),
});

export const toBindingView = (b: BindingModel): Static<typeof BindingView> => ({
  id: b.id,
  agent_id: b.agentId,
  issuer: b.issuerName,
  issuer_id: b.issuerId,
  claims: b.claims,
  created_at: b.createdAt,
});
