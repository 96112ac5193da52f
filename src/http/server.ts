import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import { createAdminAuthenticator, installAdminAuth } from './admin-auth.js';
import { installAgentAuth } from './agent-auth.js';
import { installAuditHooks } from './audit-hooks.js';
import { createAuthFailureLimiter } from './auth-failure-limiter.js';
import { clientErrorHandler } from './client-error.js';
import { installClientInfo } from './client-info.js';
import { installErrorHandler } from './error-handler.js';
import './fastify-types.js';
import type { AdminRouteInfo } from './fastify-types.js';
import type { FastifyBaseLogger } from 'fastify';
import type { VaultServices } from '../services.js';
import { createMetrics, type Metrics } from './metrics.js';
import { installRequestLog } from './request-log.js';
import { registerAdminTokenRoutes } from './routes/admin-token-routes.js';
import { registerAgentRoutes } from './routes/agent-routes.js';
import { registerApprovalPageRoutes } from './routes/approval-page-routes.js';
import { registerApprovalRoutes } from './routes/approval-routes.js';
import { registerAgentApprovalRoutes } from './routes/agent-approval-routes.js';
import { registerAuditRoutes } from './routes/audit-routes.js';
import { registerClientMetadataRoutes } from './routes/client-metadata-routes.js';
import { registerCredentialRoutes } from './routes/credential-routes.js';
import { registerRefreshRoutes } from './routes/refresh-routes.js';
import { registerGrantRoutes } from './routes/grant-routes.js';
import { registerIssuerRoutes } from './routes/issuer-routes.js';
import { registerKeyRoutes } from './routes/key-routes.js';
import { registerConnectPageRoutes, registerConnectRoutes } from './routes/connect-routes.js';
import { registerOAuthAppRoutes } from './routes/oauth-app-routes.js';
import { registerMcpProxyRoutes } from './routes/mcp-proxy-routes.js';
import { registerMcpProxyEndpointRoutes } from './routes/mcp-proxy-endpoint-routes.js';
import { registerOAuthRoutes } from './routes/oauth-routes.js';
import { registerPolicyRoutes } from './routes/policy-routes.js';
import { type ReadinessCheck, registerOpsRoutes } from './routes/ops-routes.js';
import { registerProxyRoutes } from './routes/proxy-routes.js';
import { registerRetrievalRoutes } from './routes/retrieval-routes.js';
import { registerVaultMcpRoutes } from './routes/vault-mcp-routes.js';
import type { TlsFiles } from './tls-options.js';

export interface ServerDeps {
  /** The vault's services (see services.ts); each route module takes the ones it uses. */
  services: VaultServices;
  readiness: ReadinessCheck[];
  clock: Clock;
  logger: FastifyBaseLogger;
  /** Fastify's two lines per request; off, only 5xx and slow requests are logged (request-log.ts). */
  accessLog?: boolean;
  metrics?: Metrics;
  bodyLimit: number;
  authFailureLimit: number;
  /** `TOKENVAULT_TRUSTED_PROXIES`: whose `X-Forwarded-For` gives the client address (client-info.ts). */
  trustedProxies?: readonly string[] | undefined;
  version: string;
  /** Resolves once every commit so far is on disk (the store's `durable`). */
  durable: () => Promise<void>;
  /** `TOKENVAULT_TLS_CERT_FILE` / `_KEY_FILE` read (tls-options.ts): the vault serves HTTPS itself. */
  https?: TlsFiles | undefined;
}

type RouteModule = (app: FastifyInstance, services: VaultServices) => void;

/**
 * The route modules behind the admin token, in registration order. Each takes a `Pick<>` of the
 * services; a new capability's admin routes are one more entry.
 */
const adminRouteModules: RouteModule[] = [
  registerCredentialRoutes,
  registerRefreshRoutes,
  registerAdminTokenRoutes,
  registerKeyRoutes,
  registerAuditRoutes,
  registerGrantRoutes,
  registerAgentRoutes,
  registerIssuerRoutes,
  registerOAuthRoutes,
  registerPolicyRoutes,
  registerOAuthAppRoutes,
  registerConnectRoutes,
  registerMcpProxyRoutes,
  registerApprovalRoutes,
];

/** The route modules agents call (each authenticates with `app.authenticateAgent`). */
const agentRouteModules: RouteModule[] = [
  registerRetrievalRoutes,
  registerProxyRoutes,
  registerVaultMcpRoutes,
  registerMcpProxyEndpointRoutes,
  registerAgentApprovalRoutes,
];

/**
 * A caller's request id is kept when it is 1 to 128 visible ASCII characters (no space, no control
 * character, nothing a header or a log line could be split on), so a client's own short ids correlate
 * too; anything else is replaced by `req_…`. The id used is echoed in the `x-request-id` header.
 */
const requestIdPattern = /^[\x21-\x7e]{1,128}$/;
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Builds the HTTP app without listening; tests drive it with `inject()`. */
export const buildServer = async (deps: ServerDeps): Promise<FastifyInstance> => {
  const { services } = deps;
  const metrics = deps.metrics ?? createMetrics();
  const app = Fastify({
    // Native TLS when configured. The instance's type stays the HTTP one: no route depends on the
    // socket type, and the request's `protocol` tells HTTPS apart where it matters.
    ...(deps.https ? { https: deps.https } : {}),
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimit,
    // Off: the client address comes from installClientInfo, and Host/Proto headers are never trusted.
    trustProxy: false,
    // A caller's request id is kept when it is safe (above), so a trace can cross services.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && requestIdPattern.test(given) ? given : `req_${newId()}`;
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    clientErrorHandler,
    logController: new LogController({
      requestIdLogLabel: 'request_id',
      disableRequestLogging: !deps.accessLog,
    }),
  });
  installClientInfo(app, { trustedProxies: deps.trustedProxies ?? [], countries: services.countries });
  installRequestLog(app, { accessLog: deps.accessLog ?? false });

  installErrorHandler(app, { metrics, bodyLimit: deps.bodyLimit });
  installAuditHooks(app, { audit: services.audit });

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
    adminTokens: services.adminTokens,
    limiter: createAuthFailureLimiter({ limit: deps.authFailureLimit, clock: deps.clock }),
    metrics,
  });

  const adminRoutes: AdminRouteInfo[] = [];
  app.decorate('adminRoutes', adminRoutes);
  await app.register(async (admin) => {
    installAdminAuth(admin, { authenticate, routes: adminRoutes });
    for (const register of adminRouteModules) register(admin, services);
  });

  installAgentAuth(app, {
    authenticator: services.agentAuthenticator,
    access: services.access,
    audit: services.audit,
    metrics,
    authFailureLimit: deps.authFailureLimit,
    clock: deps.clock,
  });
  for (const register of agentRouteModules) register(app, services);
  registerOpsRoutes(app, { metrics, readiness: deps.readiness, clock: deps.clock });
  // The connect pages take a browser's form post (an empty urlencoded body), in their own scope.
  await app.register(async (pages) => {
    pages.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, _b, done) =>
      done(null, {}),
    );
    registerConnectPageRoutes(pages, services);
  });
  registerApprovalPageRoutes(app, { ...services, clock: deps.clock });
  registerClientMetadataRoutes(app, services);
  return app;
};
