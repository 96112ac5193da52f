import type { FastifyRequest } from 'fastify';
import type { AuditContext } from '../audit/audit-context.js';

/** The admin behind a request, and where it came from, for the events a service records. */
export const adminContextOf = (request: FastifyRequest): AuditContext => ({
  actor: { type: 'admin', id: request.admin?.tokenId ?? null },
  client: { ip: request.ip, userAgent: request.headers['user-agent'] ?? null },
  requestId: request.id,
});
