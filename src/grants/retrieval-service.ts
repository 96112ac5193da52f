import { type AgentRequestDeps, approvalAttribute, createAgentRequests } from '../access/agent-request.js';
import type { AgentPrincipal } from '../agents/agent-types.js';
import type { AuditDetails } from '../audit/audit-types.js';
import { type RevealedToken, revealToken } from '../credentials/credential-types.js';

export type RetrievalServiceDeps = AgentRequestDeps;

export interface RetrievalRequest {
  /** The authenticated agent. */
  principal: AgentPrincipal;
  /** `{agentId}` from the path: must be the principal's id or name. */
  agentRef: string;
  /** `{service}` from the path: a credential name. */
  service: string;
  /** `?scope=` as given: `a,b`, `a b`, or repeated. */
  scope: string | readonly string[] | undefined;
  client: { ip: string | null; userAgent: string | null };
  requestId: string;
  /** Facts the event carries besides the request's own (the vault's MCP tools: `via: 'mcp'`). */
  details?: AuditDetails | undefined;
  /** `?user=`: the end user whose connection to use (per-user credentials). */
  endUser?: string | undefined;
  /** `?approval=`: the approval a retry after `approval_pending` names (docs/approvals.md). */
  approvalId?: string | undefined;
  /** `?flow=`: the consent flow an `authorization_required` answer starts (docs/oauth.md). */
  connectFlow?: 'browser' | 'device' | undefined;
}

export interface RetrievedCredential extends RevealedToken {
  /** The earliest of the grant's and the credential's expiry; null when neither expires. */
  expiresAt: string | null;
  /** Granted ∩ requested (all granted scopes when none were requested). */
  scopes: string[];
}

/**
 * The agent retrieval path (seed contract): the agent request path (src/access/agent-request.ts) on
 * the `reveal` channel, whose act is rendering the secret as a token. Every outcome, allowed or
 * refused, is exactly one `credential.retrieve` event, durable before anything is returned.
 */
export const createRetrievalService = (deps: RetrievalServiceDeps) => {
  const requests = createAgentRequests(deps);
  return {
    retrieve: ({ approvalId, ...request }: RetrievalRequest): Promise<RetrievedCredential> =>
      requests.use(
        {
          ...request,
          channel: 'reveal',
          action: 'credential.retrieve',
          ...(approvalId === undefined ? {} : { attributes: { [approvalAttribute]: approvalId } }),
        },
        async ({ allowed, read }) => {
          const revealed = revealToken(read.credential.type, read.secret, read.credential.injection);
          return {
            result: { ...revealed, expiresAt: allowed.expiresAt, scopes: [...allowed.scopes] },
            details: { scopes: [...allowed.scopes], expires_at: allowed.expiresAt },
          };
        },
      ),
  };
};

export type RetrievalService = ReturnType<typeof createRetrievalService>;
