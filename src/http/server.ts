import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { AdminTokenService } from '../admin/admin-token-service.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { KeyManagementService } from '../keys/key-management-service.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { createAdminAuthenticator } from './admin-auth.js';
import { createAuthFailureLimiter } from './auth-failure-limiter.js';
import { installErrorHandler } from './error-handler.js';
import './fastify-types.js';
import type { FastifyBaseLogger } from 'fastify';
import { createMetrics, type Metrics } from './metrics.js';
import { registerAdminTokenRoutes } from './routes/admin-token-routes.js';
import { registerCredentialRoutes } from './routes/credential-routes.js';
import { registerKeyRoutes } from './routes/key-routes.js';
import { type ReadinessCheck, registerOpsRoutes } from './routes/ops-routes.js';

export interface ServerDeps {
  credentials: CredentialService;
  adminTokens: AdminTokenService;
  keys: KeyManagementService;
  readiness: ReadinessCheck[];
  clock: Clock;
  logger: FastifyBaseLogger;
  metrics?: Metrics;
  bodyLimit: number;
  authFailureLimit: number;
  trustProxy?: string | undefined;
  version: string;
}

const requestIdPattern = /^[A-Za-z0-9._:-]{8,128}$/;

/** Builds the HTTP app without listening; tests drive it with `inject()`. */
export const buildServer = async (deps: ServerDeps): Promise<FastifyInstance> => {
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit,
    trustProxy: deps.trustProxy ?? false,
    // A caller's request id is kept when it looks like one, so a trace can cross services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : `req_${newId()}`;
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
  });

  installErrorHandler(app, { metrics, bodyLimit: deps.bodyLimit });

  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/v1/') && !route.config?.audit) {
      throw new Error(
        `route ${route.method} ${route.url} must declare config.audit (an event, or why it has none)`,
      );
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('cache-control', 'no-store');
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Token Vault',
        version: deps.version,
        description:
          'Credential vault and broker for AI agents. Errors are `{"error":{"code","message","request_id"}}`.',
      },
      components: {
        securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'tv_admin_… token' } },
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });

  const authenticate = createAdminAuthenticator({
    adminTokens: deps.adminTokens,
    limiter: createAuthFailureLimiter({ limit: deps.authFailureLimit, clock: deps.clock }),
    metrics,
  });

  await app.register(async (admin) => {
    admin.addHook('onRequest', async (request) => {
      request.admin = await authenticate(request);
    });
    registerCredentialRoutes(admin, { credentials: deps.credentials });
    registerAdminTokenRoutes(admin, { adminTokens: deps.adminTokens });
    registerKeyRoutes(admin, { keys: deps.keys });
  });

  registerOpsRoutes(app, { metrics, readiness: deps.readiness });
  return app;
};
