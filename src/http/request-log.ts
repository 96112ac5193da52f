import type { FastifyInstance } from 'fastify';

/** A request answered later than this is logged even when the access log is off. */
export const slowRequestMs = 1000;

/**
 * Whether every request gets Fastify's two lines (received, completed): when asked for
 * (`--access-log`), or at a level that asks for detail. Off at the default level, because two JSON
 * lines per request cost about a third of the retrieval throughput (docs/benchmarks.md) and repeat
 * what the audit log already records.
 */
export const logsEveryRequest = (config: { accessLog: boolean; logLevel: string }): boolean =>
  config.accessLog || config.logLevel === 'debug' || config.logLevel === 'trace';

/**
 * With the access log off, the requests someone will look for still leave a line, with their request
 * id (the child logger's binding): every 5xx, at `error`, and every request slower than `slowMs`, at
 * `warn`. With it on, Fastify's own "request completed" line already says all of this.
 */
export const installRequestLog = (
  app: FastifyInstance,
  { accessLog, slowMs = slowRequestMs }: { accessLog: boolean; slowMs?: number },
): void => {
  if (accessLog) return;
  app.addHook('onResponse', async (request, reply) => {
    const failed = reply.statusCode >= 500;
    if (!failed && reply.elapsedTime <= slowMs) return;
    const fields = { req: request, res: reply, responseTime: reply.elapsedTime };
    if (failed) request.log.error(fields, 'request failed');
    else request.log.warn(fields, 'slow request');
  });
};
