import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { VaultError } from '../../errors/vault-error.js';
import type { VaultServices } from '../../services.js';
import { AgentApprovalParams, AgentApprovalQuery, AgentApprovalView } from '../schemas/approval-schemas.js';
import { withErrors } from '../schemas/common-schemas.js';

/**
 * The agent's long-poll after `approval_pending`: waits until its approval is decided or `wait`
 * seconds pass, then answers the state; once approved, `retry_url` is the request to repeat.
 */
export const registerAgentApprovalRoutes = (
  app: FastifyInstance,
  { approvals }: Pick<VaultServices, 'approvals'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  r.get(
    '/v1/agents/:agentId/approvals/:id',
    {
      config: {
        audit: { none: 'an agent reads the state of its own approval; nothing changes, no secret leaves' },
      },
      schema: {
        tags: ['agents'],
        security: [{ agentToken: [] }],
        summary: 'Wait for an approval this agent’s request is parked on (`?wait=` seconds, at most 60)',
        params: AgentApprovalParams,
        querystring: AgentApprovalQuery,
        response: withErrors({ 200: AgentApprovalView }, 404),
      },
    },
    async (request) => {
      const principal = await app.authenticateAgent(request);
      const ref = request.params.agentId;
      if (ref !== principal.agentId && ref !== principal.agentName) throw new VaultError('agent_mismatch');
      const wait = Math.min(60, Number(request.query.wait ?? '0'));
      const approval = await approvals.waitFor(
        principal.namespace,
        principal.agentId,
        request.params.id,
        wait * 1000,
      );
      const agent = encodeURIComponent(ref);
      return {
        id: approval.id,
        state: approval.state,
        expires_at: approval.expiresAt,
        covers_until: approval.coversUntil,
        reason: approval.reason,
        retry_url:
          approval.state === 'approved'
            ? `/v1/agents/${agent}/credentials/${encodeURIComponent(approval.credential.name)}?approval=${encodeURIComponent(approval.id)}`
            : null,
      };
    },
  );
};
