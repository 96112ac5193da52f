import type { Static } from '@sinclair/typebox';
import type * as AdminTokens from './admin-token-schemas.js';
import type * as Agents from './agent-schemas.js';
import type * as Audit from './audit-schemas.js';
import type * as Credentials from './credential-schemas.js';
import type * as Grants from './grant-schemas.js';
import type * as Keys from './key-schemas.js';
import type * as Policies from './policy-schemas.js';
import type * as McpProxies from './mcp-proxy-schemas.js';

/**
 * The admin and agent API's response bodies, derived from the routes' response schemas, so the CLI,
 * the SDK and the tests read the same shapes the server sends. Types only: importing this module
 * loads neither Fastify nor TypeBox at run time.
 */

export type { ErrorBody } from '../error-handler.js';

export type AdminTokenView = Static<typeof AdminTokens.AdminTokenView>;
export type CreatedAdminToken = Static<typeof AdminTokens.CreatedAdminToken>;

export type AgentView = Static<typeof Agents.AgentView>;
export type AgentList = Static<typeof Agents.AgentList>;
export type CreatedAgent = Static<typeof Agents.CreatedAgent>;
export type AgentKeyView = Static<typeof Agents.AgentKeyView>;
export type CreatedAgentKey = Static<typeof Agents.CreatedAgentKey>;
export type IssuerView = Static<typeof Agents.IssuerView>;
export type BindingView = Static<typeof Agents.BindingView>;

export type AuditEventView = Static<typeof Audit.EventView>;
export type AuditEventList = Static<typeof Audit.EventList>;
export type AuditVerifyView = Static<typeof Audit.VerifyView>;

export type CredentialView = Static<typeof Credentials.CredentialView>;
export type CredentialList = Static<typeof Credentials.CredentialList>;
export type VersionList = Static<typeof Credentials.VersionList>;
export type PruneResult = Static<typeof Credentials.PruneResult>;

export type GrantView = Static<typeof Grants.GrantView>;
export type GrantList = Static<typeof Grants.GrantList>;
export type CreatedGrant = Static<typeof Grants.CreatedGrant>;
export type RevokedGrants = Static<typeof Grants.RevokedGrants>;
export type ImportedGrants = Static<typeof Grants.ImportedGrants>;
export type RevokeAllResult = Static<typeof Grants.RevokeAllResult>;
/** What an agent receives from `GET /v1/agents/{agentId}/credentials/{service}`. */
export type CredentialToken = Static<typeof Grants.CredentialToken>;

export type KeyJobView = Static<typeof Keys.JobView>;
export type KeyStatusView = Static<typeof Keys.StatusView>;
export type KeysVerifyResult = Static<typeof Keys.KeysVerifyResult>;

/** A list response with its own items only (`{ items }`), for the lists that are not paged. */
export interface Items<T> {
  items: T[];
}

export type PolicyView = Static<typeof Policies.PolicyView>;
export type PolicyList = Static<typeof Policies.PolicyList>;
export type PolicyVersionList = Static<typeof Policies.PolicyVersionList>;
export type PolicyAttachResult = Static<typeof Policies.AttachResult>;
export type PolicyDetachResult = Static<typeof Policies.DetachResult>;
export type PolicyDryRunView = Static<typeof Policies.DryRunView>;
export type McpProxyView = Static<typeof McpProxies.ProxyView>;
export type McpProxyList = Static<typeof McpProxies.ProxyList>;
export type McpProxyKeyView = Static<typeof McpProxies.ProxyKeyView>;
export type McpProxyKeyList = Static<typeof McpProxies.ProxyKeyList>;
export type CreatedMcpProxyKey = Static<typeof McpProxies.CreatedProxyKey>;
export type PolicyUsageView = Static<typeof Policies.UsageView>;
export type PolicyUsageResetResult = Static<typeof Policies.UsageResetResult>;
