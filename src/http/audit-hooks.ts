import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditAction, AuditEventInput, AuditRecorder } from '../audit/audit-types.js';
import { errorRegistry } from '../errors/error-registry.js';
import type { ErrorBody } from './error-handler.js';
import './fastify-types.js';
import { clientIpOf } from './client-info.js';

/** The codes the admin `onRequest` hook refuses with: a failed admin authentication. */
const adminAuthFailures = new Set<string>([
  'unauthenticated',
  'admin_token_invalid',
  'admin_token_expired',
  'admin_token_revoked',
  'too_many_auth_failures',
]);

/** What the path names (`:name`, `:id`), else the `name` a create sends; typed by the event's noun. */
const targetOf = (request: FastifyRequest, action: AuditAction): AuditEventInput['target'] => {
  const params = (request.params ?? {}) as Record<string, unknown>;
  const body = request.body as Record<string, unknown> | undefined;
  const id = [params.name, params.id, body && typeof body === 'object' ? body.name : undefined].find(
    (value): value is string => typeof value === 'string',
  );
  return id === undefined ? undefined : { type: action.split('.')[0] as string, id };
};

const headerValue = (value: string | string[] | undefined): string | null =>
  typeof value === 'string' ? value : null;

/**
 * DESIGN invariant 2 at the HTTP edge, for what no service can record. Every route that declares
 * `config.audit.event` is recorded by its service (`auditedChange`, `auditedUse`), inside the change's
 * transaction or durably before the answer. This hook records only what never reached a handler (a
 * failed admin authentication, a body that did not validate) under the route's event, a failed admin
 * authentication on a route without one as `admin.authenticate`, and a handler that failed with
 * something other than a VaultError (which no service recorded) as `internal_error`. The failure's
 * code comes from the error handler (`request.errorCode`), never from the response body. The record
 * is durable before a byte of the response leaves; when it cannot be written the response is
 * replaced by `503 audit_unavailable`. Install before any route.
 */
export const installAuditHooks = (
  app: FastifyInstance,
  { audit }: { audit: Pick<AuditRecorder, 'record'> },
) => {
  const reachedHandler = new WeakSet<FastifyRequest>();

  app.addHook('onRoute', (route) => {
    const declaration = route.config?.audit;
    if (!declaration || !('event' in declaration)) return;
    if (declaration.recordedBy !== 'service') {
      throw new Error(`route ${route.method} ${route.url}: audit.recordedBy must be 'service'`);
    }
    const handler = route.handler;
    route.handler = function (request, reply) {
      reachedHandler.add(request);
      return handler.call(this, request, reply);
    };
  });

  const outcomeOf = (request: FastifyRequest, reply: FastifyReply) => {
    const declaration = request.routeOptions.config?.audit;
    const context = request.auditContext;
    if (!declaration) return undefined;
    const status = reply.statusCode;
    // Everything this hook records is a failure: an allowed outcome is its service's to record.
    if (status < 400) return undefined;
    const reason = request.errorCode ?? `http_${status}`;
    let action: AuditAction;
    if ('event' in declaration) {
      if (reachedHandler.has(request) && !request.failedUnexpectedly) return undefined;
      action = declaration.event;
    } else {
      const adminRoute = (request.routeOptions.url ?? '').startsWith('/v1/admin/');
      if (!adminRoute) return undefined;
      // A token whose role the route does not admit (admin-auth.ts): the refusal is its only record.
      if (request.admin && reason === 'forbidden_role') action = 'admin.authorize';
      else if (!request.admin && adminAuthFailures.has(reason)) action = 'admin.authenticate';
      else return undefined;
    }
    const event: AuditEventInput = {
      namespace: context?.namespace ?? headerValue(request.headers['x-tokenvault-namespace']) ?? 'default',
      actor:
        context?.actor ??
        (request.admin ? { type: 'admin', id: request.admin.tokenId } : { type: 'anonymous', id: null }),
      action,
      target: context?.target ?? (action === 'admin.authenticate' ? undefined : targetOf(request, action)),
      decision: 'deny',
      reason,
      client: { ip: clientIpOf(request), userAgent: headerValue(request.headers['user-agent']) },
      requestId: request.id,
      details: {
        method: request.method,
        route: request.routeOptions.url ?? null,
        status,
        ...context?.details,
      },
    };
    return event;
  };

  app.addHook('onSend', async (request, reply, payload) => {
    const event = outcomeOf(request, reply);
    if (!event) return payload;
    try {
      await audit.record(event);
      return payload;
    } catch (error) {
      request.log.error({ err: error, action: event.action }, 'audit record failed: response withheld');
      (payload as { destroy?: () => void } | null)?.destroy?.();
      const body: ErrorBody = {
        error: {
          code: 'audit_unavailable',
          message: errorRegistry.audit_unavailable.message,
          request_id: request.id,
        },
      };
      reply.removeHeader('location');
      reply.removeHeader('content-disposition');
      reply.code(503).type('application/json; charset=utf-8');
      return JSON.stringify(body);
    }
  });
};
