import { type Static, Type } from '@sinclair/typebox';
import type { GrantRecord } from '../../grants/grant-service.js';
import type { RetrievedCredential } from '../../grants/retrieval-service.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

const Ttl = Type.String({
  maxLength: 40,
  description:
    'How long the grant lasts, from `1h` to `30d` (e.g. `12h`, `7d`). Give this or `until_revoked`.',
});
const UntilRevoked = Type.Boolean({ description: 'The grant lasts until revoked. Give this or `ttl`.' });
const Reveal = Type.Boolean({
  description: 'May the agent read the raw secret? Without it the grant is proxy-only (default false).',
});

export const CreateGrantBody = Type.Object(
  {
    agent: Type.String({ minLength: 1, maxLength: 200, description: 'The agent’s id or name.' }),
    credential: Type.String({ minLength: 1, maxLength: 200, description: 'The credential’s name.' }),
    user: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'Which user’s credential (per-user credentials).',
      }),
    ),
    scopes: Type.Optional(
      Type.Array(Type.String({ maxLength: 256 }), {
        maxItems: 200,
        description: 'A subset of the credential’s scopes; absent: all of them.',
      }),
    ),
    ttl: Type.Optional(Ttl),
    until_revoked: Type.Optional(UntilRevoked),
    reveal: Type.Optional(Reveal),
  },
  { additionalProperties: false },
);
export type CreateGrantBody = Static<typeof CreateGrantBody>;

/** The only fields a grant response carries. */
export const GrantView = Type.Object(
  {
    id: Type.String(),
    namespace: Type.String(),
    agent_id: Type.String(),
    agent_name: Nullable(Type.String({ description: 'null when the agent was deleted' })),
    credential_id: Type.String(),
    credential_name: Nullable(Type.String({ description: 'null when the credential was deleted' })),
    scopes: Type.Array(Type.String()),
    reveal: Type.Boolean(),
    status: Type.String({ description: 'active, expired or revoked' }),
    expires_at: Nullable(Type.String({ description: 'null: until revoked' })),
    created_at: Type.String(),
    created_by: Type.String(),
    revoked_at: Nullable(Type.String()),
    revoked_reason: Nullable(
      Type.String({ description: 'revoked, agent_revoked, credential_revoked, revoke_all or superseded' }),
    ),
  },
  { description: 'A grant: agent × credential, scopes, reveal, expiry.' },
);
export type GrantView = Static<typeof GrantView>;

export const toGrantView = (g: GrantRecord): GrantView => ({
  id: g.id,
  namespace: g.namespace,
  agent_id: g.agentId,
  agent_name: g.agentName,
  credential_id: g.credentialId,
  credential_name: g.credentialName,
  scopes: g.scopes,
  reveal: g.reveal,
  status: g.status,
  expires_at: g.expiresAt,
  created_at: g.createdAt,
  created_by: g.createdBy,
  revoked_at: g.revokedAt,
  revoked_reason: g.revokedReason,
});

export const CreatedGrant = Type.Intersect([
  GrantView,
  Type.Object({
    replaced_grant_ids: Type.Array(Type.String(), {
      description: 'Live grants for the same agent and credential that this one replaced (now revoked).',
    }),
  }),
]);

export const GrantList = Type.Object({
  items: Type.Array(GrantView),
  next_cursor: Nullable(Type.String({ description: 'Pass as `after` for the next page; null on the last.' })),
});

export const GrantListQuery = Type.Object(
  {
    agent: Type.Optional(
      Type.String({ maxLength: 200, description: 'Only this agent’s grants (id or name).' }),
    ),
    credential: Type.Optional(
      Type.String({ maxLength: 200, description: 'Only grants on this credential.' }),
    ),
    all: Type.Optional(
      Type.Union([Type.Literal('true'), Type.Literal('false')], {
        description: '`true`: include revoked and expired grants (default: live ones only).',
      }),
    ),
    limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,2}$', description: 'Page size, 1 to 500.' })),
    after: Type.Optional(Type.String({ maxLength: 400 })),
  },
  { additionalProperties: false },
);

export const GrantIdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });

export const RevokeGrantsBody = Type.Union(
  [
    Type.Object(
      { agent: Type.String({ minLength: 1, maxLength: 200, description: 'Every grant of this agent.' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        credential: Type.String({
          minLength: 1,
          maxLength: 200,
          description: 'Every grant on this credential.',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Exactly one of `agent` or `credential`.' },
);

export const RevokedGrants = Type.Object({
  revoked: Type.Integer(),
  grant_ids: Type.Array(Type.String()),
});

export const ImportGrantsBody = Type.Object(
  {
    document: Type.Unknown({
      description:
        'The seed policy document `{"agent_id":"agent-42","allowed_credentials":["slack:read"]}` or a list of them. `credential:scope` entries; a bare `credential` means all its scopes.',
    }),
    ttl: Type.Optional(Ttl),
    until_revoked: Type.Optional(UntilRevoked),
    reveal: Type.Optional(Reveal),
  },
  { additionalProperties: false },
);

export const ImportedGrants = Type.Object({
  items: Type.Array(GrantView, { description: 'The grants this import created.' }),
  replaced_grant_ids: Type.Array(Type.String()),
  skipped: Type.Array(GrantView, {
    description:
      'Grants the document asked for that were already live on the same terms (scopes, reveal, lifetime), left as they are: running an import again only adds what is missing.',
  }),
});

export const RevokeAllResult = Type.Object({
  namespace: Type.String(),
  grants_revoked: Type.Integer(),
  agent_keys_revoked: Type.Integer(),
  revoked_at: Type.String(),
});

// Agent retrieval (seed contract)

export const RetrievalParams = Type.Object({
  agentId: Type.String({ maxLength: 200, description: 'Your agent id or name (e.g. `agent-42`).' }),
  service: Type.String({ maxLength: 200, description: 'The credential name (e.g. `slack`).' }),
});

export const RetrievalQuery = Type.Object({
  user: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 256,
      description:
        'The end user whose connection to use (per-user credentials); absent: the only one, or the shared one.',
    }),
  ),
  scope: Type.Optional(
    Type.Union(
      [Type.String({ maxLength: 4096 }), Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 100 })],
      {
        description: 'Narrow to these scopes: `?scope=a,b` or `?scope=a&scope=b`. Must be within the grant.',
      },
    ),
  ),
  approval: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'After `approval_pending`: the approval this retry relies on (docs/approvals.md).',
    }),
  ),
  flow: Type.Optional(
    Type.Union([Type.Literal('browser'), Type.Literal('device')], {
      description:
        'With `user`, when that user has not connected yet: the consent flow `authorization_required` starts (`device`: RFC 8628, a user code). Absent: the app’s preferred one.',
    }),
  ),
});

/** The seed contract's answer; the only fields that can leave (an allowlist, like every response). */
export const CredentialToken = Type.Object(
  {
    access_token: Type.String({ description: 'The secret (see docs/agents-quickstart.md for each type).' }),
    token_type: Type.String({
      description: '`Bearer`, `Basic`, an OAuth token type, `api_key` or `custom`.',
    }),
    expires_at: Nullable(
      Type.String({ description: 'Earliest of the grant’s and the credential’s expiry.' }),
    ),
    scopes: Type.Array(Type.String(), { description: 'Granted scopes, narrowed to those requested.' }),
    fields: Type.Optional(
      Type.Record(Type.String(), Type.String(), {
        description: 'Every field of a custom credential with several fields.',
      }),
    ),
  },
  { description: 'A credential as an agent with a reveal grant receives it.' },
);
export type CredentialToken = Static<typeof CredentialToken>;

export const toCredentialToken = (c: RetrievedCredential): CredentialToken => ({
  access_token: c.accessToken,
  token_type: c.tokenType,
  expires_at: c.expiresAt,
  scopes: c.scopes,
  ...(c.fields ? { fields: c.fields } : {}),
});
