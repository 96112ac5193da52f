import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { VaultError } from '../../errors/vault-error.js';
import { parseDuration } from '../../lib/duration.js';
import type { UpdateProxyInput } from '../../mcp-proxy/proxy-admin-service.js';
import type { VaultServices } from '../../services.js';
import { Type } from '@sinclair/typebox';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import {
  CreatedProxyKey,
  CreateProxyBody,
  CreateProxyKeyBody,
  ProxyKeyList,
  ProxyKeyParams,
  ProxyKeyView,
  ProxyList,
  ProxyParams,
  ProxyView,
  toProxyKeyView,
  toProxyView,
  UpdateProxyBody,
} from '../schemas/mcp-proxy-schemas.js';

const tags = ['mcp-proxies'];
const security = [{ adminToken: [] }];
const metadataRead = { none: 'proxy metadata read by an admin; no key or secret leaves' };
const readers = ['operator', 'auditor'] as const;

const parseTtl = (ttl: string | undefined): number | undefined => {
  if (ttl === undefined) return undefined;
  const seconds = parseDuration(ttl);
  if (seconds === undefined) {
    throw new VaultError(
      'invalid_request',
      `ttl "${ttl.slice(0, 32)}" is not a duration; use forms like 90d or 12h.`,
    );
  }
  return seconds;
};

/** The body's snake_case fields as the service's input (absent stays absent). */
const configInput = (b: Partial<typeof CreateProxyBody.static>): UpdateProxyInput => ({
  transport: b.transport,
  url: b.url,
  command: b.command,
  args: b.args,
  cwd: b.cwd,
  credential: b.credential,
  perUser: b.per_user,
  injections: b.injections,
  allowTools: b.allow_tools,
  denyTools: b.deny_tools,
  description: b.description,
});

/**
 * Admin REST for MCP proxies and their keys (docs/mcp-proxy.md). The service records each change in
 * its own transaction, and each refused change.
 */
export const registerMcpProxyRoutes = (
  app: FastifyInstance,
  { mcpProxies, mcpToolPins }: Pick<VaultServices, 'mcpProxies' | 'mcpToolPins'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/mcp-proxies',
    {
      config: { audit: { event: 'mcp_proxy.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Register an upstream MCP server (URL or stdio command) bound to a credential',
        headers: NamespaceHeader,
        body: CreateProxyBody,
        response: withErrors({ 201: ProxyView }, 409, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const proxy = await mcpProxies.create(
        request.namespace,
        { ...configInput(b), name: b.name, credential: b.credential, injections: b.injections },
        request.adminContext,
      );
      return reply.status(201).send(toProxyView(proxy));
    },
  );

  r.get(
    '/v1/admin/mcp-proxies',
    {
      config: { audit: metadataRead, role: readers },
      schema: {
        tags,
        security,
        summary: 'List MCP proxies',
        headers: NamespaceHeader,
        response: withErrors({ 200: ProxyList }),
      },
    },
    async (request) => ({ items: (await mcpProxies.list(request.namespace)).map(toProxyView) }),
  );

  r.get(
    '/v1/admin/mcp-proxies/:name',
    {
      config: { audit: metadataRead, role: readers },
      schema: {
        tags,
        security,
        summary: 'Show one MCP proxy',
        headers: NamespaceHeader,
        params: ProxyParams,
        response: withErrors({ 200: ProxyView }, 404),
      },
    },
    async (request) => toProxyView(await mcpProxies.get(request.namespace, request.params.name)),
  );

  r.patch(
    '/v1/admin/mcp-proxies/:name',
    {
      config: { audit: { event: 'mcp_proxy.update', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Change an MCP proxy (fields not given stay as they are)',
        headers: NamespaceHeader,
        params: ProxyParams,
        body: UpdateProxyBody,
        response: withErrors({ 200: ProxyView }, 404, 503),
      },
    },
    async (request) =>
      toProxyView(
        await mcpProxies.update(
          request.namespace,
          request.params.name,
          configInput(request.body),
          request.adminContext,
        ),
      ),
  );

  r.delete(
    '/v1/admin/mcp-proxies/:name',
    {
      config: { audit: { event: 'mcp_proxy.delete', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Remove an MCP proxy with its keys (they stop on the next request)',
        headers: NamespaceHeader,
        params: ProxyParams,
        response: withErrors({ 200: ProxyView }, 404, 503),
      },
    },
    async (request) =>
      toProxyView(await mcpProxies.remove(request.namespace, request.params.name, request.adminContext)),
  );

  r.post(
    '/v1/admin/mcp-proxies/:name/keys',
    {
      config: { audit: { event: 'mcp_proxy.key.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Create a proxy key (tv_proxy_…) for an agent and, on a per-user proxy, an end user',
        description: 'The key is in this answer only; the vault keeps its hash.',
        headers: NamespaceHeader,
        params: ProxyParams,
        body: CreateProxyKeyBody,
        response: withErrors({ 201: CreatedProxyKey }, 404, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await mcpProxies.createKey(
        request.namespace,
        request.params.name,
        { agent: b.agent, user: b.user, name: b.name, ttlSeconds: parseTtl(b.ttl) },
        request.adminContext,
      );
      return reply.status(201).send({ ...toProxyKeyView(created.view), key: created.key });
    },
  );

  r.get(
    '/v1/admin/mcp-proxies/:name/keys',
    {
      config: { audit: metadataRead, role: readers },
      schema: {
        tags,
        security,
        summary: 'List a proxy’s keys (never the keys themselves)',
        headers: NamespaceHeader,
        params: ProxyParams,
        response: withErrors({ 200: ProxyKeyList }, 404),
      },
    },
    async (request) => ({
      items: (await mcpProxies.listKeys(request.namespace, request.params.name)).map(toProxyKeyView),
    }),
  );

  r.delete(
    '/v1/admin/mcp-proxies/:name/keys/:keyId',
    {
      config: { audit: { event: 'mcp_proxy.key.revoke', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Revoke a proxy key (holds on the next request, on every replica)',
        headers: NamespaceHeader,
        params: ProxyKeyParams,
        response: withErrors({ 200: ProxyKeyView }, 404, 503),
      },
    },
    async (request) =>
      toProxyKeyView(
        await mcpProxies.revokeKey(
          request.namespace,
          request.params.name,
          request.params.keyId,
          request.adminContext,
        ),
      ),
  );

  const PinView = Type.Object({
    tool: Type.String(),
    status: Type.String({ description: '`accepted`, `changed` (withheld) or `new` (withheld)' }),
    accepted: Type.Unknown({ description: 'The definition agents see (null: none yet).' }),
    observed: Type.Unknown({ description: 'The upstream’s differing definition, waiting for an admin.' }),
    observed_at: Type.Union([Type.String(), Type.Null()]),
  });

  r.get(
    '/v1/admin/mcp-proxies/:name/tools',
    {
      config: { audit: metadataRead, role: readers },
      schema: {
        tags,
        security,
        summary: 'The proxy’s pinned tool definitions, with every change waiting to be accepted',
        headers: NamespaceHeader,
        params: ProxyParams,
        response: withErrors({ 200: Type.Object({ items: Type.Array(PinView) }) }, 404),
      },
    },
    async (request) => ({
      items: (await mcpToolPins.list(request.namespace, request.params.name)).map((p) => ({
        tool: p.tool,
        status: p.status,
        accepted: p.accepted,
        observed: p.observed,
        observed_at: p.observedAt,
      })),
    }),
  );

  r.post(
    '/v1/admin/mcp-proxies/:name/tools/accept',
    {
      config: { audit: { event: 'mcp_proxy.tools.accept', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Accept the waiting tool definitions (all, or the ones named): agents see them from now on',
        headers: NamespaceHeader,
        params: ProxyParams,
        body: Type.Object(
          { tools: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 256 })) },
          { additionalProperties: false },
        ),
        response: withErrors({ 200: Type.Object({ accepted: Type.Array(Type.String()) }) }, 404, 503),
      },
    },
    async (request) => ({
      accepted: await mcpToolPins.accept(
        request.namespace,
        request.params.name,
        request.body.tools,
        request.adminContext,
      ),
    }),
  );
};
