import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { jsonInTurns } from '../json-in-turns.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import {
  CreatedGrant,
  CreateGrantBody,
  GrantIdParams,
  GrantList,
  GrantListQuery,
  GrantView,
  ImportedGrants,
  ImportGrantsBody,
  RevokeAllResult,
  RevokedGrants,
  RevokeGrantsBody,
  toGrantView,
} from '../schemas/grant-schemas.js';

const tags = ['grants'];
const security = [{ adminToken: [] }];

/**
 * Admin REST for grants. The grant service records each change in the change's own transaction, and
 * each refused change, so these routes declare their events as recorded by the service.
 */
export const registerGrantRoutes = (app: FastifyInstance, { grants }: Pick<VaultServices, 'grants'>) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/grants',
    {
      config: { audit: { event: 'grant.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Grant an agent a credential (scopes, reveal, 1h to 30d or until revoked)',
        description:
          'Replaces the live grant for the same agent and credential, if any. Without `reveal` the grant is proxy-only.',
        headers: NamespaceHeader,
        body: CreateGrantBody,
        response: withErrors({ 201: CreatedGrant }, 404, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const { grant, replaced } = await grants.create(
        request.namespace,
        {
          agent: b.agent,
          credential: b.credential,
          user: b.user,
          scopes: b.scopes,
          ttl: b.ttl,
          untilRevoked: b.until_revoked,
          reveal: b.reveal,
        },
        request.adminContext,
      );
      return reply.status(201).send({ ...toGrantView(grant), replaced_grant_ids: replaced });
    },
  );

  r.get(
    '/v1/admin/grants',
    {
      config: {
        audit: { none: 'grant metadata read by an admin; nothing changes, no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'List grants (live ones unless `all=true`), oldest first, in pages',
        headers: NamespaceHeader,
        querystring: GrantListQuery,
        response: withErrors({ 200: GrantList }, 404),
      },
    },
    async (request) => {
      const q = request.query;
      const page = await grants.list(request.namespace, {
        agent: q.agent,
        credential: q.credential,
        all: q.all === 'true',
        limit: q.limit === undefined ? undefined : Number(q.limit),
        after: q.after,
      });
      return { items: page.items.map(toGrantView), next_cursor: page.nextCursor };
    },
  );

  r.get(
    '/v1/admin/grants/:id',
    {
      config: {
        audit: { none: 'grant metadata read by an admin; nothing changes, no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'Show one grant',
        headers: NamespaceHeader,
        params: GrantIdParams,
        response: withErrors({ 200: GrantView }, 404),
      },
    },
    async (request) => toGrantView(await grants.show(request.namespace, request.params.id)),
  );

  r.delete(
    '/v1/admin/grants/:id',
    {
      config: { audit: { event: 'grant.revoke', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Revoke a grant (holds on the agent’s very next request); revoking twice is a no-op',
        headers: NamespaceHeader,
        params: GrantIdParams,
        response: withErrors({ 200: GrantView }, 404, 503),
      },
    },
    async (request) =>
      toGrantView(await grants.revoke(request.namespace, request.params.id, request.adminContext)),
  );

  r.post(
    '/v1/admin/grants/revoke',
    {
      config: { audit: { event: 'grant.revoke', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Revoke every grant of an agent, or every grant on a credential',
        headers: NamespaceHeader,
        body: RevokeGrantsBody,
        response: withErrors({ 200: RevokedGrants }, 404, 503),
      },
    },
    async (request) => {
      const ids = await grants.revokeFor(request.namespace, request.body, request.adminContext);
      return { revoked: ids.length, grant_ids: ids };
    },
  );

  r.post(
    '/v1/admin/grants/import',
    {
      config: { audit: { event: 'grant.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Import the seed policy document(s): one grant per agent × credential',
        description:
          'The whole document is checked first: nothing is written if any entry is invalid (`invalid_import`). Grants are then written in small batches, each atomic with its audit events; a grant already live on the same terms is skipped. If a batch fails after others committed, the answer is `import_incomplete`, naming what was and was not imported: run the same import again to finish it.',
        headers: NamespaceHeader,
        body: ImportGrantsBody,
        response: withErrors({ 201: ImportedGrants }, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const result = await grants.importGrants(
        request.namespace,
        b.document,
        { ttl: b.ttl, untilRevoked: b.until_revoked, reveal: b.reveal },
        request.adminContext,
      );
      // Already text (views only, see toGrantView): thousands of grants are serialized in turns.
      const body = await jsonInTurns({
        items: result.grants.map(toGrantView),
        replaced_grant_ids: result.replaced,
        skipped: result.skipped.map(toGrantView),
      });
      // The type provider types `send` by the schema's object; JSON text is sent as it is.
      return reply
        .status(201)
        .type('application/json; charset=utf-8')
        .send(body as never);
    },
  );

  r.post(
    '/v1/admin/revoke-all',
    {
      config: { audit: { event: 'namespace.revoke_all', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Kill switch: revoke every grant and every agent API key of the namespace at once',
        description: 'Only new grants and new agent keys undo it.',
        headers: NamespaceHeader,
        response: withErrors({ 200: RevokeAllResult }, 503),
      },
    },
    async (request) => {
      const result = await grants.revokeAll(request.namespace, request.adminContext);
      return {
        namespace: result.namespace,
        grants_revoked: result.grantsRevoked,
        agent_keys_revoked: result.agentKeysRevoked,
        revoked_at: result.revokedAt,
      };
    },
  );
};
