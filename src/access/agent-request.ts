import type { AgentPrincipal } from '../agents/agent-types.js';
import { retryAfterSeconds } from '../approvals/approval-rules.js';
import type { ApprovalService } from '../approvals/approval-service.js';
import { auditedUse, type AuditSpec } from '../audit/audit-context.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import type { CredentialService } from '../credentials/credential-service.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import { parseScopeQuery } from '../grants/grant-rules.js';
import { prepareRetrievalGrants } from '../grants/grant-repo.js';
import type { Grant } from '../grants/grant-types.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/database.js';
import type { GenerationCache, GenerationView } from '../store/generation-cache.js';
import type {
  AccessClient,
  AccessContext,
  AllowedDecision,
  Channel,
  CredentialState,
  PendingApproval,
  PolicyCheck,
  ProxyOnPath,
} from './access-types.js';
import { decide } from './decide.js';

/**
 * An agent's use of a credential, whatever the channel (retrieval now; the HTTP proxy, the MCP proxy
 * and the vault's MCP tools next), as a list of named steps:
 *
 *   authenticate (the transport, before this) → the agent in the path → what is asked for → the
 *   access view → decide → read the secret → act (reveal, forward) → record → answer
 *
 * Every outcome is exactly one audit event of the path's action, recorded durably before the answer
 * (`auditedUse`); a refusal at any step is recorded with its code before it is thrown, and when the
 * record cannot be written no secret leaves (audit_unavailable).
 */

export interface AgentRequest {
  /** The authenticated agent. */
  principal: AgentPrincipal;
  /** `{agentId}` from the path: must be the principal's id or name. */
  agentRef: string;
  /** The credential name asked for. */
  service: string;
  /** `?scope=` as given: `a,b`, `a b`, or repeated. */
  scope: string | readonly string[] | undefined;
  channel: Channel;
  /** The audit event every outcome is recorded as (`credential.retrieve`, …). */
  action: AuditAction;
  client: AccessClient;
  requestId: string;
  proxy?: ProxyOnPath | undefined;
  endUser?: string | undefined;
  /** The consent flow to start when the end user has not connected (`?flow=`): the app's default if absent. */
  connectFlow?: 'browser' | 'device' | undefined;
  attributes?: Readonly<Record<string, string>> | undefined;
  /** Facts every event of the request carries from the start (`via: 'mcp'`, the MCP tool called). */
  details?: AuditDetails | undefined;
}

/** The secret a decision allowed, as the act step gets it. */
export interface CredentialUse {
  allowed: AllowedDecision;
  read: Awaited<ReturnType<CredentialService['readCurrentSecret']>>;
}

/** What the act step returns: the answer, and facts for the allow event. */
export interface ActResult<T> {
  result: T;
  details?: AuditDetails | undefined;
}

export interface AgentRequestDeps {
  store: Pick<Store, 'db' | 'prepare'>;
  /** Caches the grant lookup for one access generation. */
  access: GenerationCache;
  clock: Clock;
  credentials: Pick<CredentialService, 'readCurrentSecret'>;
  audit: Pick<AuditRecorder, 'record'>;
  /**
   * The policy rules attached to anything on the path, evaluated (counters consumed) once the grant
   * has allowed the use (src/policy/policy-enforcement.ts). Required, so a new channel built on this
   * path cannot leave its policies out (`VaultServices.policyEnforcement.policiesFor`).
   */
  policiesFor: PoliciesFor;
  /**
   * For a request naming an end user who holds no connection of that name: a connect link to show
   * them, when the operator lets agents connect that provider (oauth/connect-service.ts); undefined
   * otherwise, and the request is refused as it always was.
   */
  connectFor?: (request: {
    namespace: string;
    agentId: string;
    service: string;
    user: string;
    reveal: boolean;
    flow?: 'browser' | 'device' | undefined;
  }) => Promise<
    | {
        url: string;
        expiresAt: string;
        device?: {
          userCode: string;
          verificationUri: string;
          verificationUriComplete?: string | undefined;
          interval: number;
        };
      }
    | undefined
  >;
  /**
   * Step after reading the secret: an OAuth token expired or about to expire is refreshed first
   * (src/oauth/refresh/token-freshness.ts). Absent: the secret is used as read.
   */
  freshen?:
    | ((use: CredentialUse, channel: Channel, requestedScopes: readonly string[]) => Promise<CredentialUse>)
    | undefined;
  /** Parks a request an `approval` rule holds, and spends one-request approvals (src/approvals/). */
  approvals?: ApprovalParking | undefined;
}

/** What the request path needs of the approvals service. */
export type ApprovalParking = Pick<ApprovalService, 'park' | 'use'>;

/** The attribute a retry names its approval by (`?approval=`), as the policies read it. */
export const approvalAttribute = 'approval_id';

/** What the path asks for the policies of a request the grant allows, as of the request's view. */
export type PoliciesFor = (
  view: GenerationView,
  context: Omit<AccessContext, 'policies'>,
  grant: Grant,
) => Promise<readonly PolicyCheck[]>;

/**
 * What every event of the request starts with: the agent and the credential as named
 * (audit-subjects.ts; the credential's id joins once known), and how the agent authenticated.
 */
const startFacts = (principal: AgentPrincipal, service: string): AuditDetails => ({
  agent_id: principal.agentId,
  agent_name: principal.agentName,
  credential_name: service.slice(0, 200),
  auth_method: principal.method,
  auth_ref: principal.credentialRef,
});

/** Step: the path names the caller (DESIGN invariant 5). */
export const assertAgentInPath = (request: AgentRequest, facts: AuditDetails): void => {
  const { principal, agentRef } = request;
  if (agentRef !== principal.agentId && agentRef !== principal.agentName) {
    facts.path_agent = agentRef.slice(0, 200);
    throw new VaultError('agent_mismatch');
  }
};

/** Step: what is asked for. */
export const requestedScopes = (request: AgentRequest, facts: AuditDetails): string[] => {
  const scopes = parseScopeQuery(request.scope);
  facts.requested_scopes = scopes;
  return scopes;
};

export const createAgentRequests = ({
  store,
  access,
  clock,
  credentials,
  audit,
  policiesFor,
  connectFor,
  freshen,
  approvals,
}: AgentRequestDeps) => {
  const grantsFor = prepareRetrievalGrants(store, access);

  /**
   * Step: the access view, taken after authentication has finished (authentication may wait seconds
   * on an agent's remote key set). A revocation completed before now holds (generation-cache.ts).
   */
  const takeAccessView = (): Promise<GenerationView> => access.view();

  /** Step: the decision, from the grant and credential rows as of `view`. Throws the refusal. */
  const decideUse = async (
    view: GenerationView,
    request: AgentRequest,
    scopes: readonly string[],
    facts: AuditDetails,
  ): Promise<AllowedDecision> => {
    const namespace = request.principal.namespace;
    const { grants, credential, ambiguous } = await grantsFor(view, {
      namespace,
      agentId: request.principal.agentId,
      name: request.service,
      endUser: request.endUser,
    });
    if (request.endUser !== undefined) facts.end_user = request.endUser.slice(0, 200);
    if (ambiguous) throw new VaultError('end_user_required');
    if (!credential && request.endUser !== undefined && connectFor) {
      const link = await connectFor({
        namespace,
        agentId: request.principal.agentId,
        service: request.service,
        user: request.endUser,
        reveal: request.channel === 'reveal',
        flow: request.connectFlow,
      });
      if (link) {
        facts.connect_url_issued = true;
        facts.connect_flow = link.device ? 'device' : 'browser';
        const who = `User "${request.endUser.slice(0, 64)}" has not connected "${request.service.slice(0, 64)}" yet`;
        throw new VaultError(
          'authorization_required',
          link.device
            ? `${who}: show them user_code and verification_uri (or verification_uri_complete); once they approve, ask again.`
            : `${who}: show them connect_url; once they finish, ask again.`,
          {
            details: {
              action: {
                connect_url: link.url,
                expires_at: link.expiresAt,
                ...(link.device
                  ? {
                      flow: 'device',
                      user_code: link.device.userCode,
                      verification_uri: link.device.verificationUri,
                      ...(link.device.verificationUriComplete
                        ? { verification_uri_complete: link.device.verificationUriComplete }
                        : {}),
                      interval: link.device.interval,
                    }
                  : { flow: 'browser' }),
              },
            },
          },
        );
      }
    }
    const context = {
      namespace,
      agent: request.principal,
      service: request.service,
      credential,
      grants,
      requestedScopes: scopes,
      channel: request.channel,
      proxy: request.proxy,
      endUser: request.endUser,
      client: request.client,
      now: clock.now(),
      attributes: request.attributes ?? {},
    };
    // The grant, the credential and the channel first; the policies only for a use they allow, so a
    // refused request counts against no rate limit or cap. Both decisions are decide()'s.
    let decision = decide({ ...context, policies: [] });
    if (decision.outcome === 'allow') {
      const policies = await policiesFor(view, context, decision.grant);
      if (policies.length > 0) decision = decide({ ...context, policies });
    }
    if (decision.grant) facts.grant_id = decision.grant.id;
    if (credential) facts.credential_id = credential.id;
    switch (decision.outcome) {
      case 'allow':
        await spendApprovals(decision, facts);
        return decision;
      case 'deny':
        if (decision.rule) {
          facts.policy = decision.rule.policy;
          facts.policy_rule = decision.rule.rule;
        }
        throw new VaultError(decision.code, decision.message, {
          ...(decision.retryAfter === undefined ? {} : { details: { retryAfter: decision.retryAfter } }),
        });
      case 'pending':
        throw await park(decision.approval, request, credential!, facts);
    }
  };

  /**
   * Step (approval rules): the request waits for a person. The approval is made (or the pending one
   * of the same agent × credential × rule reused) and the agent gets `approval_pending` (202) with
   * the approval's id, when to ask again and where to wait; a retry naming a decided approval gets
   * its refusal (`approval_denied`, `approval_expired`, `approval_used`) from `park`.
   */
  const park = async (
    pending: PendingApproval,
    request: AgentRequest,
    credential: CredentialState,
    facts: AuditDetails,
  ): Promise<VaultError> => {
    facts.policy = pending.policy;
    facts.policy_rule = pending.rule;
    let answer = { id: pending.approvalId, retryAfter: pending.retryAfter, expiresAt: null as string | null };
    if (pending.ask) {
      if (!approvals)
        throw new VaultError('internal_error', undefined, { cause: new Error('no approvals service') });
      const { approval } = await approvals.park(
        {
          namespace: request.principal.namespace,
          agent: { id: request.principal.agentId, name: request.principal.agentName },
          credential: { id: credential.id, name: request.service },
          endUser: request.endUser,
          policy: { id: pending.ask.policyId, name: pending.policy },
          ruleIndex: pending.ask.ruleIndex,
          approvers: pending.ask.approvers,
          timeoutSeconds: pending.ask.timeoutSeconds,
          coversSeconds: pending.ask.coversSeconds,
          approvalId: request.attributes?.[approvalAttribute],
          requestId: request.requestId,
          clientIp: request.client.ip,
        },
        specOf(request, facts).ctx,
      );
      answer = {
        id: approval.id,
        retryAfter: retryAfterSeconds(approval, clock.now()),
        expiresAt: approval.expiresAt,
      };
    }
    facts.approval_id = answer.id;
    const agent = encodeURIComponent(request.agentRef);
    return new VaultError(
      'approval_pending',
      `Policy ${pending.policy} (${pending.rule}) needs a person's approval; approval ${answer.id} is pending. ` +
        `Wait on poll_url, then repeat this request with ?approval=${answer.id}.`,
      {
        details: {
          approval: {
            id: answer.id,
            state: 'pending',
            expires_at: answer.expiresAt,
            retry_after: answer.retryAfter,
            poll_url: `/v1/agents/${agent}/approvals/${encodeURIComponent(answer.id)}?wait=30`,
          },
        },
      },
    );
  };

  /** Step: spend the one-request approvals the allow relied on, each exactly once across replicas. */
  const spendApprovals = async (allowed: AllowedDecision, facts: AuditDetails): Promise<void> => {
    for (const used of allowed.approvals ?? []) {
      facts.approval_id = used.id;
      if (!used.oneRequest) continue;
      if (!approvals || !(await approvals.use(used.id))) {
        throw new VaultError('approval_used', `Approval ${used.id} was already used by another request.`);
      }
    }
  };

  /**
   * Step: the secret, only now, by the granted credential's id (one deleted, perhaps re-created under
   * the same name, since the grant was read is not the granted credential). A failure here (key
   * provider down, tampered ciphertext) is a refusal like any other.
   */
  const readSecret = async (
    allowed: AllowedDecision,
    view: GenerationView,
    facts: AuditDetails,
    scopes: readonly string[] = [],
  ): Promise<CredentialUse> => {
    try {
      const read = await credentials.readCurrentSecret(allowed, view);
      const use = freshen ? await freshen({ allowed, read }, allowed.channel, scopes) : { allowed, read };
      facts.version = use.read.version;
      return use;
    } catch (error) {
      if (isVaultError(error) && error.code === 'credential_not_found') {
        throw new VaultError('credential_not_granted');
      }
      throw error;
    }
  };

  /** The event every outcome of the request is filed as; `facts` grow as the steps learn more. */
  const specOf = (request: AgentRequest, facts: AuditDetails): AuditSpec => ({
    ctx: {
      actor: { type: 'agent', id: request.principal.agentId },
      client: { ip: request.client.ip, userAgent: request.client.userAgent },
      requestId: request.requestId,
    },
    namespace: request.principal.namespace,
    action: request.action,
    target: { type: 'credential', id: request.service.slice(0, 200) },
    details: facts,
  });

  return {
    steps: { assertAgentInPath, requestedScopes, takeAccessView, decide: decideUse, readSecret },

    /**
     * Runs the whole path for an authenticated agent; `act` does what the channel does with the
     * secret (reveal it, inject it upstream) and its result is the answer once the allow is recorded.
     * `facts` are the event's details so far: what `act` adds there is recorded with a refusal too.
     */
    use<T>(
      request: AgentRequest,
      act: (use: CredentialUse, facts: AuditDetails) => Promise<ActResult<T>>,
    ): Promise<T> {
      const facts = { ...startFacts(request.principal, request.service), ...request.details };
      return auditedUse(audit, specOf(request, facts), async (record) => {
        assertAgentInPath(request, facts);
        const scopes = requestedScopes(request, facts);
        const view = await takeAccessView();
        const allowed = await decideUse(view, request, scopes, facts);
        const use = await readSecret(allowed, view, facts, scopes);
        const { result, details } = await act(use, facts);
        await record({ details });
        return result;
      });
    },
  };
};

export type AgentRequests = ReturnType<typeof createAgentRequests>;
