import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgentAuthenticator, AgentPrincipal } from '../agents/agent-types.js';
import { auditedUse } from '../audit/audit-context.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { GenerationCache } from '../store/generation-cache.js';
import { bearerToken } from './admin-auth.js';
import { type AuthFailureLimiter, createAuthFailureLimiter } from './auth-failure-limiter.js';
import type { Metrics } from './metrics.js';
import { clientIpOf } from './client-info.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Authenticates the agent behind `Authorization: Bearer …` (API key, JWT assertion or workload
     * token), or throws the precise VaultError after auditing the refusal. Sets `request.agent`.
     */
    authenticateAgent(request: FastifyRequest): Promise<AgentPrincipal>;
  }
  interface FastifyRequest {
    agent?: AgentPrincipal;
  }
}

export interface AgentRequestAuthDeps {
  authenticator: AgentAuthenticator;
  /** Authentication's own view for its cached lookups (see generation-cache.ts). */
  access: Pick<GenerationCache, 'view'>;
  audit: Pick<AuditRecorder, 'record'>;
  /** Its own instance: failed agent logins must not lock admins out of the same address, nor the reverse. */
  limiter: AuthFailureLimiter;
  metrics?: Pick<Metrics, 'authFailures'>;
}

const namespacePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** Where an anonymous refusal is filed: the namespace the caller named, if it is one, else `default`. */
const claimedNamespace = (request: FastifyRequest): string => {
  const header = request.headers['x-tokenvault-namespace'];
  return typeof header === 'string' && namespacePattern.test(header) ? header : 'default';
};

const detail = (error: VaultError, key: string): string | undefined => {
  const value = error.details?.[key];
  return typeof value === 'string' ? value : undefined;
};

/**
 * How a failed authentication is filed: who tried (when the token named an agent), in which
 * namespace, never what they presented.
 */
const refusalFacts = (request: FastifyRequest, error: VaultError) => {
  const agentId = detail(error, 'agent_id');
  const details: Record<string, string> = {};
  for (const key of ['agent_id', 'agent_name', 'method', 'key_id', 'issuer']) {
    const value = detail(error, key);
    if (value !== undefined) details[key] = value;
  }
  return {
    ctx: {
      actor: agentId ? { type: 'agent' as const, id: agentId } : { type: 'anonymous' as const, id: null },
      client: clientOf(request),
      requestId: request.id,
    },
    namespace: detail(error, 'namespace') ?? claimedNamespace(request),
    target: agentId ? { type: 'agent', id: agentId } : undefined,
    details,
  };
};

const clientOf = (request: FastifyRequest) => ({
  ip: clientIpOf(request),
  userAgent: request.headers['user-agent'] ?? null,
});

/**
 * Builds `authenticateAgent(request)`: the per-address failure limit, the bearer token, the
 * authenticator, and an audited refusal (`auditedUse`: recorded durably before the error goes on, or
 * `audit_unavailable` when it cannot be). A success is not recorded here: the action the agent then
 * takes is, with the agent as actor, so each request leaves one event.
 */
export const createAgentRequestAuthenticator = ({
  authenticator,
  access,
  audit,
  limiter,
  metrics,
}: AgentRequestAuthDeps) => {
  const authenticateAgent = (request: FastifyRequest): Promise<AgentPrincipal> =>
    auditedUse(
      audit,
      {
        ctx: { actor: { type: 'anonymous', id: null }, client: clientOf(request), requestId: request.id },
        namespace: claimedNamespace(request),
        action: 'agent.authenticate',
        refusal: (error) => refusalFacts(request, error),
      },
      async () => {
        try {
          return await authenticate(request);
        } catch (error) {
          if (isVaultError(error)) {
            // Only a wrong credential counts towards the limit; a disabled agent or an unreachable
            // issuer is not someone guessing.
            if (error.status === 401) limiter.recordFailure(clientIpOf(request), bearerToken(request));
            metrics?.authFailures.inc({ principal: 'agent', code: error.code });
          }
          throw error;
        }
      },
    );

  /** The bearer token, the authenticator, and what the route's own event needs to know. */
  const authenticate = async (request: FastifyRequest): Promise<AgentPrincipal> => {
    const token = bearerToken(request);
    const retryAfter = limiter.retryAfterSeconds(clientIpOf(request), token);
    if (retryAfter > 0)
      throw new VaultError('too_many_auth_failures', undefined, { details: { retryAfter } });
    if (!token) throw new VaultError('agent_unauthenticated');
    // A view of its own, for authentication's cached lookups only: what the agent may then do is
    // decided at a view taken after authentication has finished (src/access/agent-request.ts).
    const principal = await authenticator.authenticate({
      token,
      clientIp: clientIpOf(request),
      view: await access.view(),
    });
    request.agent = principal;
    // The route's own event (recorded by its service, or by the audit hook when the route fails
    // unexpectedly) then names the agent as its actor.
    request.auditContext = {
      ...request.auditContext,
      actor: { type: 'agent', id: principal.agentId },
      namespace: principal.namespace,
      details: { ...request.auditContext?.details, ...principalAuditDetails(principal) },
    };
    return principal;
  };

  return authenticateAgent;
};

/** Facts about how an agent authenticated, for the audit record of what it does next. */
export const principalAuditDetails = (principal: AgentPrincipal): Record<string, string> => ({
  auth_method: principal.method,
  ...(principal.credentialRef === null ? {} : { auth_ref: principal.credentialRef }),
});

/**
 * Decorates the app with `authenticateAgent(request)`, with its own failure limiter. Call from
 * `buildServer` before registering the routes that use it.
 */
export const installAgentAuth = (
  app: FastifyInstance,
  deps: Omit<AgentRequestAuthDeps, 'limiter'> & { authFailureLimit: number; clock: Clock },
): void => {
  const limiter = createAuthFailureLimiter({ limit: deps.authFailureLimit, clock: deps.clock });
  app.decorate('authenticateAgent', createAgentRequestAuthenticator({ ...deps, limiter }));
};
