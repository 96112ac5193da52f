import { Type } from '@sinclair/typebox';
import type { OAuthApp } from '../../oauth/oauth-app-repo.js';

const Endpoints = Type.Object(
  {
    authorization: Type.Optional(Type.String({ maxLength: 500 })),
    token: Type.String({ maxLength: 500 }),
    revocation: Type.Optional(Type.String({ maxLength: 500 })),
    deviceAuthorization: Type.Optional(Type.String({ maxLength: 500 })),
    introspection: Type.Optional(Type.String({ maxLength: 500 })),
    userinfo: Type.Optional(Type.String({ maxLength: 500 })),
  },
  { additionalProperties: false },
);

const AgentConnectFlows = Type.Array(Type.Union([Type.Literal('browser'), Type.Literal('device')]), {
  minItems: 1,
  maxItems: 2,
  description:
    'The flows agents may start (`browser`, `device`: RFC 8628), preferred first; implies `agent_connect`. Default: `browser` (`device` for an app without an authorization endpoint).',
});

export const AddOAuthAppBody = Type.Object(
  {
    provider: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'A catalog name, `oidc` or `generic`.',
    }),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Default: the provider name.' }),
    ),
    client_id: Type.String({ minLength: 1, maxLength: 512 }),
    client_secret: Type.Optional(
      Type.String({ minLength: 1, maxLength: 4096, description: 'Stored encrypted; never returned.' }),
    ),
    issuer: Type.Optional(Type.String({ maxLength: 500, description: '`oidc`: the issuer to discover.' })),
    scopes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 100 })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 200 }))),
    endpoints: Type.Optional(Endpoints),
    client_auth: Type.Optional(
      Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post')]),
    ),
    resource: Type.Optional(Type.String({ maxLength: 500, description: 'RFC 8707 resource indicator.' })),
    agent_connect: Type.Optional(
      Type.Boolean({
        description: 'Agents may ask their users to connect through this app (`authorization_required`).',
      }),
    ),
    agent_connect_flows: Type.Optional(AgentConnectFlows),
  },
  { additionalProperties: false },
);

export const DiscoverMcpAppBody = Type.Object(
  {
    mcp_url: Type.String({ minLength: 1, maxLength: 500, description: 'The remote MCP server’s URL.' }),
    name: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, description: 'Default: the MCP server’s host name.' }),
    ),
    scopes: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 256 }), {
        maxItems: 100,
        description: 'Default: the scopes its resource metadata advertises.',
      }),
    ),
    agent_connect: Type.Optional(Type.Boolean()),
    registration: Type.Optional(
      Type.Union(
        [
          Type.Literal('auto'),
          Type.Literal('client_id_metadata_document'),
          Type.Literal('dynamic_client_registration'),
        ],
        {
          description:
            'Default `auto`: the vault’s client ID metadata document where the server supports it, else dynamic client registration; either by name forces it.',
        },
      ),
    ),
  },
  { additionalProperties: false },
);

/** An app as the API shows it: never the client secret, only whether there is one. */
export const OAuthAppView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  provider: Type.String(),
  client_id: Type.String(),
  client_secret_set: Type.Boolean(),
  issuer: Type.Union([Type.String(), Type.Null()]),
  scopes: Type.Array(Type.String()),
  parameters: Type.Record(Type.String(), Type.String()),
  endpoints: Type.Union([Endpoints, Type.Null()]),
  agent_connect: Type.Boolean(),
  agent_connect_flows: Type.Array(Type.String(), {
    description: 'The flows agents may start, preferred first; empty when agent connect is off.',
  }),
  resource: Type.Union([Type.String(), Type.Null()], {
    description: 'RFC 8707 resource sent on every authorization and token request (MCP servers).',
  }),
  redirect_uri: Type.String({ description: 'Register this URL with the provider.' }),
  registration: Type.Union(
    [Type.Literal('client_id_metadata_document'), Type.Literal('dynamic_client_registration'), Type.Null()],
    {
      description:
        'Apps from MCP discovery: the client_id is the vault’s metadata document URL, or was registered dynamically (RFC 7591). Null: added by hand (or discovered before this was recorded).',
    },
  ),
  created_at: Type.String(),
});

export const OAuthAppList = Type.Object({ items: Type.Array(OAuthAppView) });
export const AppNameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export const toOAuthAppView = (app: OAuthApp, redirectUri: string) => ({
  id: app.id,
  name: app.name,
  provider: app.provider,
  client_id: app.clientId,
  client_secret_set: app.hasClientSecret,
  issuer: app.issuer,
  scopes: app.scopes,
  parameters: { ...app.settings.parameters },
  endpoints: app.settings.endpoints ?? null,
  agent_connect: app.agentConnect,
  agent_connect_flows: app.agentConnectFlows,
  resource: app.settings.resource ?? null,
  redirect_uri: redirectUri,
  registration: app.settings.registration ?? null,
  created_at: app.createdAt,
});
