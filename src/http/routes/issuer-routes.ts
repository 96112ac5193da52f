import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import {
  AgentParams,
  BindBody,
  BindingParams,
  BindingView,
  IssuerParams,
  IssuerView,
  toBindingView,
  toIssuerView,
  TrustIssuerBody,
} from '../schemas/agent-schemas.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';

const security = [{ adminToken: [] }];
const metadataRead = { none: 'configuration read by an admin; nothing secret is stored here' };

/** OIDC workload federation: trusted issuers, and bindings of their tokens' claims to agents. */
export const registerIssuerRoutes = (app: FastifyInstance, { issuers }: Pick<VaultServices, 'issuers'>) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/issuers',
    {
      config: { audit: { event: 'issuer.trust', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags: ['issuers'],
        security,
        summary: 'Trust an OIDC issuer’s workload tokens (its discovery document is fetched now)',
        headers: NamespaceHeader,
        body: TrustIssuerBody,
        response: withErrors({ 201: IssuerView }, 409, 502),
      },
    },
    async (request, reply) => {
      const issuer = await issuers.trust(request.namespace, request.body, request.adminContext);
      return reply.status(201).send(toIssuerView(issuer));
    },
  );

  r.get(
    '/v1/admin/issuers',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags: ['issuers'],
        security,
        summary: 'List trusted issuers',
        headers: NamespaceHeader,
        response: withErrors({ 200: Type.Object({ items: Type.Array(IssuerView) }) }),
      },
    },
    async (request) => ({ items: (await issuers.list(request.namespace)).map(toIssuerView) }),
  );

  r.get(
    '/v1/admin/issuers/:issuer',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags: ['issuers'],
        security,
        summary: 'Show a trusted issuer',
        headers: NamespaceHeader,
        params: IssuerParams,
        response: withErrors({ 200: IssuerView }, 404),
      },
    },
    async (request) => toIssuerView(await issuers.get(request.namespace, request.params.issuer)),
  );

  r.delete(
    '/v1/admin/issuers/:issuer',
    {
      config: { audit: { event: 'issuer.delete', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags: ['issuers'],
        security,
        summary: 'Stop trusting an issuer; its workload bindings are deleted with it',
        headers: NamespaceHeader,
        params: IssuerParams,
        response: withErrors({ 204: Type.Null() }, 404),
      },
    },
    async (request, reply) => {
      await issuers.remove(request.namespace, request.params.issuer, request.adminContext);
      return reply.status(204).send(null);
    },
  );

  r.post(
    '/v1/admin/agents/:agent/bindings',
    {
      config: { audit: { event: 'agent.bind', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags: ['agents'],
        security,
        summary: 'Bind workload tokens of a trusted issuer with these exact claims to the agent',
        headers: NamespaceHeader,
        params: AgentParams,
        body: BindBody,
        response: withErrors({ 201: BindingView }, 404, 409),
      },
    },
    async (request, reply) => {
      const binding = await issuers.bind(
        request.namespace,
        request.params.agent,
        request.body,
        request.adminContext,
      );
      return reply.status(201).send(toBindingView(binding));
    },
  );

  r.get(
    '/v1/admin/agents/:agent/bindings',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags: ['agents'],
        security,
        summary: 'List the agent’s workload bindings',
        headers: NamespaceHeader,
        params: AgentParams,
        response: withErrors({ 200: Type.Object({ items: Type.Array(BindingView) }) }, 404),
      },
    },
    async (request) => ({
      items: (await issuers.listBindings(request.namespace, request.params.agent)).map(toBindingView),
    }),
  );

  r.delete(
    '/v1/admin/agents/:agent/bindings/:bindingId',
    {
      config: { audit: { event: 'agent.unbind', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags: ['agents'],
        security,
        summary: 'Delete one workload binding',
        headers: NamespaceHeader,
        params: BindingParams,
        response: withErrors({ 204: Type.Null() }, 404),
      },
    },
    async (request, reply) => {
      await issuers.unbind(
        request.namespace,
        request.params.agent,
        request.params.bindingId,
        request.adminContext,
      );
      return reply.status(204).send(null);
    },
  );
};
