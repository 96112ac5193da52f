import type { AgentPrincipal } from '../agents/agent-types.js';
import type { AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import type { CredentialService } from '../credentials/credential-service.js';
import type { ErrorCode } from '../errors/error-registry.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/database.js';
import type { GenerationCache, GenerationView } from '../store/generation-cache.js';
import { type AuditContext, auditEvent, recordDurably } from '../audit/audit-context.js';
import { decideRetrieval, parseScopeQuery } from './grant-policy.js';
import { prepareRetrievalGrants } from './grant-repo.js';
import { type RevealedToken, revealToken } from './token-response.js';

export interface RetrievalServiceDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  /** Caches the grant lookup for one access generation. */
  access: GenerationCache;
  clock: Clock;
  credentials: Pick<CredentialService, 'readCurrentSecret'>;
  audit: Pick<AuditRecorder, 'record'>;
}

export interface RetrievalRequest {
  /** The authenticated agent. */
  principal: AgentPrincipal;
  /** `{agentId}` from the path: must be the principal's id or name. */
  agentRef: string;
  /** `{service}` from the path: a credential name. */
  service: string;
  /** `?scope=` as given: `a,b`, `a b`, or repeated. */
  scope: string | readonly string[] | undefined;
  client: { ip: string | null; userAgent: string | null };
  requestId: string;
  /** The access generation the agent was authenticated at; one is taken when absent. */
  view?: GenerationView | undefined;
}

export interface RetrievedCredential extends RevealedToken {
  /** The earliest of the grant's and the credential's expiry; null when neither expires. */
  expiresAt: string | null;
  /** Granted ∩ requested (all granted scopes when none were requested). */
  scopes: string[];
}

/**
 * The agent retrieval path (seed contract): authorize against a live grant, decrypt, and record the
 * outcome durably before anything is returned. Every outcome, allowed or refused, is exactly one
 * `credential.retrieve` event; when that event cannot be written the request fails with
 * audit_unavailable and no secret leaves. Grant and credential rows come through the access
 * generation cache, decided at the generation the agent was authenticated at: a revocation committed
 * before the request began holds, on every replica (generation-cache.ts).
 */
export const createRetrievalService = ({
  store,
  access,
  clock,
  credentials,
  audit,
}: RetrievalServiceDeps) => {
  const grantsFor = prepareRetrievalGrants(store, access);
  return {
    async retrieve(request: RetrievalRequest): Promise<RetrievedCredential> {
      const { principal, service } = request;
      const namespace = principal.namespace;
      const ctx: AuditContext = {
        actor: { type: 'agent', id: principal.agentId },
        client: request.client,
        requestId: request.requestId,
      };
      const details: AuditDetails = {
        agent_name: principal.agentName,
        auth_method: principal.method,
        auth_ref: principal.credentialRef,
      };
      const record = (decision: 'allow' | 'deny', reason: string) =>
        recordDurably(
          audit,
          auditEvent(ctx, {
            namespace,
            action: 'credential.retrieve',
            target: { type: 'credential', id: service.slice(0, 200) },
            decision,
            reason,
            details,
          }),
        );
      /** Records the refusal, then throws it: the event is durable before the error is sent. */
      const refuse = async (code: ErrorCode, message?: string): Promise<never> => {
        await record('deny', code);
        throw new VaultError(code, message);
      };

      // 1. The path names the caller (DESIGN invariant 5).
      if (request.agentRef !== principal.agentId && request.agentRef !== principal.agentName) {
        details.path_agent = request.agentRef.slice(0, 200);
        return refuse('agent_mismatch');
      }

      // 2. What is asked for.
      let requested: string[];
      try {
        requested = parseScopeQuery(request.scope);
      } catch (error) {
        return refuse('invalid_request', (error as Error).message);
      }
      details.requested_scopes = requested;

      // 3. A live grant allows it, as of this request's access generation.
      const view = request.view ?? (await access.view());
      const { grants, credential } = await grantsFor(view, {
        namespace,
        agentId: principal.agentId,
        name: service,
      });
      const decision = decideRetrieval({ grants, credential, requestedScopes: requested, now: clock.now() });
      if (decision.grant) details.grant_id = decision.grant.id;
      if (!decision.allowed) return refuse(decision.code, decision.message);

      // 4. The secret, only now. A failure here (key provider down, tampered ciphertext) is a refusal too.
      // By the granted credential's id: one deleted (and perhaps re-created under the same name) since
      // the grant query is not the granted credential.
      let read: Awaited<ReturnType<typeof credentials.readCurrentSecret>>;
      try {
        read = await credentials.readCurrentSecret(namespace, decision.grant.credentialId, view);
      } catch (error) {
        if (isVaultError(error) && error.code === 'credential_not_found')
          return refuse('credential_not_granted');
        await record('deny', isVaultError(error) ? error.code : 'internal_error');
        throw error;
      }
      details.version = read.version;
      const revealed = revealToken(read.credential.type, read.secret, read.credential.injection);

      // 5. Durable record of the allow, then the answer.
      details.scopes = decision.scopes;
      details.expires_at = decision.expiresAt;
      await record('allow', 'ok');
      return { ...revealed, expiresAt: decision.expiresAt, scopes: decision.scopes };
    },
  };
};

export type RetrievalService = ReturnType<typeof createRetrievalService>;
