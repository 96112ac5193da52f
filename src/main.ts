import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { type DestinationStream, pino } from 'pino';
import { bootstrapRootToken } from './admin/root-token-bootstrap.js';
import { createAuditWriter } from './audit/audit-writer.js';
import type { Config } from './config/config-schema.js';
import { describeConfig } from './config/load-config.js';
import { chooseLogFormat, loggerOptions } from './http/logger-options.js';
import { logsEveryRequest } from './http/request-log.js';
import { createMetrics } from './http/metrics.js';
import { buildServer } from './http/server.js';
import { readTlsFiles } from './http/tls-options.js';
import { type Clock, systemClock } from './lib/clock.js';
import { startComponents } from './lib/components.js';
import { createServices, type ServicesDeps, type VaultServices } from './services.js';
import { openStore, type Store } from './store/database.js';
import { createStdoutLog } from './lib/log-destination.js';

export type { VaultServices } from './services.js';

export { adminTokenFileName } from './admin/root-token-bootstrap.js';

export interface VaultOptions {
  clock?: Clock;
  /** Where JSON logs go (stdout by default); tests capture them to look for secrets. */
  logDestination?: DestinationStream;
  /** Re-wrap job tuning, mostly for tests. */
  keyJob?: ServicesDeps['keyJob'];
  /** OAuth refresh's collaborators and tuning (tests, the connect flow's resolver). */
  oauthRefresh?: ServicesDeps['oauthRefresh'];
}

export interface Vault {
  app: FastifyInstance;
  store: Store;
  /** The domain services, for in-process callers (tests, benchmarks, later the MCP server). */
  services: VaultServices;
  /** Set when this start created the root admin token. */
  adminTokenPath: string | undefined;
  listen(): Promise<string>;
  stop(): Promise<void>;
  /** Drops log lines still buffered for stdout, so that a forced exit cannot wait on a stuck reader. */
  dropLogs(): void;
}

export const packageVersion = (): string =>
  (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;

/**
 * The composition root: config in, a running vault out. Each component starts in the order below and
 * stops in reverse: background workers, then the HTTP app (requests in flight finish), then the audit
 * writer (what they queued is committed), the store, and last the log.
 */
export const createVault = async (config: Config, options: VaultOptions = {}): Promise<Vault> => {
  const clock = options.clock ?? systemClock;
  // Before anything opens: a bad certificate or key stops the start with a sentence naming the setting.
  const https = readTlsFiles(config);
  const stdoutLog = options.logDestination
    ? undefined
    : createStdoutLog(chooseLogFormat(config.logFormat, process.stdout.isTTY === true));
  const logger = pino(loggerOptions(config.logLevel), options.logDestination ?? stdoutLog!.destination);
  const metrics = createMetrics();

  const running = await startComponents(
    (name, error) => logger.error({ err: error, component: name }, 'a component failed to stop'),
    async (start) => {
      await start({ name: 'log', stop: async () => stdoutLog?.settle() });
      const store = await openStore({
        databaseUrl: config.databaseUrl,
        dataDir: config.dataDir,
        onWarning: (message) => logger.warn(message),
      });
      await start({ name: 'store', stop: () => store.close() });
      const audit = createAuditWriter({
        store,
        clock,
        logger,
        onCommit: (events) => {
          metrics.auditCommits.inc();
          metrics.auditEvents.inc(events);
        },
      });
      await start({ name: 'audit writer', stop: () => audit.close() });

      const { services, readiness, workers, keyMode } = await createServices({
        config,
        store,
        audit,
        clock,
        logger,
        metrics,
        keyJob: options.keyJob,
        oauthRefresh: options.oauthRefresh,
      });
      const adminTokenPath = await bootstrapRootToken({
        db: store.db,
        dialect: store.dialect,
        clock,
        audit,
        dataDir: config.dataDir,
      });
      if (adminTokenPath) {
        logger.info({ path: adminTokenPath }, 'root admin token written (mode 0600); it is not logged');
      }

      const app = await buildServer({
        services,
        readiness,
        clock,
        logger,
        accessLog: logsEveryRequest(config),
        metrics,
        bodyLimit: config.bodyLimit,
        authFailureLimit: config.authFailureLimit,
        trustedProxies: config.trustedProxies,
        version: packageVersion(),
        durable: store.durable,
        https,
      });
      await start({ name: 'http', stop: () => app.close() });
      for (const worker of workers) await start(worker);
      logger.info(
        { config: describeConfig(config), store: store.dialect, mode: keyMode },
        'vault initialised',
      );
      return { app, store, services, adminTokenPath };
    },
  );

  const { app } = running.value;
  return {
    ...running.value,
    async listen() {
      return app.listen({ host: config.host, port: config.port });
    },
    stop: running.stop,
    dropLogs: () => stdoutLog?.drop(),
  };
};
