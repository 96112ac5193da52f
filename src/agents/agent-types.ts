import type { GenerationView } from '../store/generation-cache.js';

export type AgentStatus = 'active' | 'disabled';
export type AgentAuthMethod = 'api_key' | 'jwt' | 'oidc' | 'proxy_key';

export interface Agent {
  id: string;
  namespace: string;
  name: string;
  description: string;
  status: AgentStatus;
  /** Registered public keys for JWT assertions, if any (public JWKs only; never private). */
  jwks: { keys: Record<string, unknown>[] } | null;
  jwksUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Who an agent request is from, once authenticated. */
export interface AgentPrincipal {
  agentId: string;
  agentName: string;
  namespace: string;
  method: AgentAuthMethod;
  /** The API key id, the JWT `jti`, or the trusted issuer's name, for the audit record. */
  credentialRef: string | null;
}

export interface AgentAuthRequest {
  /** The bearer token from `Authorization`, without the scheme. */
  token: string;
  clientIp: string;
  /** The access generation this request is decided at (one is taken when absent). */
  view?: GenerationView | undefined;
}

/** Authenticates agent requests; throws a VaultError with the precise code (agent_key_revoked, jwt_replayed, …). */
export interface AgentAuthenticator {
  authenticate(request: AgentAuthRequest): Promise<AgentPrincipal>;
}

/** An agent API key as listed: never the key itself, nor its hash. */
export interface AgentKey {
  id: string;
  agentId: string;
  name: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** An OIDC issuer whose workload tokens the namespace accepts, for one audience. */
export interface TrustedIssuer {
  id: string;
  namespace: string;
  name: string;
  issuer: string;
  audience: string;
  createdAt: string;
}

/** Tokens of `issuerId` whose claims equal every value in `claims` authenticate as `agentId`. */
export interface WorkloadBinding {
  id: string;
  namespace: string;
  issuerId: string;
  agentId: string;
  claims: Record<string, string>;
  createdAt: string;
}
