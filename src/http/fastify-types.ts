import type { AdminRole, RoleDeclaration } from '../admin/admin-roles.js';
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

/** An admin route as registered: what tests and docs derive the role table from. */
export interface AdminRouteInfo {
  method: string;
  url: string;
  /** Every role that may call it, `admin` first. */
  roles: readonly AdminRole[];
  /** The event it records (`config.audit.event`), under which a refusal is recorded too; else none. */
  event: AuditAction | null;
}

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
    /**
     * Admin routes only: the role (or roles) besides `admin` that may call the route, such as
     * `'operator'` or `['operator', 'auditor']` (src/admin/admin-roles.ts). Checked once, by the admin
     * hook (admin-auth.ts); registration fails for an admin route that declares none.
     */
    role?: RoleDeclaration;
  }
  interface FastifyInstance {
    /** Every admin route with the roles it admits, as registered (admin-auth.ts). */
    adminRoutes: readonly AdminRouteInfo[];
  }
}
