import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgentAuthenticator, AgentPrincipal } from '../agents/agent-types.js';
import type { AuditEventInput, AuditRecorder } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { GenerationCache, GenerationView } from '../store/generation-cache.js';
import { bearerToken } from './admin-auth.js';
import { type AuthFailureLimiter, createAuthFailureLimiter } from './auth-failure-limiter.js';
import type { Metrics } from './metrics.js';

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
    /** The access generation the agent was authenticated at: what the route decides at too. */
    accessView?: GenerationView;
  }
}

export interface AgentRequestAuthDeps {
  authenticator: AgentAuthenticator;
  /** One view per request, shared by authentication and the route (see generation-cache.ts). */
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

/** The deny record of a failed authentication: who tried (when known), never what they presented. */
const refusalEvent = (request: FastifyRequest, error: VaultError): AuditEventInput => {
  const agentId = detail(error, 'agent_id');
  const details: Record<string, string> = {};
  for (const key of ['method', 'key_id', 'issuer']) {
    const value = detail(error, key);
    if (value !== undefined) details[key] = value;
  }
  return {
    namespace: detail(error, 'namespace') ?? claimedNamespace(request),
    actor: agentId ? { type: 'agent', id: agentId } : { type: 'anonymous', id: null },
    action: 'agent.authenticate',
    target: agentId ? { type: 'agent', id: agentId } : undefined,
    decision: 'deny',
    reason: error.code,
    client: { ip: request.ip, userAgent: request.headers['user-agent'] ?? null },
    requestId: request.id,
    details,
  };
};

/**
 * Builds `authenticateAgent(request)`: the per-address failure limit, the bearer token, the
 * authenticator, and an audited refusal. Refusals are recorded durably before the error goes on; if
 * that record cannot be written the request fails with `audit_unavailable` instead (fail closed).
 * A success is not recorded here: the action the agent then takes is, with the agent as actor
 * (`request.auditContext` is set for the audit hook), so each request leaves one event.
 */
export const createAgentRequestAuthenticator =
  ({ authenticator, access, audit, limiter, metrics }: AgentRequestAuthDeps) =>
  async (request: FastifyRequest): Promise<AgentPrincipal> => {
    try {
      const token = bearerToken(request);
      const retryAfter = limiter.retryAfterSeconds(request.ip, token);
      if (retryAfter > 0)
        throw new VaultError('too_many_auth_failures', undefined, { details: { retryAfter } });
      if (!token) throw new VaultError('agent_unauthenticated');
      const view = await access.view();
      const principal = await authenticator.authenticate({ token, clientIp: request.ip, view });
      request.accessView = view;
      request.agent = principal;
      // The route's own audit event (recorded by the audit hook) then names the agent as its actor.
      request.auditContext = {
        ...request.auditContext,
        actor: { type: 'agent', id: principal.agentId },
        namespace: principal.namespace,
        details: { ...request.auditContext?.details, ...principalAuditDetails(principal) },
      };
      return principal;
    } catch (error) {
      if (!isVaultError(error)) throw error;
      // Only a wrong credential counts towards the limit; a disabled agent or an unreachable issuer
      // is not someone guessing.
      if (error.status === 401) limiter.recordFailure(request.ip, bearerToken(request));
      metrics?.authFailures.inc({ principal: 'agent', code: error.code });
      try {
        await audit.record(refusalEvent(request, error));
      } catch (auditError) {
        if (isVaultError(auditError) && auditError.code === 'audit_unavailable') throw auditError;
        throw new VaultError('audit_unavailable', undefined, { cause: auditError });
      }
      // One event per refused request: the audit hook must not add the route's own deny as well.
      request.auditContext = { ...request.auditContext, recorded: true };
      throw error;
    }
  };

/** Facts about how an agent authenticated, for the audit record of what it does next. */
export const principalAuditDetails = (principal: AgentPrincipal): Record<string, string> => ({
  auth_method: principal.method,
  ...(principal.credentialRef === null ? {} : { auth_ref: principal.credentialRef }),
});

/**
 * DESIGN invariant 5: the `{agentId}` of a path (id or name) must be the authenticated agent.
 * Throws `agent_mismatch` otherwise.
 */
export const assertAgentInPath = (principal: AgentPrincipal, pathAgent: string): void => {
  if (pathAgent !== principal.agentId && pathAgent !== principal.agentName) {
    throw new VaultError('agent_mismatch');
  }
};

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
