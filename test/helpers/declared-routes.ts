import type { RouteOptions } from 'fastify';
import type { AuditDeclaration } from '../../src/http/fastify-types.js';

/** A route as it was registered: what it declares for the audit log, and whether it takes a body. */
export interface DeclaredRoute {
  readonly method: string;
  readonly url: string;
  readonly audit: AuditDeclaration | undefined;
  readonly hasBody: boolean;
}

const routes = new Map<string, DeclaredRoute>();

/**
 * An `onRoute` hook that notes every route registered. A test file installs it on every app by
 * wrapping the `fastify` factory (see test/audit/audit-http.test.ts), so that the cases derived from
 * the routes' declarations cover a route added later without anyone listing it.
 */
export const noteRoute = (route: RouteOptions): void => {
  // HEAD routes are Fastify's copies of the GET ones.
  for (const method of [route.method].flat().filter((m) => m !== 'HEAD')) {
    routes.set(`${method} ${route.url}`, {
      method,
      url: route.url,
      audit: route.config?.audit,
      hasBody: Boolean(route.schema?.body),
    });
  }
};

/** Every route any app built so far in this test file registered, except HEAD. */
export const declaredRoutes = (): DeclaredRoute[] => [...routes.values()];
