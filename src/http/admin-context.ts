import type { FastifyRequest } from 'fastify';
import type { AdminPrincipal } from '../admin/admin-token-service.js';
import type { AuditContext } from '../audit/audit-context.js';
import { clientIpOf } from './client-info.js';

/** The admin behind a request, and where it came from, for the events a service records. */
export const adminContextOf = (request: FastifyRequest): AuditContext => ({
  actor: { type: 'admin', id: request.admin?.tokenId ?? null },
  client: { ip: clientIpOf(request), userAgent: request.headers['user-agent'] ?? null },
  requestId: request.id,
});

/**
 * What every admin handler needs, set once by the admin hook after authentication: the principal, the
 * audit context of the events its service records, and the namespace it acts in (the header, else
 * `default`). Each route's header schema still validates the namespace before its handler runs.
 */
export const setAdminRequest = (request: FastifyRequest, principal: AdminPrincipal): void => {
  request.admin = principal;
  request.adminContext = adminContextOf(request);
  const header = request.headers['x-tokenvault-namespace'];
  request.namespace = typeof header === 'string' ? header : 'default';
};
