import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import {
  AttachBody,
  AttachResult,
  DetachResult,
  DryRunBody,
  DryRunView,
  PolicyDocumentBody,
  PolicyList,
  PolicyNameParams,
  PolicyVersionList,
  PolicyView,
  RemoveQuery,
  toAttachmentView,
  toDryRunView,
  toPolicyListItem,
  toPolicyView,
  toUsageView,
  toVersionView,
  UsageResetBody,
  UsageResetResult,
  UsageView,
} from '../schemas/policy-schemas.js';

const tags = ['policies'];
const security = [{ adminToken: [] }];
const readOnly = {
  audit: { none: 'policy metadata read by an admin; nothing changes, no secret leaves' },
  role: ['operator', 'auditor'],
} as const;

/**
 * Admin REST for policies (docs/policies.md). The policy service records each change, and each
 * refused change, in the change's own transaction; a change decides the next agent request on every
 * replica (migration 0010).
 */
export const registerPolicyRoutes = (
  app: FastifyInstance,
  { policies, policyDryRun, policyUsage }: Pick<VaultServices, 'policies' | 'policyDryRun' | 'policyUsage'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/policies',
    {
      config: { audit: { event: 'policy.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Create a policy from a YAML or JSON document (version 1)',
        description: 'Every problem of the document is reported by its path (`invalid_policy`).',
        headers: NamespaceHeader,
        body: PolicyDocumentBody,
        response: withErrors({ 201: PolicyView }, 409, 503),
      },
    },
    async (request, reply) => {
      const created = await policies.create(request.namespace, request.body.document, request.adminContext);
      return reply.status(201).send(toPolicyView(created));
    },
  );

  r.get(
    '/v1/admin/policies',
    {
      config: readOnly,
      schema: {
        tags,
        security,
        summary: 'List policies, by name',
        headers: NamespaceHeader,
        response: withErrors({ 200: PolicyList }, 404),
      },
    },
    async (request) => ({ items: (await policies.list(request.namespace)).map(toPolicyListItem) }),
  );

  r.get(
    '/v1/admin/policies/:name',
    {
      config: readOnly,
      schema: {
        tags,
        security,
        summary: 'Show a policy: its current version and where it is attached',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        response: withErrors({ 200: PolicyView }, 404),
      },
    },
    async (request) => toPolicyView(await policies.show(request.namespace, request.params.name)),
  );

  r.get(
    '/v1/admin/policies/:name/versions',
    {
      config: readOnly,
      schema: {
        tags,
        security,
        summary: 'Every version of a policy, newest first',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        response: withErrors({ 200: PolicyVersionList }, 404),
      },
    },
    async (request) => ({
      items: (await policies.versions(request.namespace, request.params.name)).map(toVersionView),
    }),
  );

  r.put(
    '/v1/admin/policies/:name',
    {
      config: { audit: { event: 'policy.update', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Update a policy: the document becomes its next version, deciding the next request',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        body: PolicyDocumentBody,
        response: withErrors({ 200: PolicyView }, 404, 503),
      },
    },
    async (request) =>
      toPolicyView(
        await policies.update(
          request.namespace,
          request.params.name,
          request.body.document,
          request.adminContext,
        ),
      ),
  );

  r.delete(
    '/v1/admin/policies/:name',
    {
      config: { audit: { event: 'policy.delete', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Remove a policy and its versions (refused while attached unless `force=true`)',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        querystring: RemoveQuery,
        response: withErrors({ 200: PolicyView }, 404, 409, 503),
      },
    },
    async (request) =>
      toPolicyView(
        await policies.remove(request.namespace, request.params.name, request.adminContext, {
          force: request.query.force === 'true',
        }),
      ),
  );

  r.post(
    '/v1/admin/policies/:name/attach',
    {
      config: { audit: { event: 'policy.attach', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Attach a policy to an agent, agent key, grant, credential, MCP proxy or proxy key',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        body: AttachBody,
        response: withErrors({ 200: AttachResult }, 404, 503),
      },
    },
    async (request) => {
      const { attachment, alreadyAttached } = await policies.attach(
        request.namespace,
        request.params.name,
        { kind: request.body.kind as never, target: request.body.target },
        request.adminContext,
      );
      return {
        policy: request.params.name,
        attachment: toAttachmentView(attachment),
        already_attached: alreadyAttached,
      };
    },
  );

  r.post(
    '/v1/admin/policies/:name/detach',
    {
      config: { audit: { event: 'policy.detach', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Detach a policy; detaching what is not attached changes nothing',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        body: AttachBody,
        response: withErrors({ 200: DetachResult }, 404, 503),
      },
    },
    async (request) => {
      const { detached } = await policies.detach(
        request.namespace,
        request.params.name,
        { kind: request.body.kind as never, target: request.body.target },
        request.adminContext,
      );
      return { policy: request.params.name, detached };
    },
  );

  r.post(
    '/v1/admin/policies/test',
    {
      config: {
        audit: { none: 'a dry run: nothing changes, nothing is counted, no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'Dry run: the decision an agent’s request would get, rule by rule, counting nothing',
        headers: NamespaceHeader,
        body: DryRunBody,
        response: withErrors({ 200: DryRunView }, 404),
      },
    },
    async (request) => {
      const b = request.body;
      return toDryRunView(
        await policyDryRun(request.namespace, {
          agent: b.agent,
          credential: b.credential,
          ip: b.ip,
          at: b.at,
          country: b.country,
          agentKey: b.agent_key,
          proxy: b.proxy,
          proxyKey: b.proxy_key,
        }),
      );
    },
  );

  r.get(
    '/v1/admin/policies/:name/usage',
    {
      config: {
        audit: { none: 'counters read by an admin; nothing changes, no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'What is used and left of each rate limit and usage cap, per agent and credential',
        description: 'Rules nothing has been counted against yet are listed with all of their limit left.',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        response: withErrors({ 200: UsageView }, 404),
      },
    },
    async (request) => toUsageView(await policyUsage.usage(request.namespace, request.params.name)),
  );

  r.post(
    '/v1/admin/policies/:name/usage/reset',
    {
      config: { audit: { event: 'policy.usage_reset', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Forget a policy’s counts: all, or one rule’s, agent’s or credential’s',
        description: 'Audited; changes no access (the access generation does not move).',
        headers: NamespaceHeader,
        params: PolicyNameParams,
        body: UsageResetBody,
        response: withErrors({ 200: UsageResetResult }, 404, 503),
      },
    },
    async (request) => {
      const result = await policyUsage.reset(
        request.namespace,
        request.params.name,
        request.body,
        request.adminContext,
      );
      return { ...result, at: result.at.toISOString() };
    },
  );
};
