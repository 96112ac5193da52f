import type { AdminPrincipal } from '../admin/admin-token-service.js';
import type { AuditContext } from '../audit/audit-context.js';
import type { AuditAction, AuditRequestContext } from '../audit/audit-types.js';

/**
 * Every route declares the audit event it writes, or why it writes none, so audit coverage is a
 * decision made where the route is defined (checked when the route is registered).
 */
export type AuditDeclaration =
  | {
      event: AuditAction;
      /**
       * The domain service records the event (in the change's own transaction, or durably before the
       * answer); the HTTP hook only records what never reached the handler (see audit-hooks.ts).
       */
      recordedBy: 'service';
    }
  | { none: string };

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminPrincipal;
    /** Admin routes only (set by the admin hook, see admin-context.ts): the audit context of the admin. */
    adminContext: AuditContext;
    /** Admin routes only (set by the admin hook): the namespace header, else `default`. */
    namespace: string;
    /** What a handler tells the audit hook about this request (actor, target, details); see audit-hooks.ts. */
    auditContext?: AuditRequestContext;
  }
  interface FastifyContextConfig {
    audit?: AuditDeclaration;
  }
}
