import { type Static, Type } from '@sinclair/typebox';
import type { ProxyKeyView as ProxyKeyModel } from '../../mcp-proxy/proxy-admin-service.js';
import type { McpProxy } from '../../mcp-proxy/proxy-repo.js';

const nullableString = Type.Union([Type.String(), Type.Null()]);
const ToolList = Type.Array(Type.String({ maxLength: 128 }), { maxItems: 256 });

export const Injection = Type.Object(
  {
    in: Type.Union([Type.Literal('header'), Type.Literal('env')]),
    name: Type.String({ maxLength: 128 }),
    template: Type.String({
      maxLength: 1024,
      description: '`{{field}}` template, e.g. `Bearer {{access_token}}`.',
    }),
  },
  { additionalProperties: false },
);

export const ProxyParams = Type.Object({ name: Type.String({ maxLength: 200 }) });
export const ProxyKeyParams = Type.Object({
  name: Type.String({ maxLength: 200 }),
  keyId: Type.String({ maxLength: 200 }),
});

const configFields = {
  transport: Type.Optional(
    Type.Union([Type.Literal('streamable-http'), Type.Literal('sse'), Type.Literal('stdio')]),
  ),
  url: Type.Optional(
    Type.String({ maxLength: 2048, description: 'The upstream MCP endpoint (HTTP upstreams).' }),
  ),
  command: Type.Optional(Type.String({ maxLength: 1024, description: 'The stdio command, fixed here.' })),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64 })),
  cwd: Type.Optional(Type.String({ maxLength: 1024 })),
  credential: Type.String({ maxLength: 200 }),
  per_user: Type.Optional(Type.Boolean()),
  injections: Type.Array(Injection, { maxItems: 16 }),
  allow_tools: Type.Optional(ToolList),
  deny_tools: Type.Optional(ToolList),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
};

export const CreateProxyBody = Type.Object(
  {
    name: Type.String({ maxLength: 200, description: 'Unique in the namespace, e.g. `github`.' }),
    ...configFields,
  },
  { additionalProperties: false },
);

export const UpdateProxyBody = Type.Object(
  {
    ...configFields,
    credential: Type.Optional(configFields.credential),
    injections: Type.Optional(configFields.injections),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const ProxyView = Type.Object({
  id: Type.String(),
  namespace: Type.String(),
  name: Type.String(),
  description: Type.String(),
  transport: Type.String(),
  url: nullableString,
  command: nullableString,
  args: Type.Array(Type.String()),
  cwd: nullableString,
  credential: Type.String(),
  per_user: Type.Boolean(),
  injections: Type.Array(Injection),
  allow_tools: Type.Array(Type.String()),
  deny_tools: Type.Array(Type.String()),
  created_at: Type.String(),
  updated_at: Type.String(),
});
export const ProxyList = Type.Object({ items: Type.Array(ProxyView) });

export const CreateProxyKeyBody = Type.Object(
  {
    agent: Type.String({ maxLength: 200, description: 'The agent (id or name) the key authenticates as.' }),
    user: Type.Optional(Type.String({ maxLength: 256, description: 'The end user (per-user proxies).' })),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    ttl: Type.Optional(Type.String({ maxLength: 32, description: 'Such as `90d`; none: until revoked.' })),
  },
  { additionalProperties: false },
);

export const ProxyKeyView = Type.Object({
  id: Type.String(),
  proxy_id: Type.String(),
  agent_id: Type.String(),
  agent_name: nullableString,
  user: nullableString,
  name: Type.String(),
  status: Type.String(),
  created_at: Type.String(),
  expires_at: nullableString,
  revoked_at: nullableString,
  last_used_at: nullableString,
});
export const ProxyKeyList = Type.Object({ items: Type.Array(ProxyKeyView) });
// The id and the key first: what a script reads (`--json` prints `{"id","key",…}`).
export const CreatedProxyKey = Type.Object({
  id: Type.String(),
  key: Type.String({ description: 'The `tv_proxy_…` key: shown only in this answer.' }),
  ...Type.Omit(ProxyKeyView, ['id']).properties,
});

export const toProxyView = (p: McpProxy): Static<typeof ProxyView> => ({
  id: p.id,
  namespace: p.namespace,
  name: p.name,
  description: p.description,
  transport: p.transport,
  url: p.url,
  command: p.command,
  args: p.args,
  cwd: p.cwd,
  credential: p.credential,
  per_user: p.perUser,
  injections: p.injections,
  allow_tools: p.allowTools,
  deny_tools: p.denyTools,
  created_at: p.createdAt,
  updated_at: p.updatedAt,
});

export const toProxyKeyView = (k: ProxyKeyModel): Static<typeof ProxyKeyView> => ({
  id: k.id,
  proxy_id: k.proxyId,
  agent_id: k.agentId,
  agent_name: k.agentName,
  user: k.endUser,
  name: k.name,
  status: k.status,
  created_at: k.createdAt,
  expires_at: k.expiresAt,
  revoked_at: k.revokedAt,
  last_used_at: k.lastUsedAt,
});
