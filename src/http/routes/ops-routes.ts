import type { FastifyInstance } from 'fastify';
import { isVaultError } from '../../errors/vault-error.js';
import type { Clock } from '../../lib/clock.js';
import type { Metrics } from '../metrics.js';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** How long a passed readiness check is reused. */
export const readinessValidityMs = 5000;

/**
 * A readiness check shared by every `/readyz` caller: at most one probe in flight, whose success is
 * reused for `validityMs`. `/readyz` is unauthenticated and the key provider's check is a wrap and an
 * unwrap through the key webhook in webhook mode, so without this a flood of probes becomes a flood
 * of signed webhook calls (enough, once, to fill the webhook's replay window and fail every
 * retrieval). A failure is not reused once settled: the next probe tries again, so readiness comes
 * back as soon as the provider does, and callers that arrive meanwhile still share one probe.
 */
export const sharedCheck = (
  check: () => Promise<void>,
  { clock, validityMs = readinessValidityMs }: { clock: Pick<Clock, 'now'>; validityMs?: number },
): (() => Promise<void>) => {
  let inFlight: Promise<void> | undefined;
  let passedAt = -Infinity;
  return () => {
    if (clock.now().getTime() - passedAt < validityMs) return Promise.resolve();
    inFlight ??= check()
      .then(() => {
        passedAt = clock.now().getTime();
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
};

export const registerOpsRoutes = (
  app: FastifyInstance,
  {
    metrics,
    readiness: checks,
    clock,
  }: { metrics: Metrics; readiness: ReadinessCheck[]; clock: Pick<Clock, 'now'> },
) => {
  const readiness = checks.map(({ name, check }) => ({ name, check: sharedCheck(check, { clock }) }));
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
