import { allowedUseOf } from '../helpers/access.js';
import { createAgentAuthenticator } from '../../src/agents/agent-authenticator.js';
import { createAuditWriter } from '../../src/audit/audit-writer.js';
import { createCredentialService, type SecretCacheLimits } from '../../src/credentials/credential-service.js';
import { loadRootKey } from '../../src/crypto/master-key.js';
import { createPlatformKeyProvider } from '../../src/crypto/platform-key-provider.js';
import { prepareRetrievalGrants } from '../../src/grants/grant-repo.js';
import { createDataKeyService } from '../../src/keys/data-key-service.js';
import type { Clock } from '../../src/lib/clock.js';
import type { Store } from '../../src/store/database.js';
import { createGenerationCache } from '../../src/store/generation-cache.js';

/** What one lookup answered: from memory (hit) or loaded. */
export interface LookupEvent {
  name: string;
  hit: boolean;
}

/**
 * Another replica on the same database, as far as the agent path's caches go: its own access cache,
 * authenticator, grant lookup and credential service over its own connection, with every lookup
 * recorded by name. Built from the vault's own modules; only the HTTP layer is left out.
 */
export const openReplica = async (
  store: Store,
  { dataDir, clock, secretCache }: { dataDir: string; clock: Clock; secretCache?: SecretCacheLimits },
) => {
  const platform = createPlatformKeyProvider({
    rootKey: loadRootKey({ dataDir, create: false }).key,
    db: store.db,
    clock,
  });
  await platform.initialize();
  // Every prepared read the agent path makes (the counter, the changes, keys, grants, credentials).
  let reads = 0;
  const counted: Pick<Store, 'db' | 'prepare'> = {
    db: store.db,
    prepare: (build) => {
      const query = store.prepare(build);
      return {
        all: (params) => ((reads += 1), query.all(params)),
        first: (params) => ((reads += 1), query.first(params)),
      };
    },
  };
  const lookups: LookupEvent[] = [];
  const access = createGenerationCache(counted, { onLookup: (hit, name) => lookups.push({ name, hit }) });
  const audit = createAuditWriter({ store, clock, logger: { error: () => {} } });
  const credentials = createCredentialService({
    store: counted,
    access,
    dataKeys: createDataKeyService({ db: store.db, providers: { platform }, clock }),
    clock,
    audit,
    secretCache,
  });
  const grantsFor = prepareRetrievalGrants(counted, access);
  const authenticator = createAgentAuthenticator({
    store: counted,
    access,
    clock,
    vaultAudience: 'http://replica',
  });

  return {
    access,
    credentials,
    /** Database reads made through prepared queries since the last call. */
    takeReads(): number {
      const n = reads;
      reads = 0;
      return n;
    },
    /** Lookups recorded since the last call, and forgets them. */
    takeLookups(): LookupEvent[] {
      return lookups.splice(0);
    },
    /**
     * The agent path's reads, as a retrieval makes them: one view, the key, the grants for the name,
     * then the secret of the granted credential. Returns the secret's fields, or the first refusal's
     * code.
     */
    async retrieve(apiKey: string, service: string): Promise<Record<string, string> | string> {
      const view = await access.view();
      let principal;
      try {
        principal = await authenticator.authenticate({ token: apiKey, clientIp: '127.0.0.1', view });
      } catch (error) {
        return (error as { code: string }).code;
      }
      const { grants, credential } = await grantsFor(view, {
        namespace: principal.namespace,
        agentId: principal.agentId,
        name: service,
      });
      const live = grants.find((g) => g.revokedAt === null);
      if (!credential || !live) return 'credential_not_granted';
      if (credential.status !== 'active') return `credential_${credential.status}`;
      try {
        return (
          await credentials.readCurrentSecret(allowedUseOf(principal.namespace, live.credentialId), view)
        ).secret;
      } catch (error) {
        return (error as { code: string }).code;
      }
    },
    close: () => audit.close(),
  };
};

export type Replica = Awaited<ReturnType<typeof openReplica>>;

/** The lookups of `events` named `name`, as hit/miss words, in order. */
export const outcomes = (events: LookupEvent[], name: string): string[] =>
  events.filter((e) => e.name === name).map((e) => (e.hit ? 'hit' : 'miss'));
