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
import { type AuditService, createAuditService } from './audit/audit-service.js';
import type { AuditWriter } from './audit/audit-writer.js';
import { type Config, defaultAudience } from './config/config-schema.js';
import { type CredentialService, createCredentialService } from './credentials/credential-service.js';
import { createGrantService, type GrantService } from './grants/grant-service.js';
import { createRetrievalService, type RetrievalService } from './grants/retrieval-service.js';
import { type ProviderCatalog, shippedProviderCatalog } from './oauth/provider-catalog.js';
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
import { type ApprovalsPort, type CountersPort, createMemoryCounters } from './policy/index.js';
import { createPolicyEnforcement, type PolicyEnforcement } from './policy/policy-enforcement.js';
import { createPolicyService, type PolicyService } from './policy/policy-service.js';
import { createPolicyDryRun, type PolicyDryRun } from './policy/policy-dry-run.js';
import type { EventPublisher } from './events/event-types.js';
import { createEventPublisher } from './events/event-outbox.js';
import { createEventDelivery } from './events/event-delivery.js';

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
  /** Policies: documents, versions and attachments (admin REST and CLI). */
  policies: PolicyService;
  /** The policies side of the decision point, and the dry run (src/policy/policy-enforcement.ts). */
  policyEnforcement: PolicyEnforcement;
  /** `policy test`: a request's decision rule by rule, counting nothing. */
  policyDryRun: PolicyDryRun;
  /** Rate-limit and usage-cap counters the policies consume. */
  policyCounters: CountersPort;
  /** Live approvals, read only, that the approval rule asks. */
  policyApprovals: ApprovalsPort;
  /** Human approvals: parking, deciding, expiring, and the policy evaluator's port (docs/approvals.md). */
  approvals: ApprovalService;
  /** Web Push and ntfy notifications of new approvals, and their signed one-time links. */
  approvalNotifier: ApprovalNotifier;
  approvalLinks: ApprovalLinks;
  /** Browsers subscribed to Web Push on the approval page. */
  approvalPush: PushSubscriptions;
  /** The VAPID public key browsers subscribe with (derived, see approval-notifier.ts). */
  vapidPublicKey: string;
  /** Outbound events (docs/events.md): written to the outbox, delivered by the `event delivery` worker. */
  events: EventPublisher;
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

  // Approvals: links and VAPID keys derived from the audit chain key, so every replica shares them.
  const approvalLinks = createApprovalLinks({
    key: deriveKey(chainKey.hmacKey, 'approval links v1'),
    baseUrl: vaultAudience,
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
    pageUrl: `${vaultAudience.replace(/\/$/, '')}/approvals`,
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

  // Counters are per process for now; the store-backed, exact-across-replicas ones replace this line.
  const policyCounters: CountersPort = createMemoryCounters();
  const policyApprovals: ApprovalsPort = approvals.port;
  const policyEnforcement = createPolicyEnforcement({
    store,
    access,
    counters: policyCounters,
    approvals: policyApprovals,
  });
  const policiesFor = policyEnforcement.policiesFor;

  const services: VaultServices = {
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
    grants: createGrantService({ db, clock, audit }),
    retrieval: createRetrievalService({ store, access, clock, credentials, audit, policiesFor, approvals }),
    proxy: createProxyService({ store, access, clock, credentials, audit, outbound, policiesFor, approvals }),
    oauthProviders: shippedProviderCatalog(),
    policies: createPolicyService({ db, clock, audit }),
    policyEnforcement,
    policyDryRun: createPolicyDryRun({ store, access, clock, enforcement: policyEnforcement }),
    policyCounters,
    policyApprovals,
    approvals,
    approvalNotifier,
    approvalLinks,
    approvalPush: createPushSubscriptions({ db, clock, audit }),
    vapidPublicKey: vapid.publicKey,
    events,
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
    {
      name: 'approval expiry',
      start: () => approvalSweep.start(),
      stop: async () => {
        await approvalSweep.stop();
        await approvalNotifier.drain();
      },
    },
  ];
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
