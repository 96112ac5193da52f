import type { FastifyInstance, FastifyReply } from 'fastify';
import { isVaultError } from '../../errors/vault-error.js';
import type { VaultServices } from '../../services.js';
import { clientIpOf } from '../client-info.js';
import {
  approvalPageHtml,
  approvalPageScript,
  approvalServiceWorker,
  linkConfirmationHtml,
  linkResultHtml,
} from '../../web/approval-page-assets.js';

/** Only this origin's own files: the page runs no inline script and loads nothing from elsewhere. */
const pageCsp =
  "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const html = (reply: FastifyReply, status: number, body: string) =>
  reply
    .status(status)
    .header('content-security-policy', pageCsp)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .type('text/html; charset=utf-8')
    .send(body);

/**
 * The approval page, its service worker, and the signed one-time links (docs/approvals.md). The page
 * and the worker are static; everything they do goes through the admin REST API with the approver's
 * token. A link's GET only shows what it would decide; its POST decides, as the approver the link
 * was sent to, through the same service as every other channel (so it is audited the same way, and
 * refused for a decided or expired approval or for the request's own identity).
 */
export const registerApprovalPageRoutes = (
  app: FastifyInstance,
  {
    approvals,
    approvalLinks,
    clock,
  }: Pick<VaultServices, 'approvals' | 'approvalLinks'> & {
    clock: { now(): Date };
  },
) => {
  app.get('/approvals', { schema: { hide: true } }, (_request, reply) => html(reply, 200, approvalPageHtml));
  app.get('/approvals/app.js', { schema: { hide: true } }, (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').send(approvalPageScript),
  );
  app.get('/approvals/sw.js', { schema: { hide: true } }, (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('service-worker-allowed', '/approvals/')
      .send(approvalServiceWorker),
  );

  app.get<{ Querystring: { t?: string } }>(
    '/approvals/link',
    { schema: { hide: true } },
    async (request, reply) => {
      try {
        const claims = approvalLinks.verify(String(request.query.t ?? ''), clock.now());
        const approval = await approvals.find(claims.approvalId);
        return html(
          reply,
          200,
          linkConfirmationHtml({
            token: String(request.query.t),
            decision: claims.decision,
            approver: claims.approver,
            summary: `${approval.agent.name} asks to use ${approval.credential.name}${
              approval.endUser ? ` for ${approval.endUser}` : ''
            } (policy ${approval.policy.name}); the approval is ${approval.state} and expires ${approval.expiresAt}.`,
          }),
        );
      } catch (error) {
        if (!isVaultError(error)) throw error;
        return html(reply, error.status, linkResultHtml(error.message));
      }
    },
  );

  app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 4096 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    scope.post<{ Body: { t?: string; reason?: string } }>(
      '/approvals/link',
      { schema: { hide: true } },
      async (request, reply) => {
        try {
          const claims = approvalLinks.verify(String(request.body?.t ?? ''), clock.now());
          const approval = await approvals.find(claims.approvalId);
          const decided = await approvals.decide(
            approval.namespace,
            approval.id,
            claims.decision,
            { approver: claims.approver, via: 'link', reason: request.body?.reason || undefined },
            {
              actor: { type: 'anonymous', id: null },
              client: { ip: clientIpOf(request), userAgent: request.headers['user-agent'] ?? null },
              requestId: request.id,
            },
          );
          return html(reply, 200, linkResultHtml(`Approval ${decided.id} is now ${decided.state}.`));
        } catch (error) {
          if (!isVaultError(error)) throw error;
          return html(reply, error.status, linkResultHtml(error.message));
        }
      },
    );
  });
};
