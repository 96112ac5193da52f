import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { VaultError } from '../../errors/vault-error.js';
import { parseDuration } from '../../lib/duration.js';
import {
  AgentKeyView,
  AgentList,
  AgentParams,
  AgentView,
  CreateAgentBody,
  CreatedAgent,
  CreatedAgentKey,
  CreateKeyBody,
  JwksBody,
  KeyParams,
  toAgentKeyView,
  toAgentView,
  UpdateAgentBody,
} from '../schemas/agent-schemas.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import { ListQuery } from '../schemas/credential-schemas.js';

const tags = ['agents'];
const security = [{ adminToken: [] }];
const metadataRead = { none: 'metadata read by an admin; no key or secret leaves' };

/** The admin behind the request, and where from: the actor of the audit event the service writes. */
const parseTtl = (ttl: string | undefined, field: string): number | undefined => {
  if (ttl === undefined) return undefined;
  const seconds = parseDuration(ttl);
  if (seconds === undefined) {
    throw new VaultError(
      'invalid_request',
      `${field} "${ttl.slice(0, 32)}" is not a duration; use forms like 90d, 12h or 2w.`,
    );
  }
  return seconds;
};

export const registerAgentRoutes = (app: FastifyInstance, { agents }: Pick<VaultServices, 'agents'>) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/agents',
    {
      config: { audit: { event: 'agent.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Create an agent and its first API key (the key is shown only in this response)',
        headers: NamespaceHeader,
        body: CreateAgentBody,
        response: withErrors({ 201: CreatedAgent }, 409),
      },
    },
    async (request, reply) => {
      const { agent, key, apiKey } = await agents.create(
        request.namespace,
        {
          name: request.body.name,
          description: request.body.description,
          keyTtlSeconds: parseTtl(request.body.key_ttl, 'key_ttl'),
        },
        request.adminContext,
      );
      return reply.status(201).send({
        id: agent.id,
        name: agent.name,
        namespace: agent.namespace,
        api_key: apiKey,
        key_id: key.id,
        key_expires_at: key.expiresAt,
      });
    },
  );

  r.get(
    '/v1/admin/agents',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'List agents, by name, in pages',
        headers: NamespaceHeader,
        querystring: ListQuery,
        response: withErrors({ 200: AgentList }),
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      const page = await agents.list(request.namespace, {
        limit: limit === undefined ? undefined : Number(limit),
        after,
      });
      return { items: page.items.map(toAgentView), next_cursor: page.nextCursor };
    },
  );

  r.get(
    '/v1/admin/agents/:agent',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'Show an agent (by id or name)',
        headers: NamespaceHeader,
        params: AgentParams,
        response: withErrors({ 200: AgentView }, 404),
      },
    },
    async (request) => toAgentView(await agents.get(request.namespace, request.params.agent)),
  );

  r.patch(
    '/v1/admin/agents/:agent',
    {
      config: { audit: { event: 'agent.update', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Rename an agent or change its description',
        headers: NamespaceHeader,
        params: AgentParams,
        body: UpdateAgentBody,
        response: withErrors({ 200: AgentView }, 404, 409),
      },
    },
    async (request) =>
      toAgentView(
        await agents.update(request.namespace, request.params.agent, request.body, request.adminContext),
      ),
  );

  r.delete(
    '/v1/admin/agents/:agent',
    {
      config: { audit: { event: 'agent.delete', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Delete an agent with its keys, workload bindings and grants',
        headers: NamespaceHeader,
        params: AgentParams,
        response: withErrors({ 204: Type.Null() }, 404),
      },
    },
    async (request, reply) => {
      await agents.remove(request.namespace, request.params.agent, request.adminContext);
      return reply.status(204).send(null);
    },
  );

  for (const [verb, event, summary] of [
    ['disable', 'agent.disable', 'Disable an agent: every authentication is refused from the next request'],
    ['enable', 'agent.enable', 'Enable a disabled agent'],
  ] as const) {
    r.post(
      `/v1/admin/agents/:agent/${verb}`,
      {
        config: { audit: { event, recordedBy: 'service' }, role: 'operator' },
        schema: {
          tags,
          security,
          summary,
          headers: NamespaceHeader,
          params: AgentParams,
          response: withErrors({ 200: AgentView }, 404),
        },
      },
      async (request) =>
        toAgentView(await agents[verb](request.namespace, request.params.agent, request.adminContext)),
    );
  }

  r.post(
    '/v1/admin/agents/:agent/keys',
    {
      config: { audit: { event: 'agent.key.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Create another API key for the agent (shown only in this response)',
        headers: NamespaceHeader,
        params: AgentParams,
        body: CreateKeyBody,
        response: withErrors({ 201: CreatedAgentKey }, 404),
      },
    },
    async (request, reply) => {
      const { key, apiKey } = await agents.createKey(
        request.namespace,
        request.params.agent,
        { name: request.body.name, ttlSeconds: parseTtl(request.body.ttl, 'ttl') },
        request.adminContext,
      );
      return reply.status(201).send({ ...toAgentKeyView(key), api_key: apiKey });
    },
  );

  r.get(
    '/v1/admin/agents/:agent/keys',
    {
      config: { audit: metadataRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'List the agent’s API keys (never the keys themselves)',
        headers: NamespaceHeader,
        params: AgentParams,
        response: withErrors({ 200: Type.Object({ items: Type.Array(AgentKeyView) }) }, 404),
      },
    },
    async (request) => ({
      items: (await agents.listKeys(request.namespace, request.params.agent)).map(toAgentKeyView),
    }),
  );

  r.delete(
    '/v1/admin/agents/:agent/keys/:keyId',
    {
      config: { audit: { event: 'agent.key.revoke', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Revoke one API key; it is refused from the very next request',
        headers: NamespaceHeader,
        params: KeyParams,
        response: withErrors({ 200: AgentKeyView }, 404),
      },
    },
    async (request) =>
      toAgentKeyView(
        await agents.revokeKey(
          request.namespace,
          request.params.agent,
          request.params.keyId,
          request.adminContext,
        ),
      ),
  );

  r.put(
    '/v1/admin/agents/:agent/jwks',
    {
      config: { audit: { event: 'agent.jwks.set', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Register the public keys the agent signs JWT assertions with (a JWK set or a JWKS URL)',
        headers: NamespaceHeader,
        params: AgentParams,
        body: JwksBody,
        response: withErrors({ 200: AgentView }, 404),
      },
    },
    async (request) => {
      const { jwks, jwks_url: jwksUrl } = request.body;
      if ((jwks === undefined) === (jwksUrl === undefined)) {
        throw new VaultError(
          'invalid_request',
          'Give either jwks (a public JWK or JWK set) or jwks_url, not both.',
        );
      }
      const input = jwks === undefined ? { jwksUrl: jwksUrl as string } : { jwks };
      return toAgentView(
        await agents.setJwks(request.namespace, request.params.agent, input, request.adminContext),
      );
    },
  );

  r.delete(
    '/v1/admin/agents/:agent/jwks',
    {
      config: { audit: { event: 'agent.jwks.clear', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Remove the agent’s registered public keys (JWT assertions are refused afterwards)',
        headers: NamespaceHeader,
        params: AgentParams,
        response: withErrors({ 200: AgentView }, 404),
      },
    },
    async (request) =>
      toAgentView(await agents.clearJwks(request.namespace, request.params.agent, request.adminContext)),
  );
};
