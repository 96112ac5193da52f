import { type Static, Type } from '@sinclair/typebox';
import type { Credential } from '../../credentials/credential-repo.js';
import { injectionsOf } from '../../credentials/injection-list.js';

const Injection = Type.Object(
  {
    in: Type.String({ description: 'header, query or env' }),
    name: Type.String({ description: 'Header, query parameter or environment variable name.' }),
    template: Type.String({ description: 'Value with {{field}} placeholders, e.g. `Bearer {{token}}`.' }),
  },
  { additionalProperties: false },
);

const Injections = Type.Array(Injection, {
  minItems: 1,
  maxItems: 10,
  description:
    'Several injections, applied in order by the HTTP proxy (e.g. a key and a secret in two headers); instead of `injection`.',
});

const SecretInput = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Secret fields; which ones depends on the type (api_key: api_key; bearer: token; …).',
});

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

const BaseUrl = Type.String({
  maxLength: 2048,
  description:
    'Where the HTTP proxy forwards calls (`/v1/proxy/{name}/{path}` → base URL + path): https, or http for a host listed in allowed_hosts; no credentials, query or fragment.',
});

export const CreateCredentialBody = Type.Object(
  {
    name: Type.String({ description: 'Unique in the namespace, e.g. `slack`.', maxLength: 200 }),
    type: Type.String({ description: 'api_key, bearer, basic, oauth2 or custom.', maxLength: 40 }),
    secret: SecretInput,
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    scopes: Type.Optional(Type.Array(Type.String(), { maxItems: 200 })),
    allowed_hosts: Type.Optional(Type.Array(Type.String(), { maxItems: 100 })),
    base_url: Type.Optional(Nullable(BaseUrl)),
    injection: Type.Optional(Injection),
    injections: Type.Optional(Injections),
    expires_at: Type.Optional(Nullable(Type.String())),
    subject: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
  },
  { additionalProperties: false },
);
export type CreateCredentialBody = Static<typeof CreateCredentialBody>;

export const UpdateCredentialBody = Type.Object(
  {
    secret: Type.Optional(SecretInput),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    scopes: Type.Optional(Type.Array(Type.String(), { maxItems: 200 })),
    allowed_hosts: Type.Optional(Type.Array(Type.String(), { maxItems: 100 })),
    base_url: Type.Optional(Nullable(BaseUrl)),
    injection: Type.Optional(Injection),
    injections: Type.Optional(Injections),
    expires_at: Type.Optional(Nullable(Type.String())),
    subject: Type.Optional(Nullable(Type.String({ maxLength: 256 }))),
    status: Type.Optional(
      Type.Union([Type.Literal('active'), Type.Literal('revoked'), Type.Literal('needs_reauth')]),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateCredentialBody = Static<typeof UpdateCredentialBody>;

/** The only fields a credential response can carry: no secret value can be serialized by accident. */
export const CredentialView = Type.Object(
  {
    id: Type.String(),
    namespace: Type.String(),
    name: Type.String(),
    type: Type.String(),
    description: Type.String(),
    scopes: Type.Array(Type.String()),
    allowed_hosts: Type.Array(Type.String()),
    base_url: Nullable(Type.String()),
    injection: Injection,
    injections: Type.Array(Injection),
    status: Type.String(),
    expires_at: Nullable(Type.String()),
    subject: Nullable(Type.String()),
    version: Type.Integer(),
    secret_fields: Type.Array(Type.String(), {
      description: 'Names of the stored secret fields, never values.',
    }),
    created_at: Type.String(),
    updated_at: Type.String(),
  },
  { description: 'A credential: metadata only, never a secret value.' },
);
export type CredentialView = Static<typeof CredentialView>;

export const toCredentialView = (c: Credential): CredentialView => ({
  id: c.id,
  namespace: c.namespace,
  name: c.name,
  type: c.type,
  description: c.description,
  scopes: c.scopes,
  allowed_hosts: c.allowedHosts,
  base_url: c.baseUrl,
  injection: c.injection,
  injections: injectionsOf(c),
  status: c.status,
  expires_at: c.expiresAt,
  subject: c.subject,
  version: c.version,
  secret_fields: c.secretFields,
  created_at: c.createdAt,
  updated_at: c.updatedAt,
});

export const CredentialList = Type.Object({
  items: Type.Array(CredentialView),
  next_cursor: Nullable(Type.String({ description: 'Pass as `after` for the next page; null on the last.' })),
});

export const NameParams = Type.Object({ name: Type.String({ maxLength: 200 }) });

/** `?user=`: which user's credential, when several users hold one of this name (per-user credentials). */
export const UserQuery = Type.Object(
  { user: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) },
  { additionalProperties: false },
);

export const ListQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: 'Page size, 1 to 500.' })),
    after: Type.Optional(Type.String({ maxLength: 200 })),
  },
  { additionalProperties: false },
);

export const VersionList = Type.Object({
  items: Type.Array(
    Type.Object({ version: Type.Integer(), created_at: Type.String(), current: Type.Boolean() }),
  ),
});

export const PruneBody = Type.Object(
  {
    keep: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 10_000, description: 'Newest versions to keep (default 1).' }),
    ),
  },
  { additionalProperties: false },
);

export const PruneResult = Type.Object({ pruned: Type.Integer() });
