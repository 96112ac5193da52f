import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import {
  CreateCredentialBody,
  CredentialList,
  CredentialView,
  ListQuery,
  NameParams,
  PruneBody,
  PruneResult,
  toCredentialView,
  UpdateCredentialBody,
  UserQuery,
  VersionList,
} from '../schemas/credential-schemas.js';

const tags = ['credentials'];

const RemovedOAuthCredential = Type.Object({
  deleted: Type.String(),
  revocation: Type.Object(
    {
      status: Type.String({
        description:
          '`revoked` (RFC 7009), `no_endpoint` (the provider has none: revoke access there by hand), `no_app`, or `failed`.',
      }),
      tokens: Type.Optional(Type.Integer()),
      code: Type.Optional(Type.String()),
    },
    { description: 'What the provider was told.' },
  ),
});
const security = [{ adminToken: [] }];

export const registerCredentialRoutes = (
  app: FastifyInstance,
  { credentials, oauthRefresh }: Pick<VaultServices, 'credentials' | 'oauthRefresh'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/credentials',
    {
      config: { audit: { event: 'credential.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Store a credential (the secret is encrypted; responses never contain it)',
        headers: NamespaceHeader,
        body: CreateCredentialBody,
        response: withErrors({ 201: CredentialView }, 409, 413, 415, 503),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const credential = await credentials.create(
        request.namespace,
        {
          name: b.name,
          type: b.type,
          secret: b.secret,
          description: b.description,
          scopes: b.scopes,
          allowedHosts: b.allowed_hosts,
          baseUrl: b.base_url,
          injection: b.injection,
          injections: b.injections,
          expiresAt: b.expires_at,
          subject: b.subject,
        },
        request.adminContext,
      );
      return reply.status(201).send(toCredentialView(credential));
    },
  );

  r.get(
    '/v1/admin/credentials',
    {
      config: {
        audit: { none: 'metadata read by an admin; no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'List credentials (metadata only), by name, in pages',
        headers: NamespaceHeader,
        querystring: ListQuery,
        response: withErrors({ 200: CredentialList }),
      },
    },
    async (request) => {
      const { limit, after } = request.query;
      const page = await credentials.list(request.namespace, {
        limit: limit === undefined ? undefined : Number(limit),
        after,
      });
      return { items: page.items.map(toCredentialView), next_cursor: page.nextCursor };
    },
  );

  r.get(
    '/v1/admin/credentials/:name',
    {
      config: {
        audit: { none: 'metadata read by an admin; no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'Show one credential (metadata only)',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        response: withErrors({ 200: CredentialView }, 404),
      },
    },
    async (request) =>
      toCredentialView(await credentials.get(request.namespace, request.params.name, request.query.user)),
  );

  r.patch(
    '/v1/admin/credentials/:name',
    {
      config: { audit: { event: 'credential.update', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Update metadata and/or the secret (a new secret becomes a new version)',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        body: UpdateCredentialBody,
        response: withErrors({ 200: CredentialView }, 404, 413, 415, 503),
      },
    },
    async (request) => {
      const b = request.body;
      const credential = await credentials.update(
        request.namespace,
        request.params.name,
        {
          secret: b.secret,
          description: b.description,
          scopes: b.scopes,
          allowedHosts: b.allowed_hosts,
          baseUrl: b.base_url,
          injection: b.injection,
          injections: b.injections,
          expiresAt: b.expires_at,
          subject: b.subject,
          status: b.status,
        },
        request.adminContext,
        request.query.user,
      );
      return toCredentialView(credential);
    },
  );

  r.delete(
    '/v1/admin/credentials/:name',
    {
      config: { audit: { event: 'credential.delete', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Delete a credential, all its versions, its data key and its grants',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        response: withErrors({ 200: RemovedOAuthCredential, 204: Type.Null() }, 404),
      },
    },
    async (request, reply) => {
      // An OAuth credential's tokens are revoked at the provider too; the answer says how that went.
      const revocation = await oauthRefresh.removeCredential(
        request.namespace,
        request.params.name,
        request.adminContext,
        request.query.user,
      );
      if (revocation) return reply.status(200).send({ deleted: request.params.name, revocation });
      return reply.status(204).send(null);
    },
  );

  r.get(
    '/v1/admin/credentials/:name/versions',
    {
      config: {
        audit: { none: 'metadata read by an admin; no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'List the stored secret versions of a credential',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        response: withErrors({ 200: VersionList }, 404),
      },
    },
    async (request) => {
      const versions = await credentials.versions(request.namespace, request.params.name, request.query.user);
      return {
        items: versions.map((v) => ({ version: v.version, created_at: v.createdAt, current: v.current })),
      };
    },
  );

  r.post(
    '/v1/admin/credentials/:name/prune',
    {
      config: { audit: { event: 'credential.prune', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Delete old secret versions, keeping the newest `keep`',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        body: PruneBody,
        response: withErrors({ 200: PruneResult }, 404),
      },
    },
    async (request) => ({
      pruned: await credentials.prune(
        request.namespace,
        request.params.name,
        request.body.keep ?? 1,
        request.adminContext,
        request.query.user,
      ),
    }),
  );
};
