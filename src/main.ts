import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { type DestinationStream, pino } from 'pino';
import { type AdminTokenService, createAdminTokenService } from './admin/admin-token-service.js';
import { bootstrapRootToken } from './admin/root-token-bootstrap.js';
import { createAgentAuthenticator } from './agents/agent-authenticator.js';
import { type AgentService, createAgentService } from './agents/agent-service.js';
import type { AgentAuthenticator } from './agents/agent-types.js';
import { createIssuerService, type IssuerService } from './agents/issuer-service.js';
import { createRemoteKeySets } from './agents/remote-keys.js';
import { type AuditService, createAuditService } from './audit/audit-service.js';
import { type AuditWriter, createAuditWriter } from './audit/audit-writer.js';
import { type Config, defaultAudience } from './config/config-schema.js';
import { describeConfig } from './config/load-config.js';
import { type CredentialService, createCredentialService } from './credentials/credential-service.js';
import { createGrantService, type GrantService } from './grants/grant-service.js';
import { createRetrievalService, type RetrievalService } from './grants/retrieval-service.js';
import { loggerOptions } from './http/logger-options.js';
import { createMetrics } from './http/metrics.js';
import { buildServer } from './http/server.js';
import { createDataKeyService } from './keys/data-key-service.js';
import { createKeyJobRunner, type KeyJobRunner } from './keys/key-job-runner.js';
import { createKeyManagementService, type KeyManagementService } from './keys/key-management-service.js';
import { providerFor } from './keys/key-providers.js';
import { setupKeys } from './keys/key-setup.js';
import { vaultStateRepo } from './keys/vault-state-repo.js';
import { type Clock, systemClock } from './lib/clock.js';
import { openStore, type Store } from './store/database.js';
import { createGenerationCache, type GenerationCache } from './store/generation-cache.js';
import { pingDatabase } from './store/migrations.js';
import { createStdoutLog } from './lib/log-destination.js';

export { adminTokenFileName } from './admin/root-token-bootstrap.js';

export interface VaultOptions {
  clock?: Clock;
  /** Where JSON logs go (stdout by default); tests capture them to look for secrets. */
  logDestination?: DestinationStream;
  /** Re-wrap job tuning, mostly for tests. */
  keyJob?: { leaseMs?: number; batchSize?: number; pollMs?: number };
}

export interface Vault {
  app: FastifyInstance;
  store: Store;
  /** The domain services, for in-process callers (tests, benchmarks, later the MCP server). */
  services: {
    credentials: CredentialService;
    adminTokens: AdminTokenService;
    keys: KeyManagementService;
    runner: KeyJobRunner;
    agents: AgentService;
    issuers: IssuerService;
    agentAuthenticator: AgentAuthenticator;
    /** The access generation cache of the agent path (one view per request). */
    access: GenerationCache;
    /** The audit log's writer (an AuditRecorder): pass it to every service that records events. */
    audit: AuditWriter;
    /** Reading, exporting and verifying the audit log. */
    auditLog: AuditService;
    grants: GrantService;
    /** The agent retrieval path (seed contract), for in-process callers and benchmarks. */
    retrieval: RetrievalService;
  };
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

/** The composition root: config in, a running vault out. Everything else is a factory it calls. */
export const createVault = async (config: Config, options: VaultOptions = {}): Promise<Vault> => {
  const clock = options.clock ?? systemClock;
  const stdoutLog = options.logDestination ? undefined : createStdoutLog();
  const logger = pino(loggerOptions(config.logLevel), options.logDestination ?? stdoutLog!.destination);
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    onWarning: (message) => logger.warn(message),
  });
  const { db } = store;
  const metrics = createMetrics();
  const audit = createAuditWriter({
    store,
    clock,
    logger,
    onCommit: (events) => {
      metrics.auditCommits.inc();
      metrics.auditEvents.inc(events);
    },
  });
  const auditLog = createAuditService({
    db,
    dialect: store.dialect,
    sqlitePath: store.dialect === 'sqlite' ? store.location : undefined,
  });
  try {
    const { mode, providers, enablePlatform, purgePlatformKeys } = await setupKeys({
      config,
      db,
      clock,
      logger,
      durable: store.durable,
    });

    const runner = createKeyJobRunner({
      db,
      providers,
      clock,
      owner: `${process.pid}-${randomUUID()}`,
      logger,
      batchSize: config.keyJobBatchSize,
      ...options.keyJob,
      onProgress: (remaining) => metrics.keyJobProgress.set(remaining),
      onFinished: async (finished) => {
        if (finished.target === 'webhook') await purgePlatformKeys();
      },
    });

    // One cache of access rows for the agent path, kept right by the access generation.
    const [cacheHits, cacheMisses] = [
      metrics.accessCacheLookups.labels('hit'),
      metrics.accessCacheLookups.labels('miss'),
    ];
    const access = createGenerationCache(store, {
      onLookup: (hit) => (hit ? cacheHits : cacheMisses).inc(),
    });
    const dataKeys = createDataKeyService({ db, providers, clock });
    const credentials = createCredentialService({ store, access, dataKeys, clock, audit });
    const adminTokens = createAdminTokenService({ db, clock, audit });
    const keys = createKeyManagementService({ db, providers, clock, runner, enablePlatform });
    const grants = createGrantService({ db, clock, audit });
    const retrieval = createRetrievalService({ store, access, clock, credentials, audit });
    const vaultAudience = config.audience ?? defaultAudience(config);
    const remoteKeys = createRemoteKeySets({ clock });
    const agents = createAgentService({ db, clock, audit });
    const issuers = createIssuerService({ db, clock, audit, remoteKeys, vaultAudience });
    const agentAuthenticator = createAgentAuthenticator({ store, access, clock, vaultAudience, remoteKeys });

    const adminTokenPath = await bootstrapRootToken({
      db,
      dialect: store.dialect,
      clock,
      audit,
      dataDir: config.dataDir,
    });
    if (adminTokenPath)
      logger.info({ path: adminTokenPath }, 'root admin token written (mode 0600); it is not logged');

    const services = {
      credentials,
      adminTokens,
      keys,
      runner,
      audit,
      auditLog,
      grants,
      retrieval,
      agents,
      issuers,
      agentAuthenticator,
      access,
    };
    const app = await buildServer({
      ...services,
      clock,
      logger,
      metrics,
      bodyLimit: config.bodyLimit,
      authFailureLimit: config.authFailureLimit,
      trustProxy: config.trustProxy,
      version: packageVersion(),
      durable: store.durable,
      readiness: [
        { name: 'database', check: () => pingDatabase(db) },
        {
          name: 'key_provider',
          check: async () => providerFor(providers, (await vaultStateRepo.getMode(db)) ?? 'platform').check(),
        },
      ],
    });
    runner.start();
    logger.info({ config: describeConfig(config), store: store.dialect, mode }, 'vault initialised');

    let stopping: Promise<void> | undefined;
    return {
      app,
      store,
      services,
      adminTokenPath,
      async listen() {
        return app.listen({ host: config.host, port: config.port });
      },
      stop() {
        stopping ??= (async () => {
          await app.close();
          // Requests in flight have finished; whatever they queued is committed before the store closes.
          await audit.close();
          await runner.stop();
          await store.close();
          await stdoutLog?.settle();
        })();
        return stopping;
      },
      dropLogs: () => stdoutLog?.drop(),
    };
  } catch (error) {
    await audit.close();
    await store.close();
    throw error;
  }
};
