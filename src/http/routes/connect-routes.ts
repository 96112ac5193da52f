import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isVaultError } from '../../errors/vault-error.js';
import type { AuditContext } from '../../audit/audit-context.js';
import { callbackPath } from '../../oauth/oauth-app-service.js';
import type { VaultServices } from '../../services.js';
import { clientIpOf } from '../client-info.js';
import { consentPage, failurePage, pageHeaders, successPage } from '../connect-pages.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';

const tags = ['oauth'];
const security = [{ adminToken: [] }];

const StartConnectBody = Type.Object(
  {
    app: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'The OAuth app (by default named after its provider).',
    }),
    agent: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'The agent (id or name) the grant is for.',
    }),
    user: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: 'The end user: the credential’s subject.',
      }),
    ),
    scopes: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { maxItems: 100 })),
    grant_ttl: Type.Optional(
      Type.String({ maxLength: 16, description: 'The grant’s lifetime; absent: until revoked.' }),
    ),
    reveal: Type.Optional(Type.Boolean()),
    credential: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'Default: the app’s name.' }),
    ),
    device: Type.Optional(Type.Boolean({ description: 'Use the device authorization grant (RFC 8628).' })),
    client_credentials: Type.Optional(
      Type.Boolean({
        description: 'No user: the vault fetches a client-credentials token now, and renews it by itself.',
      }),
    ),
  },
  { additionalProperties: false },
);

const ConnectLinkView = Type.Object({
  id: Type.String(),
  url: Type.String({
    description: 'The link to give the person (the provider’s verification URL for a device flow).',
  }),
  expires_at: Type.String(),
  user_code: Type.Optional(Type.String()),
  verification_uri: Type.Optional(Type.String()),
  verification_uri_complete: Type.Optional(Type.String()),
  interval: Type.Optional(Type.Integer({ description: 'Seconds between the vault’s polls.' })),
});

const ConnectSessionView = Type.Object({
  id: Type.String(),
  status: Type.String({ description: 'created, started, exchanging, completed or failed' }),
  error_code: Type.Union([Type.String(), Type.Null()]),
  credential_id: Type.Union([Type.String(), Type.Null()]),
  expires_at: Type.String(),
});

/** Admin side: make a connect link, and see how it went. */
export const registerConnectRoutes = (app: FastifyInstance, { connect }: Pick<VaultServices, 'connect'>) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post(
    '/v1/admin/connect',
    {
      config: { audit: { event: 'connect.create', recordedBy: 'service' }, role: 'operator' },
      schema: {
        tags,
        security,
        summary: 'Start a connect session: a short-lived, single-use link for one user, one agent, one app',
        headers: NamespaceHeader,
        body: StartConnectBody,
        response: withErrors({ 201: ConnectLinkView }, 404, 502),
      },
    },
    async (request, reply) => {
      const b = request.body;
      const link = await connect.start(
        request.namespace,
        {
          app: b.app,
          agent: b.agent,
          user: b.user ?? '',
          scopes: b.scopes,
          grantTtl: b.grant_ttl,
          reveal: b.reveal,
          credential: b.credential,
          flow: b.client_credentials ? 'client_credentials' : b.device ? 'device' : 'browser',
        },
        request.adminContext,
      );
      return reply.status(201).send({
        id: link.id,
        url: link.url,
        expires_at: link.expiresAt,
        ...(link.device
          ? {
              user_code: link.device.userCode,
              verification_uri: link.device.verificationUri,
              ...(link.device.verificationUriComplete
                ? { verification_uri_complete: link.device.verificationUriComplete }
                : {}),
              interval: link.device.interval,
            }
          : {}),
      });
    },
  );

  r.get(
    '/v1/admin/connect/:id',
    {
      config: {
        audit: { none: 'a connect session’s status, read by an admin; no secret' },
        role: ['operator', 'auditor'],
      },
      schema: {
        tags,
        security,
        summary: 'A connect session’s status',
        headers: NamespaceHeader,
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: withErrors({ 200: ConnectSessionView }, 404),
      },
    },
    async (request) => {
      const s = await connect.show(request.namespace, request.params.id);
      return {
        id: s.id,
        status: s.status,
        error_code: s.errorCode,
        credential_id: s.credentialId,
        expires_at: s.expiresAt,
      };
    },
  );
};

const personOf = (request: FastifyRequest): AuditContext => ({
  actor: { type: 'anonymous', id: null },
  client: { ip: clientIpOf(request), userAgent: request.headers['user-agent'] ?? null },
  requestId: request.id,
});

const failed = (reply: FastifyReply, error: unknown) => {
  if (!isVaultError(error)) throw error;
  return reply.status(error.status).headers(pageHeaders).send(failurePage(error.code, error.message));
};

const TokenParams = Type.Object({ token: Type.String({ minLength: 20, maxLength: 128 }) });

/**
 * The person's side, without an admin or agent token (the link's own token is the capability): the
 * consent page, the continue button, and the provider's redirect back. HTML, never JSON; each refusal
 * is a page with its stable code, recorded by the service.
 */
export const registerConnectPageRoutes = (
  app: FastifyInstance,
  { connect }: Pick<VaultServices, 'connect'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const hide = { hide: true };

  r.get(
    '/connect/:token',
    {
      config: { audit: { event: 'connect.authorize', recordedBy: 'service' } },
      schema: { ...hide, params: TokenParams },
    },
    async (request, reply) => {
      try {
        const view = await connect.page(request.params.token, personOf(request));
        return reply.headers(pageHeaders).send(consentPage(view, `/connect/${request.params.token}`));
      } catch (error) {
        return failed(reply, error);
      }
    },
  );

  r.post(
    '/connect/:token',
    {
      config: { audit: { event: 'connect.authorize', recordedBy: 'service' } },
      schema: { ...hide, params: TokenParams },
    },
    async (request, reply) => {
      try {
        const url = await connect.begin(request.params.token, personOf(request));
        return reply
          .status(303)
          .headers({ ...pageHeaders, location: url })
          .send('');
      } catch (error) {
        return failed(reply, error);
      }
    },
  );

  r.get(
    callbackPath,
    {
      config: { audit: { event: 'connect.complete', recordedBy: 'service' } },
      schema: { ...hide, querystring: Type.Record(Type.String(), Type.String({ maxLength: 4096 })) },
    },
    async (request, reply) => {
      try {
        const done = await connect.callback(request.query, personOf(request));
        return reply.headers(pageHeaders).send(successPage(done));
      } catch (error) {
        return failed(reply, error);
      }
    },
  );
};
