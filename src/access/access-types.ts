import type { AgentPrincipal } from '../agents/agent-types.js';
import type { ErrorCode } from '../errors/error-registry.js';
import type { Grant } from '../grants/grant-types.js';

/**
 * How the agent uses the credential: `reveal` returns the raw secret (the retrieval API, the vault's
 * MCP `get_credential`); `proxy` and `mcp` inject it on the way out and the agent never sees it.
 * Only `reveal` needs a grant that reveals.
 */
export type Channel = 'reveal' | 'proxy' | 'mcp';

/** What the decision needs to know about the credential (never its secret). */
export interface CredentialState {
  id: string;
  status: string;
  expiresAt: string | null;
}

/** The client as the vault sees it (the address after trusted-proxy handling). */
export interface AccessClient {
  ip: string | null;
  userAgent: string | null;
  /** The address's country when known (the geo rule of the policies issue fills it). */
  country?: string | null | undefined;
}

/** A proxy on the request's path: an MCP proxy and the proxy key the agent came in with. */
export interface ProxyOnPath {
  id: string;
  name: string;
  keyId: string | null;
}

/** The rule that decided, for the refusal's message and the audit event. */
export interface RuleRef {
  policy: string;
  rule: string;
}

/**
 * What an `approval` rule asks for, when the approval is still to be made: the decision point parks
 * the request with it (src/approvals/, docs/approvals.md) and answers `approval_pending`.
 */
export interface ApprovalAsk {
  /** The stored policy's id and the rule's index in it: one pending approval per agent × credential × rule. */
  policyId: string;
  ruleIndex: number;
  /** Admin token names that may decide. */
  approvers: readonly string[];
  timeoutSeconds: number;
  /** null: one request; else a time box of this many seconds from the approval. */
  coversSeconds: number | null;
}

/** An approval a rule asks for; the request waits on it (policies issue). */
export interface PendingApproval extends RuleRef {
  /** The approval already made for it, if the rule made one ('' when `ask` says what to make). */
  approvalId: string;
  /** Seconds after which the agent should ask again. */
  retryAfter: number;
  /** What to ask the approvers, when no approval is made yet (the decision point makes it). */
  ask?: ApprovalAsk | undefined;
}

/** An approval a passing rule relied on; a one-request approval is spent by the use it allows. */
export interface ApprovalUse {
  id: string;
  oneRequest: boolean;
}

export type PolicyVerdict =
  | { outcome: 'pass'; approval?: ApprovalUse | undefined }
  | {
      outcome: 'deny';
      code: ErrorCode;
      message?: string | undefined;
      /** When a counter refused: seconds until its window resets (`Retry-After`). */
      retryAfter?: number | undefined;
    }
  | { outcome: 'pending'; approval: PendingApproval };

/**
 * One rule of a policy attached to something on the request's path, evaluated after the grant has
 * allowed the use. Pure: the agent path (agent-request.ts) first decides the grant alone, then
 * evaluates the policies of the path once the grant allows (counters consumed there, all or nothing:
 * src/policy/policy-enforcement.ts), and hands the outcome in through the checks, so `decide()` stays
 * plain values in, plain values out.
 */
export interface PolicyCheck extends RuleRef {
  evaluate(context: AccessContext, grant: Grant): PolicyVerdict;
}

/** Everything on a request's path that the decision may read. */
export interface AccessContext {
  namespace: string;
  /** The authenticated agent, with the key id, JWT id or issuer it authenticated with. */
  agent: AgentPrincipal;
  /** The credential name asked for. */
  service: string;
  /** Undefined when no credential of that name exists (answered like "no grant"). */
  credential: CredentialState | undefined;
  /** The agent's grants for that credential, live or not. */
  grants: readonly Grant[];
  /** The scopes asked for; none: all the grant gives. */
  requestedScopes: readonly string[];
  channel: Channel;
  proxy?: ProxyOnPath | undefined;
  /** The end user a per-user credential is selected for (`?user=`). */
  endUser?: string | undefined;
  client: AccessClient;
  now: Date;
  /**
   * Facts of the request that policies read beyond the above: the MCP tool called, the upstream
   * host and method of a proxied call, … Named by the path that sets them.
   */
  attributes: Readonly<Record<string, string>>;
  /** Every rule of every policy attached to anything on the path, all of which must pass. */
  policies: readonly PolicyCheck[];
}

declare const decidedByDecide: unique symbol;

/**
 * A use the decision allowed. Only `decide()` makes one (the brand cannot be written elsewhere), and
 * reading a credential's secret for an agent takes one: a path that skips the decision does not
 * compile.
 */
export interface AllowedDecision {
  readonly outcome: 'allow';
  readonly namespace: string;
  readonly agentId: string;
  readonly credentialId: string;
  readonly channel: Channel;
  readonly grant: Grant;
  /** Granted ∩ requested (all granted scopes when none were requested). */
  readonly scopes: readonly string[];
  /** The earliest of the grant's and the credential's expiry; null when neither expires. */
  readonly expiresAt: string | null;
  /** Approvals the policies relied on (one-request ones are spent before the secret is read). */
  readonly approvals?: readonly ApprovalUse[] | undefined;
  readonly [decidedByDecide]: true;
}

/** An AllowedDecision's fields without its brand: what `decide()` fills in before branding it. */
export type AllowedFields = Omit<AllowedDecision, typeof decidedByDecide>;

export interface DeniedDecision {
  readonly outcome: 'deny';
  readonly code: ErrorCode;
  readonly message?: string | undefined;
  /** The policy rule that refused, when a policy did. */
  readonly rule?: RuleRef | undefined;
  /** Seconds until a refusing counter's window resets, when one refused. */
  readonly retryAfter?: number | undefined;
  /** The grant the refusal is about, when there is one. */
  readonly grant?: Grant | undefined;
}

export interface PendingDecision {
  readonly outcome: 'pending';
  readonly approval: PendingApproval;
  readonly grant: Grant;
}

export type AccessDecision = AllowedDecision | DeniedDecision | PendingDecision;
