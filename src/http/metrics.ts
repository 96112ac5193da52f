import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** One registry per server instance (never the global one), so tests and replicas stay separate. */
export const createMetrics = () => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tokenvault_' });
  const metrics = {
    registry,
    httpRequests: new Counter({
      name: 'tokenvault_http_requests_total',
      help: 'HTTP requests by method, route and status.',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'tokenvault_http_request_duration_seconds',
      help: 'HTTP request duration in seconds by method and route.',
      labelNames: ['method', 'route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    errors: new Counter({
      name: 'tokenvault_errors_total',
      help: 'Error responses by stable error code.',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'tokenvault_auth_failures_total',
      help: 'Failed authentications by kind of principal and reason code.',
      labelNames: ['principal', 'code'] as const,
      registers: [registry],
    }),
    auditCommits: new Counter({
      name: 'tokenvault_audit_commits_total',
      help: 'Group commits of audit events made durable (several requests share one under load).',
      registers: [registry],
    }),
    auditEvents: new Counter({
      name: 'tokenvault_audit_events_total',
      help: 'Audit events made durable by group commits (changes record theirs in their own transaction).',
      registers: [registry],
    }),
    accessCacheLookups: new Counter({
      name: 'tokenvault_access_cache_lookups_total',
      help: 'Agent-path reads of keys, grants and credentials, by whether the access cache answered (hit) or the database (miss).',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    storeLockTimeouts: new Counter({
      name: 'tokenvault_store_lock_timeouts_total',
      help: 'Requests refused because a bounded database wait ran out (lock_timeout, statement_timeout, SQLite busy_timeout, pool wait), by the code answered (store_busy, audit_unavailable).',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    keyJobProgress: new Gauge({
      name: 'tokenvault_key_rewrap_remaining',
      help: 'Data keys still waiting to be re-wrapped by the running key job (0 when none runs).',
      registers: [registry],
    }),
  };
  return metrics;
};

export type Metrics = ReturnType<typeof createMetrics>;
