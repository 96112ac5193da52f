import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { withErrors } from '../schemas/common-schemas.js';
import {
  CredentialToken,
  RetrievalParams,
  RetrievalQuery,
  toCredentialToken,
} from '../schemas/grant-schemas.js';
import { accessClientOf } from '../client-info.js';

/**
 * The seed contract: `GET /v1/agents/{agentId}/credentials/{service}` with the agent's bearer token.
 * Authenticate (refusals audited there), then the agent request path (src/access/agent-request.ts:
 * the agent in the path → the access view → decide → read → record), then answer with `no-store`. The body carries a secret: it is never logged (the logger only ever sees
 * method, path and status) and the response schema is its allowlist.
 */
export const registerRetrievalRoutes = (
  app: FastifyInstance,
  { retrieval }: Pick<VaultServices, 'retrieval'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/agents/:agentId/credentials/:service',
    {
      config: { audit: { event: 'credential.retrieve', recordedBy: 'service' } },
      schema: {
        tags: ['agents'],
        security: [{ agentToken: [] }],
        summary: 'Fetch a granted credential (reveal grants only; other grants use the proxy)',
        description:
          'Send `Authorization: Bearer <agent key or agent JWT>`. `{agentId}` is your agent id or name. Every outcome is audited before the answer.',
        params: RetrievalParams,
        querystring: RetrievalQuery,
        response: withErrors({ 200: CredentialToken }, 403, 409, 503),
      },
    },
    async (request, reply) => {
      const principal = await app.authenticateAgent(request);
      const credential = await retrieval.retrieve({
        principal,
        agentRef: request.params.agentId,
        service: request.params.service,
        scope: request.query.scope,
        client: accessClientOf(request),
        requestId: request.id,
        endUser: request.query.user,
        approvalId: request.query.approval,
        connectFlow: request.query.flow,
      });
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      return toCredentialToken(credential);
    },
  );
};
