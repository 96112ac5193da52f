import type { AdminPrincipal } from '../admin/admin-token-service.js';

/**
 * Every route declares the audit event it writes, or why it writes none, so audit coverage is a
 * decision made where the route is defined (checked when the route is registered).
 */
export type AuditDeclaration = { event: string } | { none: string };

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminPrincipal;
  }
  interface FastifyContextConfig {
    audit?: AuditDeclaration;
  }
}
