import type { FastifyRequest } from 'fastify';
import type { AdminPrincipal, AdminTokenService } from '../admin/admin-token-service.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { AuthFailureLimiter } from './auth-failure-limiter.js';
import type { Metrics } from './metrics.js';

export const bearerToken = (request: FastifyRequest): string | undefined => {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
};

/** onRequest hook for `/v1/admin`: a valid admin token, and a limit on failures per address. */
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
    const retryAfter = limiter.retryAfterSeconds(request.ip);
    if (retryAfter > 0)
      throw new VaultError('too_many_auth_failures', undefined, { details: { retryAfter } });
    const token = bearerToken(request);
    try {
      if (!token) throw new VaultError('unauthenticated');
      const principal = await adminTokens.authenticate(token);
      limiter.recordSuccess(request.ip);
      return principal;
    } catch (error) {
      if (isVaultError(error) && error.status === 401) {
        limiter.recordFailure(request.ip);
        metrics.authFailures.inc({ principal: 'admin', code: error.code });
      }
      throw error;
    }
  };
