import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import {
  AddOAuthAppBody,
  AppNameParams,
  DiscoverMcpAppBody,
  OAuthAppList,
  OAuthAppView,
  toOAuthAppView,
} from '../schemas/oauth-app-schemas.js';

const tags = ['oauth'];
const security = [{ adminToken: [] }];
const metadataRead = { none: 'OAuth app metadata read by an admin; the client secret never leaves' };

/**
 * OAuth apps: adding and removing one is `admin` only (a client secret is a credential of the whole
 * vault's relationship with the provider, and an app decides where users are sent to consent); reading
 * their metadata is open to operators (who connect users through them) and auditors.
 */
export const registerOAuthAppRoutes = (
  app: FastifyInstance,
  { oauthApps }: Pick<VaultServices, 'oauthApps'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const view = (a: Parameters<typeof toOAuthAppView>[0]) => toOAuthAppView(a, oauthApps.redirectUri);

  r.post(
    '/v1/admin/oauth/apps',
    {
      config: { audit: { event: 'oauth_app.create', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Add an OAuth app (client id and encrypted client secret); the answer has the redirect URI',
        headers: NamespaceHeader,
        body: AddOAuthAppBody,
        response: withErrors({ 201: OAuthAppView }, 409, 502, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const added = await oauthApps.add(
        request.namespace,
        {
          provider: b.provider,
          name: b.name,
          clientId: b.client_id,
          clientSecret: b.client_secret,
          issuer: b.issuer,
          scopes: b.scopes,
          parameters: b.parameters,
          endpoints: b.endpoints,
          clientAuth: b.client_auth,
          resource: b.resource,
          agentConnect: b.agent_connect,
          agentConnectFlows: b.agent_connect_flows,
        },
        request.adminContext,
      );
      return reply.status(201).send(view(added));
    },
  );

  r.post(
    '/v1/admin/oauth/apps/discover',
    {
      config: { audit: { event: 'oauth_app.create', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary:
          'Add an app for a remote MCP server by its authorization discovery, as a client by its metadata document or registration',
        headers: NamespaceHeader,
        body: DiscoverMcpAppBody,
        response: withErrors({ 201: OAuthAppView }, 409, 502, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const added = await oauthApps.discoverMcp(
        request.namespace,
        {
          mcpUrl: b.mcp_url,
          name: b.name,
          scopes: b.scopes,
          agentConnect: b.agent_connect,
          registration: b.registration,
        },
        request.adminContext,
      );
      return reply.status(201).send(view(added));
    },
  );

  r.get(
    '/v1/admin/oauth/apps',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'List OAuth apps (never their client secrets)',
        headers: NamespaceHeader,
        response: withErrors({ 200: OAuthAppList }),
      },
    },
    async (request) => ({ items: (await oauthApps.list(request.namespace)).map(view) }),
  );

  r.get(
    '/v1/admin/oauth/apps/:name',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'Show one OAuth app (never its client secret)',
        headers: NamespaceHeader,
        params: AppNameParams,
        response: withErrors({ 200: OAuthAppView }, 404),
      },
    },
    async (request) => view(await oauthApps.get(request.namespace, request.params.name)),
  );

  r.delete(
    '/v1/admin/oauth/apps/:name',
    {
      config: { audit: { event: 'oauth_app.delete', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Remove an OAuth app (refused while credentials hold its tokens)',
        headers: NamespaceHeader,
        params: AppNameParams,
        response: withErrors({ 204: Type.Null() }, 404, 409),
      },
    },
    async (request, reply) => {
      await oauthApps.remove(request.namespace, request.params.name, request.adminContext);
      return reply.status(204).send(null);
    },
  );
};
