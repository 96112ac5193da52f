import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import {
  ApprovalIdParams,
  ApprovalList,
  ApprovalListQuery,
  ApprovalView,
  DecideBody,
  PushSubscriptionBody,
  toApprovalView,
} from '../schemas/approval-schemas.js';
import { NamespaceHeader, withErrors } from '../schemas/common-schemas.js';

const tags = ['approvals'];
const security = [{ adminToken: [] }];
const readNone = {
  none: 'approval metadata read by an approver or auditor; nothing changes, no secret leaves',
};

/**
 * Admin REST for approvals (docs/approvals.md). Approvers decide with a token of role `approver`
 * (or `admin`) whose name the policy rule lists; the service records each decision, and each
 * refused one, under `approval.approve` / `approval.deny`.
 */
export const registerApprovalRoutes = (
  app: FastifyInstance,
  {
    approvals,
    approvalPush,
    vapidPublicKey,
  }: Pick<VaultServices, 'approvals' | 'approvalPush' | 'vapidPublicKey'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/admin/approvals',
    {
      config: { audit: readNone, role: ['approver', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'List approvals, newest first (`state=pending` for those waiting)',
        headers: NamespaceHeader,
        querystring: ApprovalListQuery,
        response: withErrors({ 200: ApprovalList }),
      },
    },
    async (request) => {
      const items = await approvals.list(request.namespace, {
        state: request.query.state as 'pending' | undefined,
        limit: request.query.limit === undefined ? undefined : Number(request.query.limit),
      });
      return { items: items.map(toApprovalView) };
    },
  );

  r.get(
    '/v1/admin/approvals/:id',
    {
      config: { audit: readNone, role: ['approver', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'Show one approval',
        headers: NamespaceHeader,
        params: ApprovalIdParams,
        response: withErrors({ 200: ApprovalView }, 404),
      },
    },
    async (request) => toApprovalView(await approvals.show(request.namespace, request.params.id)),
  );

  for (const decision of ['approve', 'deny'] as const) {
    r.post(
      `/v1/admin/approvals/:id/${decision}`,
      {
        config: {
          audit: {
            event: decision === 'approve' ? 'approval.approve' : 'approval.deny',
            recordedBy: 'service',
          },
          role: 'approver',
        },
        schema: {
          tags,
          security,
          summary:
            decision === 'approve'
              ? 'Approve a pending approval (final; not your own request)'
              : 'Deny a pending approval (final), with an optional reason',
          headers: NamespaceHeader,
          params: ApprovalIdParams,
          body: Type.Optional(DecideBody),
          response: withErrors({ 200: ApprovalView }, 404, 409),
        },
      },
      async (request) => {
        const approver = request.admin!.name;
        const decided = await approvals.decide(
          request.namespace,
          request.params.id,
          decision,
          { approver, via: request.body?.via ?? 'api', reason: request.body?.reason },
          request.adminContext,
        );
        return toApprovalView(decided);
      },
    );
  }

  r.get(
    '/v1/admin/approvals/push/key',
    {
      config: { audit: { none: 'the public VAPID key; nothing secret' }, role: 'approver' },
      schema: {
        tags,
        security,
        summary: 'The VAPID public key a browser subscribes to Web Push with',
        response: withErrors({ 200: Type.Object({ public_key: Type.String() }) }),
      },
    },
    async () => ({ public_key: vapidPublicKey }),
  );

  r.post(
    '/v1/admin/approvals/push/subscriptions',
    {
      config: { audit: { event: 'approval.subscribe', recordedBy: 'service' }, role: 'approver' },
      schema: {
        tags,
        security,
        summary: 'Subscribe a browser to Web Push for the approver this token names',
        description: 'The body is the browser’s `PushSubscription` as JSON.',
        body: PushSubscriptionBody,
        response: withErrors({ 201: Type.Object({ id: Type.String(), approver: Type.String() }) }),
      },
    },
    async (request, reply) => {
      const approver = request.admin!.name;
      const id = await approvalPush.subscribe(approver, request.body, request.adminContext);
      return reply.status(201).send({ id, approver });
    },
  );
};
