import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import {
  AdminTokenView,
  CreateAdminTokenBody,
  CreatedAdminToken,
  toAdminTokenView,
} from '../schemas/admin-token-schemas.js';
import { withErrors } from '../schemas/common-schemas.js';

const tags = ['admin tokens'];
const security = [{ adminToken: [] }];

export const registerAdminTokenRoutes = (
  app: FastifyInstance,
  { adminTokens }: Pick<VaultServices, 'adminTokens'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/tokens',
    {
      config: { audit: { event: 'admin_token.create', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Create an admin token (shown once), never of a wider role or longer life than the caller',
        body: CreateAdminTokenBody,
        response: withErrors({ 201: CreatedAdminToken }),
      },
    },
    async (request, reply) => {
      const { token, adminToken } = await adminTokens.create(
        request.admin!,
        request.body.name,
        { ttlSeconds: request.body.ttl_seconds, role: request.body.role },
        request.adminContext,
      );
      return reply.status(201).send({
        id: adminToken.id,
        name: adminToken.name,
        role: adminToken.role,
        token,
        expires_at: adminToken.expiresAt,
      });
    },
  );

  r.get(
    '/v1/admin/tokens',
    {
      config: { audit: { none: 'lists token metadata; hashes and tokens never leave' }, role: 'auditor' },
      schema: {
        tags,
        security,
        summary: 'List admin tokens (never the tokens themselves)',
        response: withErrors({ 200: Type.Object({ items: Type.Array(AdminTokenView) }) }),
      },
    },
    async () => ({ items: (await adminTokens.list()).map(toAdminTokenView) }),
  );

  r.delete(
    '/v1/admin/tokens/:id',
    {
      config: { audit: { event: 'admin_token.revoke', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Revoke an admin token; it fails on the very next request (the root token only by itself)',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: withErrors({ 200: AdminTokenView }, 404),
      },
    },
    async (request) =>
      toAdminTokenView(await adminTokens.revoke(request.admin!, request.params.id, request.adminContext)),
  );
};
