import type { FastifyInstance } from 'fastify';
import { isVaultError } from '../../errors/vault-error.js';
import type { Metrics } from '../metrics.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export const registerOpsRoutes = (
  app: FastifyInstance,
  { metrics, readiness }: { metrics: Metrics; readiness: ReadinessCheck[] },
) => {
  app.get(
    '/healthz',
    {
      config: { audit: { none: 'liveness probe' } },
      schema: { tags: ['operations'], summary: 'The process is up' },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { audit: { none: 'readiness probe' } },
      schema: {
        tags: ['operations'],
        summary: 'The database answers and the key provider can wrap and unwrap',
      },
    },
    async (request, reply) => {
      const results = await Promise.all(
        readiness.map(async ({ name, check }) => {
          try {
            await check();
            return { name, ok: true as const };
          } catch (error) {
            request.log.warn({ err: error, check: name }, 'readiness check failed');
            return { name, ok: false as const, code: isVaultError(error) ? error.code : 'unavailable' };
          }
        }),
      );
      const ready = results.every((r) => r.ok);
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks: results });
    },
  );

  app.get(
    '/metrics',
    { config: { audit: { none: 'Prometheus scrape; counters only, no secrets' } }, schema: { hide: true } },
    async (_request, reply) =>
      reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
};
