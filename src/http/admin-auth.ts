import type { FastifyInstance, FastifyRequest } from 'fastify';
import { admittedRoles, declaredRoles, isAdminRole, roleAllows } from '../admin/admin-roles.js';
import type { AdminPrincipal, AdminTokenService } from '../admin/admin-token-service.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import { setAdminRequest } from './admin-context.js';
import type { AuthFailureLimiter } from './auth-failure-limiter.js';
import type { AdminRouteInfo } from './fastify-types.js';
import type { Metrics } from './metrics.js';
import { clientIpOf } from './client-info.js';

export const bearerToken = (request: FastifyRequest): string | undefined => {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
};

/**
 * onRequest hook for `/v1/admin`: a valid admin token, and a limit on failures per address and per
 * presented token (auth-failure-limiter.ts).
 */
export const createAdminAuthenticator =
  ({
    adminTokens,
    limiter,
    metrics,
  }: {
    adminTokens: Pick<AdminTokenService, 'authenticate'>;
    limiter: AuthFailureLimiter;
    metrics: Metrics;
  }) =>
  async (request: FastifyRequest): Promise<AdminPrincipal> => {
    const token = bearerToken(request);
    const retryAfter = limiter.retryAfterSeconds(clientIpOf(request), token);
    if (retryAfter > 0)
      throw new VaultError('too_many_auth_failures', undefined, { details: { retryAfter } });
    try {
      if (!token) throw new VaultError('unauthenticated');
      return await adminTokens.authenticate(token);
    } catch (error) {
      if (isVaultError(error) && error.status === 401) {
        limiter.recordFailure(clientIpOf(request), token);
        metrics.authFailures.inc({ principal: 'admin', code: error.code });
      }
      throw error;
    }
  };

/**
 * The role check, after authentication: the route's declared roles (`config.role`) admit the token's,
 * or the request is refused with `forbidden_role` before its body is even validated. The refusal is
 * recorded once, by the audit hook (audit-hooks.ts): under the route's own event when it declares
 * one, else as `admin.authorize`; these details say which role was held and which were needed.
 */
const authorize = (request: FastifyRequest, principal: AdminPrincipal): void => {
  const declaration = request.routeOptions.config.role;
  // Registration refuses an admin route without a role; should one slip through, nobody but admin passes.
  if (declaration !== undefined && roleAllows(principal.role, declaration)) return;
  const needed = declaration === undefined ? ['admin'] : admittedRoles(declaration);
  request.auditContext = { details: { role: principal.role, roles_needed: needed } };
  throw new VaultError(
    'forbidden_role',
    `This admin token has role ${principal.role}; ${request.method} ${request.routeOptions.url ?? request.url} ` +
      `needs role ${needed.join(' or ')}.`,
  );
};

/**
 * The admin routes' hooks, installed in the plugin that holds them (so they apply to those routes
 * only): every route must declare the roles that may call it (registration fails otherwise, as for
 * `config.audit` in server.ts), and `routes` collects each with its roles; every request is
 * authenticated, then authorized, before anything else of the route runs.
 */
export const installAdminAuth = (
  admin: FastifyInstance,
  {
    authenticate,
    routes,
  }: { authenticate: (request: FastifyRequest) => Promise<AdminPrincipal>; routes: AdminRouteInfo[] },
): void => {
  admin.addHook('onRoute', (route) => {
    const declaration = route.config?.role;
    const roles = declaration === undefined ? [] : declaredRoles(declaration);
    if (roles.length === 0 || !roles.every(isAdminRole)) {
      throw new Error(
        `admin route ${String(route.method)} ${route.url} must declare config.role (the roles that may call it)`,
      );
    }
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const audit = route.config?.audit;
    const event = audit && 'event' in audit ? audit.event : null;
    for (const method of methods) {
      routes.push({ method, url: route.url, roles: admittedRoles(roles), event });
    }
  });

  admin.addHook('onRequest', async (request) => {
    const principal = await authenticate(request);
    setAdminRequest(request, principal);
    authorize(request, principal);
  });
};
