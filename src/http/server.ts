import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { AdminTokenService } from '../admin/admin-token-service.js';
import type { AgentService } from '../agents/agent-service.js';
import type { AgentAuthenticator } from '../agents/agent-types.js';
import type { IssuerService } from '../agents/issuer-service.js';
import type { AuditService } from '../audit/audit-service.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { GrantService } from '../grants/grant-service.js';
import type { RetrievalService } from '../grants/retrieval-service.js';
import type { KeyManagementService } from '../keys/key-management-service.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { createAdminAuthenticator } from './admin-auth.js';
import { installAgentAuth } from './agent-auth.js';
import { installAuditHooks } from './audit-hooks.js';
import { createAuthFailureLimiter } from './auth-failure-limiter.js';
import { installErrorHandler } from './error-handler.js';
import './fastify-types.js';
import type { FastifyBaseLogger } from 'fastify';
import type { GenerationCache } from '../store/generation-cache.js';
import { createMetrics, type Metrics } from './metrics.js';
import { registerAdminTokenRoutes } from './routes/admin-token-routes.js';
import { registerAgentRoutes } from './routes/agent-routes.js';
import { registerAuditRoutes } from './routes/audit-routes.js';
import { registerCredentialRoutes } from './routes/credential-routes.js';
import { registerGrantRoutes } from './routes/grant-routes.js';
import { registerIssuerRoutes } from './routes/issuer-routes.js';
import { registerKeyRoutes } from './routes/key-routes.js';
import { type ReadinessCheck, registerOpsRoutes } from './routes/ops-routes.js';
import { registerRetrievalRoutes } from './routes/retrieval-routes.js';

export interface ServerDeps {
  credentials: CredentialService;
  adminTokens: AdminTokenService;
  keys: KeyManagementService;
  /** Records the outcome of every route that declares an audit event (see audit-hooks.ts). */
  audit: Pick<AuditRecorder, 'record'>;
  auditLog: AuditService;
  grants: GrantService;
  retrieval: RetrievalService;
  agents: AgentService;
  issuers: IssuerService;
  /** Behind `app.authenticateAgent(request)` (see agent-auth.ts). */
  agentAuthenticator: AgentAuthenticator;
  /** The access generation cache the agent path reads through. */
  access: Pick<GenerationCache, 'view'>;
  readiness: ReadinessCheck[];
  clock: Clock;
  logger: FastifyBaseLogger;
  metrics?: Metrics;
  bodyLimit: number;
  authFailureLimit: number;
  trustProxy?: string | undefined;
  version: string;
  /** Resolves once every commit so far is on disk (the store's `durable`). */
  durable: () => Promise<void>;
}

/**
 * A caller's request id is kept when it is 1 to 128 visible ASCII characters (no space, no control
 * character, nothing a header or a log line could be split on), so a client's own short ids correlate
 * too; anything else is replaced by `req_…`. The id used is echoed in the `x-request-id` header.
 */
const requestIdPattern = /^[\x21-\x7e]{1,128}$/;
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Builds the HTTP app without listening; tests drive it with `inject()`. */
export const buildServer = async (deps: ServerDeps): Promise<FastifyInstance> => {
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit,
    trustProxy: deps.trustProxy ?? false,
    // A caller's request id is kept when it is safe (above), so a trace can cross services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : `req_${newId()}`;
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
  });

  installErrorHandler(app, { metrics, bodyLimit: deps.bodyLimit });
  installAuditHooks(app, { audit: deps.audit });

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

  // A change is acknowledged only once it is on disk (on SQLite the WAL is fsynced off the event loop).
  app.addHook('onSend', async (request) => {
    if (!safeMethods.has(request.method)) await deps.durable();
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
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'tv_admin_… token' },
          agentToken: {
            type: 'http',
            scheme: 'bearer',
            description: 'tv_agent_… key, agent JWT or workload token',
          },
        },
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
    registerAuditRoutes(admin, { auditLog: deps.auditLog });
    registerGrantRoutes(admin, { grants: deps.grants });
    registerAgentRoutes(admin, { agents: deps.agents });
    registerIssuerRoutes(admin, { issuers: deps.issuers });
  });

  installAgentAuth(app, {
    authenticator: deps.agentAuthenticator,
    access: deps.access,
    audit: deps.audit,
    metrics,
    authFailureLimit: deps.authFailureLimit,
    clock: deps.clock,
  });
  registerRetrievalRoutes(app, { retrieval: deps.retrieval });
  registerOpsRoutes(app, { metrics, readiness: deps.readiness });
  return app;
};
