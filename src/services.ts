import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type AdminTokenService, createAdminTokenService } from './admin/admin-token-service.js';
import { createAgentAuthenticator } from './agents/agent-authenticator.js';
import { type AgentService, createAgentService } from './agents/agent-service.js';
import type { AgentAuthenticator } from './agents/agent-types.js';
import { createIssuerService, type IssuerService } from './agents/issuer-service.js';
import { createRemoteKeySets } from './agents/remote-keys.js';
import { createOutboundGuard } from './net/outbound-guard.js';
import { type ApprovalLinks, createApprovalLinks, deriveKey } from './approvals/approval-links.js';
import {
  type ApprovalNotifier,
  createApprovalNotifier,
  deriveVapidKeys,
} from './approvals/approval-notifier.js';
import { type ApprovalService, createApprovalService } from './approvals/approval-service.js';
import { createIntervalWorker } from './approvals/interval-worker.js';
import { createPushSubscriptions, type PushSubscriptions } from './approvals/push-subscriptions.js';
import { type AuditChainKey, loadAuditChainKey } from './audit/audit-keys.js';
import {
  type CheckpointWriter,
  type CheckpointKey,
  createCheckpointWriter,
  deriveCheckpointKey,
} from './audit/audit-checkpoints.js';
import { createProxyService, type ProxyService } from './proxy/proxy-service.js';
import { catalogApiBase } from './proxy/api-base.js';
import { createVaultMcp, type VaultMcp } from './mcp/vault-server/vault-mcp-handler.js';
import { createProxyAdminService, type ProxyAdminService } from './mcp-proxy/proxy-admin-service.js';
import { createMcpProxyService, type McpProxyService } from './mcp-proxy/mcp-proxy-service.js';
import { createToolPins, type ToolPins } from './mcp-proxy/tool-pins.js';
import { type AuditService, createAuditService } from './audit/audit-service.js';
import type { AuditWriter } from './audit/audit-writer.js';
import { type Config, defaultAudience } from './config/config-schema.js';
import { type CredentialService, createCredentialService } from './credentials/credential-service.js';
import { createGrantService, type GrantService } from './grants/grant-service.js';
import { createRetrievalService, type RetrievalService } from './grants/retrieval-service.js';
import { type ProviderCatalog, shippedProviderCatalog } from './oauth/provider-catalog.js';
import { createOAuthAppResolver, type ResolveOAuthApp } from './oauth/oauth-app-resolver.js';
import { createOAuthAppService, type OAuthAppService } from './oauth/oauth-app-service.js';
import { discoverIssuer } from './oauth/oauth-discovery.js';
import { discoverMcpServer } from './oauth/mcp-discovery.js';
import { type ConnectService, createConnectService } from './oauth/connect-service.js';
import {
  createOAuthRefresh,
  type OAuthRefresh,
  type OAuthRefreshWiring,
} from './oauth/refresh/oauth-refresh.js';
import type { Metrics } from './http/metrics.js';
import type { ReadinessCheck } from './http/routes/ops-routes.js';
import { createDataKeyService } from './keys/data-key-service.js';
import { createKeyJobRunner, type KeyJobRunner } from './keys/key-job-runner.js';
import { createKeyManagementService, type KeyManagementService } from './keys/key-management-service.js';
import { providerFor } from './keys/key-providers.js';
import { setupKeys } from './keys/key-setup.js';
import { vaultStateRepo } from './keys/vault-state-repo.js';
import type { Clock } from './lib/clock.js';
import type { Component } from './lib/components.js';
import type { Store } from './store/database.js';
import { createGenerationCache, type GenerationCache } from './store/generation-cache.js';
import { pingDatabase } from './store/migrations.js';
import type { ApprovalsPort } from './policy/index.js';
import { createPolicyEnforcement, type PolicyEnforcement } from './policy/policy-enforcement.js';
import { createPolicyService, type PolicyService } from './policy/policy-service.js';
import { createPolicyDryRun, type PolicyDryRun } from './policy/policy-dry-run.js';
import { createPolicyUsage, type PolicyUsageService } from './policy/policy-usage.js';
import type { EventPublisher } from './events/event-types.js';
import { createEventPublisher } from './events/event-outbox.js';
import { createEventDelivery } from './events/event-delivery.js';
import { createStoreCounters, type StoreCounters } from './policy/store-counters.js';
import { type CountryLookup, createCountryLookup, lazyCountryLookup } from './policy/country-lookup.js';

/**
 * Every domain service of the vault, built once by `createServices`. HTTP route modules take a
 * `Pick<>` of it; in-process callers (tests, benchmarks, later the MCP server) the whole.
 */
export interface VaultServices {
  credentials: CredentialService;
  adminTokens: AdminTokenService;
  keys: KeyManagementService;
  /** The re-wrap job runner (started as one of `workers`). */
  runner: KeyJobRunner;
  agents: AgentService;
  issuers: IssuerService;
  /** Behind `app.authenticateAgent(request)` (see http/agent-auth.ts). */
  agentAuthenticator: AgentAuthenticator;
  /** The access generation cache of the agent path (one view per request). */
  access: GenerationCache;
  /** The audit log's writer (an AuditRecorder): pass it to every service that records events. */
  audit: AuditWriter;
  /** Reading, exporting and verifying the audit log. */
  auditLog: AuditService;
  /**
   * The audit chain key (audit-keys.ts), unwrapped: for in-process verifiers and tests. Never logged,
   * never answered over HTTP.
   */
  auditChainKey: AuditChainKey;
  /** The checkpoint signing key (derived from the chain key) and the writer (one of `workers`). */
  auditCheckpoints: { key: CheckpointKey; writer: CheckpointWriter };
  grants: GrantService;
  /** The agent retrieval path (seed contract), for the route, in-process callers and benchmarks. */
  retrieval: RetrievalService;
  /** The HTTP proxy (`/v1/proxy/{service}/…`): forwards an agent's call with the credential injected. */
  proxy: ProxyService;
  /** The OAuth provider catalog shipped with the package (validated when first loaded). */
  oauthProviders: ProviderCatalog;
  /** The vault's own MCP server (`/mcp`): list_credentials, get_credential, call_api. */
  vaultMcp: VaultMcp;
  /** Policies: documents, versions and attachments (admin REST and CLI). */
  policies: PolicyService;
  /** The policies side of the decision point, and the dry run (src/policy/policy-enforcement.ts). */
  policyEnforcement: PolicyEnforcement;
  /** `policy test`: a request's decision rule by rule, counting nothing. */
  policyDryRun: PolicyDryRun;
  /** Live approvals, read only, that the approval rule asks. */
  policyApprovals: ApprovalsPort;
  /** Outbound events (docs/events.md): written to the outbox, delivered by the `event delivery` worker. */
  events: EventPublisher;
  /** Rate-limit and usage-cap counters, exact across replicas (src/policy/store-counters.ts). */
  policyCounters: StoreCounters;
  /** `policy usage` and its audited admin reset (src/policy/policy-usage.ts). */
  policyUsage: PolicyUsageService;
  /** IP to country for geo rules: `TOKENVAULT_GEOIP_DATABASE`, else the bundled database (opened on first use). */
  countries: CountryLookup;
  /** OAuth apps (client id, encrypted secret, endpoints); `resolve` finds a credential's app for refresh. */
  oauthApps: OAuthAppService & { resolve: ResolveOAuthApp };
  /** The vault's public base URL (`TOKENVAULT_PUBLIC_URL`, else the audience): links and redirect URIs. */
  publicUrl: string;
  /** Connect sessions: consent links, the provider callback, device flows. */
  connect: ConnectService;
  /** MCP proxies and their keys, admin side (src/mcp-proxy/). */
  mcpProxies: ProxyAdminService;
  /** The endpoint `/mcp/{proxy}`: agent sessions through MCP proxies (src/mcp-proxy/). */
  mcpEndpoint: McpProxyService;
  /** Pinned tool definitions of the MCP proxies. */
  mcpToolPins: ToolPins;
  /** OAuth token refresh: the refresher, its scheduler (one of `workers`), `credential refresh`. */
  oauthRefresh: OAuthRefresh;
  /** Human approvals: parking, deciding, expiring, and the policy evaluator's port (docs/approvals.md). */
  approvals: ApprovalService;
  /** Web Push and ntfy notifications of new approvals, and their signed one-time links. */
  approvalNotifier: ApprovalNotifier;
  approvalLinks: ApprovalLinks;
  /** Browsers subscribed to Web Push on the approval page. */
  approvalPush: PushSubscriptions;
  /** The VAPID public key browsers subscribe with (derived, see approval-notifier.ts). */
  vapidPublicKey: string;
}

export interface ServicesDeps {
  config: Config;
  store: Store;
  /** The audit log's writer (an AuditRecorder), started by the caller: every service records through it. */
  audit: AuditWriter;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Re-wrap job tuning, mostly for tests. */
  keyJob?: { leaseMs?: number; batchSize?: number; pollMs?: number } | undefined;
  /** OAuth refresh's collaborators (the OAuth app resolver, the events publisher) and test tuning. */
  oauthRefresh?: OAuthRefreshWiring | undefined;
}

/**
 * Builds the vault's services over an open store and a started audit writer, with what `/readyz` checks
 * and the background workers to start once everything is built. A new capability is one more entry
 * here (its service, and a worker if it runs in the background) plus its route modules in one of
 * `buildServer`'s lists (admin or agent).
 */
export const createServices = async ({
  config,
  store,
  audit,
  clock,
  logger,
  metrics,
  keyJob,
  oauthRefresh: oauthRefreshWiring,
}: ServicesDeps): Promise<{
  services: VaultServices;
  readiness: ReadinessCheck[];
  workers: Component[];
  keyMode: Awaited<ReturnType<typeof setupKeys>>['mode'];
}> => {
  const { db } = store;
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
    ...keyJob,
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
  // The audit writer started before the key providers: from here on every event is keyed.
  const chainKey = await loadAuditChainKey({ store, dataKeys, clock, logger });
  audit.useChainKey(chainKey);
  const checkpointKey = deriveCheckpointKey(chainKey);
  const checkpointWriter = createCheckpointWriter({
    db,
    key: checkpointKey,
    clock,
    everyEvents: config.auditCheckpointEvents,
    everySeconds: config.auditCheckpointSeconds,
    file: config.auditCheckpointFile,
    logger,
  });
  const credentials = createCredentialService({
    store,
    access,
    dataKeys,
    clock,
    audit,
    secretCache: { maxEntries: config.secretCacheMaxEntries, maxAgeMs: config.secretCacheMaxAgeMs },
  });
  const vaultAudience = config.audience ?? defaultAudience(config);
  // Every fetch on someone else's say-so goes through one guard (src/net/outbound-guard.ts).
  const outbound = createOutboundGuard({ allow: config.outboundAllow });
  const remoteKeys = createRemoteKeySets({
    clock,
    fetch: outbound.fetch as typeof fetch,
    jwksHosts: config.jwksHosts,
  });

  const oauthProviders = shippedProviderCatalog();
  const publicUrl = (config.publicUrl ?? vaultAudience).replace(/\/+$/, '');
  const oauthApps = createOAuthAppService({
    store,
    dataKeys,
    clock,
    audit,
    catalog: oauthProviders,
    discover: (issuer) =>
      discoverIssuer(issuer, { fetch: outbound.fetch as typeof fetch, allowHttp: config.oauthAllowHttp }),
    discoverMcp: (mcpUrl, client) =>
      discoverMcpServer(mcpUrl, {
        fetch: outbound.fetch as typeof fetch,
        allowHttp: config.oauthAllowHttp,
        clientName: 'Token Vault',
        ...client,
      }),
    publicUrl,
    clientName: 'Token Vault',
    allowHttp: config.oauthAllowHttp,
  });

  const grants = createGrantService({ db, clock, audit });
  const connect = createConnectService({
    store,
    clock,
    audit,
    apps: oauthApps,
    dataKeys,
    credentials,
    grants,
    publicUrl,
    fetch: outbound.fetch as typeof fetch,
    allowHttp: config.oauthAllowHttp,
    // Built below, over the same apps; called only once a person connects, long after start.
    onConnected: (token) => oauthRefresh.connected(token),
    logger,
  });
  // An agent asking for a provider its user has not connected gets a link to show them (docs/oauth.md).
  const connectFor = async (request: Parameters<ConnectService['linkForAgent']>[0]) =>
    connect.linkForAgent(request);

  // Exact across replicas: one transaction per request's counters (src/policy/store-counters.ts).
  const policyCounters = createStoreCounters({ store });
  // Approvals: links and VAPID keys derived from the audit chain key, so every replica shares them.
  const approvalLinks = createApprovalLinks({
    key: deriveKey(chainKey.hmacKey, 'approval links v1'),
    baseUrl: publicUrl,
  });
  const vapid = deriveVapidKeys(
    chainKey.hmacKey,
    config.approvalPushSubject ?? 'mailto:tokenvault@localhost',
  );
  const approvalNotifier = createApprovalNotifier({
    db,
    audit,
    fetch: outbound.fetch,
    links: approvalLinks,
    vapid,
    ntfy: config.approvalNtfyUrl
      ? { url: config.approvalNtfyUrl, token: config.approvalNtfyToken }
      : undefined,
    pageUrl: `${publicUrl}/approvals`,
    logger,
  });
  const events = createEventPublisher({ db, clock, enabled: config.eventsWebhookUrl !== undefined });
  const approvals = createApprovalService({
    db,
    clock,
    audit,
    events,
    linksFor: (approval) => approvalNotifier.linksFor(approval),
    onRequested: (approval) => approvalNotifier.start(approval),
  });
  const approvalSweep = createIntervalWorker(() => approvals.expireDue(), 2000, logger);

  const policyApprovals: ApprovalsPort = approvals.port;
  const policyEnforcement = createPolicyEnforcement({
    store,
    access,
    counters: policyCounters,
    approvals: policyApprovals,
  });
  const policiesFor = policyEnforcement.policiesFor;

  const mcpToolPins = createToolPins({ db, clock, audit });
  const resolveOAuthApp = createOAuthAppResolver(oauthApps);
  // Refreshes every OAuth credential connected through an app, publishing needs_reauth/reauthorized.
  const oauthRefresh = createOAuthRefresh({
    config,
    store,
    credentials,
    audit,
    clock,
    logger,
    fetch: outbound.fetch as typeof fetch,
    wiring: {
      resolveApp: resolveOAuthApp,
      events,
      ...(config.oauthAllowHttp ? { tokenClient: { allowHttp: true } } : {}),
      ...oauthRefreshWiring,
    },
  });
  const domain: Omit<VaultServices, 'vaultMcp'> = {
    credentials,
    adminTokens: createAdminTokenService({ db, clock, audit }),
    keys: createKeyManagementService({ db, providers, clock, audit, runner, enablePlatform }),
    runner,
    agents: createAgentService({ db, clock, audit }),
    issuers: createIssuerService({ db, clock, audit, remoteKeys, vaultAudience }),
    agentAuthenticator: createAgentAuthenticator({ store, access, clock, vaultAudience, remoteKeys }),
    access,
    audit,
    auditLog: createAuditService({
      db,
      dialect: store.dialect,
      sqlitePath: store.dialect === 'sqlite' ? store.location : undefined,
      chainKey,
    }),
    auditChainKey: chainKey,
    auditCheckpoints: { key: checkpointKey, writer: checkpointWriter },
    grants,
    retrieval: createRetrievalService({
      store,
      access,
      clock,
      credentials,
      audit,
      policiesFor,
      connectFor,
      freshen: oauthRefresh.freshen,
      approvals,
    }),
    proxy: createProxyService({
      store,
      access,
      clock,
      credentials,
      audit,
      outbound,
      policiesFor,
      connectFor,
      freshen: oauthRefresh.freshen,
      onUnauthorized: oauthRefresh.onUnauthorized,
      approvals,
      // A connected credential with no base URL of its own calls its provider's API (the catalog's).
      apiBase: catalogApiBase(oauthProviders, async ({ namespace, credentialId }) => {
        const linked = await resolveOAuthApp(namespace, credentialId);
        return linked && { provider: linked.provider.name, parameters: linked.app.settings?.parameters };
      }),
      timeoutMs: config.proxyTimeoutMs,
    }),
    oauthProviders,
    oauthApps: Object.assign(oauthApps, { resolve: resolveOAuthApp }),
    oauthRefresh,
    publicUrl,
    connect,
    policies: createPolicyService({ db, clock, audit }),
    policyEnforcement,
    policyDryRun: createPolicyDryRun({ store, access, clock, enforcement: policyEnforcement }),
    policyCounters,
    policyUsage: createPolicyUsage({ db, clock, audit, counters: policyCounters }),
    policyApprovals,
    events,
    countries: countryLookupFor(config),
    mcpProxies: createProxyAdminService({ db, clock, audit }),
    mcpEndpoint: createMcpProxyService({
      store,
      access,
      clock,
      credentials,
      audit,
      policiesFor,
      freshen: oauthRefresh.freshen,
      approvals,
      fetch: outbound.fetch,
      reauthorize: oauthRefresh.reauthorize,
      idleMs: config.mcpSessionIdleSeconds * 1000,
      pins: mcpToolPins,
      log: (message, details) => logger.warn(details, message),
    }),
    mcpToolPins,
    approvals,
    approvalNotifier,
    approvalLinks,
    approvalPush: createPushSubscriptions({ db, clock, audit }),
    vapidPublicKey: vapid.publicKey,
  };

  // Over the services above: the MCP tools take the very paths REST takes (the decision, the audit).
  const services: VaultServices = {
    ...domain,
    vaultMcp: createVaultMcp({
      grants: domain.grants,
      retrieval: domain.retrieval,
      proxy: domain.proxy,
      logger,
      publicUrl,
      maxRequestBodySize: config.bodyLimit,
    }),
  };

  /** What `/readyz` asks: each must answer for the vault to take traffic. */
  const readiness: ReadinessCheck[] = [
    { name: 'database', check: () => pingDatabase(db) },
    {
      name: 'key_provider',
      check: async () => providerFor(providers, (await vaultStateRepo.getMode(db)) ?? 'platform').check(),
    },
  ];

  /** Background work, started once the vault is built and stopped before the HTTP app drains. */
  const workers: Component[] = [
    { name: 'key-job runner', start: () => runner.start(), stop: () => runner.stop() },
    { name: 'audit checkpoints', start: () => checkpointWriter.start(), stop: () => checkpointWriter.stop() },
    { name: 'device-flow polls', start: async () => connect.startPolling(), stop: () => connect.stop() },
    {
      name: 'mcp proxy sessions',
      start: () => services.mcpEndpoint.start(),
      stop: () => services.mcpEndpoint.stop(),
    },
    oauthRefresh.worker(),
    {
      name: 'approval expiry',
      start: () => approvalSweep.start(),
      stop: async () => {
        await approvalSweep.stop();
        await approvalNotifier.drain();
      },
    },
  ];
  workers.push(counterPruning(services.policyCounters, clock, logger));
  if (config.eventsWebhookUrl !== undefined && config.eventsWebhookSecret !== undefined) {
    // A receiver at an address the guard refuses is a configuration mistake: said at start, not later.
    outbound.checkUrl(config.eventsWebhookUrl);
    const delivery = createEventDelivery({
      store,
      clock,
      logger,
      audit,
      fetch: outbound.fetch,
      url: config.eventsWebhookUrl,
      secret: config.eventsWebhookSecret,
      maxAgeMs: config.eventsMaxAgeSeconds * 1000,
      timeoutMs: config.eventsTimeoutMs,
      pollMs: config.eventsPollMs,
    });
    workers.push({ name: 'event delivery', start: () => delivery.start(), stop: () => delivery.stop() });
  }

  return { services, readiness, workers, keyMode: mode };
};

/** Every ten minutes, drops counter buckets whose window ended over an hour ago (store-counters.ts). */
const counterPruning = (counters: Pick<StoreCounters, 'prune'>, clock: Clock, logger: Logger): Component => {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const prune = () => {
    running ??= counters
      .prune(clock.now())
      .catch((error: unknown) => logger.warn({ err: error }, 'counter pruning failed; it runs again later'))
      .finally(() => {
        running = undefined;
      });
  };
  return {
    name: 'counter pruning',
    start: () => {
      timer = setInterval(prune, 600_000);
      timer.unref();
    },
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
};

/** The operator's MMDB file is read at start, so a wrong path or a broken file stops the vault there. */
const countryLookupFor = (config: Pick<Config, 'geoipDatabase'>): CountryLookup => {
  if (config.geoipDatabase === undefined) return lazyCountryLookup(() => createCountryLookup());
  try {
    return createCountryLookup(config.geoipDatabase);
  } catch (error) {
    throw new Error(
      `TOKENVAULT_GEOIP_DATABASE ${config.geoipDatabase} is not a readable MMDB file: ${(error as Error).message}`,
      { cause: error },
    );
  }
};
