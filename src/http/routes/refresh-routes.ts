import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { auditedUse } from '../../audit/audit-context.js';
import type { RefreshStatus } from '../../oauth/refresh/refresh-types.js';
import type { VaultServices } from '../../services.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';
import { NameParams, UserQuery } from '../schemas/credential-schemas.js';

/** `tokenvault credential refresh NAME` and the refresh lines of `credential show` (docs/oauth.md). */

const tags = ['credentials'];
const security = [{ adminToken: [] }];
const Time = Type.Union([Type.String(), Type.Null()]);

const RefreshStatusView = Type.Object({
  status: Type.String({ description: '`active`, `failing` (backing off), `needs_reauth` or `unmanaged`.' }),
  access_expires_at: Time,
  expiry_assumed: Type.Boolean({ description: 'The provider gave no lifetime; the catalog’s was assumed.' }),
  last_refresh_at: Time,
  next_refresh_at: Time,
  failures: Type.Integer({ description: 'Retryable failures in a row.' }),
  last_error: Type.Union([Type.String(), Type.Null()], { description: 'A code, never the provider’s text.' }),
});

const RefreshResultView = Type.Object({
  outcome: Type.String({
    description: '`refreshed`, `refreshed_elsewhere`, `retry_later` or `needs_reauth`.',
  }),
  code: Type.Optional(Type.String()),
  refresh: Type.Union([RefreshStatusView, Type.Null()]),
});

const toView = (status: RefreshStatus | null) =>
  status && {
    status: status.status,
    access_expires_at: status.accessExpiresAt,
    expiry_assumed: status.expiryAssumed,
    last_refresh_at: status.lastRefreshAt,
    next_refresh_at: status.nextRefreshAt,
    failures: status.failures,
    last_error: status.lastError,
  };

export const registerRefreshRoutes = (
  app: FastifyInstance,
  { credentials, oauthRefresh, audit }: Pick<VaultServices, 'credentials' | 'oauthRefresh' | 'audit'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/credentials/:name/refresh',
    {
      config: { audit: { event: 'credential.refresh', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Refresh an OAuth credential now (or wait for the refresh in flight)',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        response: withErrors({ 200: RefreshResultView }, 404, 409),
      },
    },
    (request) => {
      // Grows as the request learns (the credential's id), and is read when an outcome is recorded.
      const details: Record<string, string> = {
        credential_name: request.params.name.slice(0, 200),
        trigger: 'admin',
      };
      // A refused request is recorded here; a refresh records itself (in its transaction).
      return auditedUse(
        audit,
        {
          ctx: request.adminContext,
          namespace: request.namespace,
          action: 'credential.refresh',
          target: { type: 'credential', id: request.params.name.slice(0, 200) },
          details,
        },
        async (record) => {
          const { name } = request.params;
          const { user } = request.query;
          details.credential_id = (await credentials.get(request.namespace, name, user)).id;
          const { result, refresh } = await oauthRefresh.refreshNow(request.namespace, name, user);
          // Nothing refreshed (backing off, refreshed elsewhere): the admin's request is the event.
          if (result.outcome !== 'refreshed') {
            await record({
              details: { outcome: result.outcome, ...('code' in result ? { code: result.code } : {}) },
            });
          }
          return {
            outcome: result.outcome,
            ...('code' in result ? { code: result.code } : {}),
            refresh: toView(refresh),
          };
        },
      );
    },
  );

  r.get(
    '/v1/admin/credentials/:name/refresh',
    {
      config: {
        audit: { none: 'metadata read by an admin; no secret leaves' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'An OAuth credential’s refresh state: last and next refresh, failures, status',
        headers: NamespaceHeader,
        params: NameParams,
        querystring: UserQuery,
        response: withErrors(
          { 200: Type.Object({ refresh: Type.Union([RefreshStatusView, Type.Null()]) }) },
          404,
        ),
      },
    },
    async (request) => {
      const credential = await credentials.get(request.namespace, request.params.name, request.query.user);
      return { refresh: toView(await oauthRefresh.status(request.namespace, credential.id)) };
    },
  );
};
