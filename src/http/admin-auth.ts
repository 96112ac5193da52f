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
    const retryAfter = limiter.retryAfterSeconds(request.ip, token);
    if (retryAfter > 0)
      throw new VaultError('too_many_auth_failures', undefined, { details: { retryAfter } });
    try {
      if (!token) throw new VaultError('unauthenticated');
      return await adminTokens.authenticate(token);
    } catch (error) {
      if (isVaultError(error) && error.status === 401) {
        limiter.recordFailure(request.ip, token);
        metrics.authFailures.inc({ principal: 'admin', code: error.code });
      }
      throw error;
    }
  };
