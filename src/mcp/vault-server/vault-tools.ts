import type { AccessClient } from '../../access/access-types.js';
import type { AgentPrincipal } from '../../agents/agent-types.js';
import type { AuditDetails } from '../../audit/audit-types.js';
import type { GrantService } from '../../grants/grant-service.js';
import type { RetrievalService } from '../../grants/retrieval-service.js';
import type { ProxyService } from '../../proxy/proxy-service.js';
import { callApiRequest, callApiAnswer, type CallApiInput, type CallApiResult } from './call-api.js';

/**
 * The vault's own MCP tools as plain functions of an authenticated call: no MCP and no HTTP here
 * (vault-mcp-server.ts puts them on the wire). Each is the path its REST twin takes, so the
 * decision, the audit event and the refusals are the same ones:
 *
 * - `list_credentials`: the agent's live grants (grants/grant-service.ts), names and terms only;
 * - `get_credential`: the retrieval path (grants/retrieval-service.ts, channel `reveal`, event
 *   `credential.retrieve`), so a proxy-only grant is refused with `reveal_not_granted`;
 * - `call_api`: the HTTP proxy (proxy/proxy-service.ts, channel `proxy`, event `credential.proxy`),
 *   whose answer is read back as redacted, size-capped text (call-api.ts).
 *
 * The events of the last two carry `via: 'mcp'` and the tool's name, so the audit log tells an MCP
 * use from a REST one. Refusals are thrown as VaultErrors; the server turns them into tool errors.
 */

/** Who calls, from where, in which HTTP request: set by the `/mcp` route once the agent is authenticated. */
export interface McpCall {
  principal: AgentPrincipal;
  client: AccessClient;
  requestId: string;
}

export interface ListCredentialsInput {
  cursor?: string | undefined;
}

export interface GrantedCredential {
  name: string;
  scopes: string[];
  /** Whether `get_credential` may return the secret; otherwise `call_api` only. */
  reveal: boolean;
  /** When the grant ends; null: until revoked. */
  expires_at: string | null;
  grant_id: string;
}

export interface ListCredentialsResult {
  credentials: GrantedCredential[];
  next_cursor: string | null;
}

export interface GetCredentialInput {
  credential: string;
  scope?: string | undefined;
  /** The end user, for a per-user credential (as `?user=` on REST). */
  user?: string | undefined;
}

export interface GetCredentialResult {
  access_token: string;
  token_type: string;
  expires_at: string | null;
  scopes: string[];
  fields?: Record<string, string>;
}

export interface VaultToolsDeps {
  grants: Pick<GrantService, 'list'>;
  retrieval: Pick<RetrievalService, 'retrieve'>;
  proxy: Pick<ProxyService, 'forward'>;
}

/** What every event of a tool call carries besides its own facts. */
const viaMcp = (tool: string): AuditDetails => ({ via: 'mcp', mcp_tool: tool });

/** Grants listed per page. */
const pageSize = 100;

export const createVaultTools = ({ grants, retrieval, proxy }: VaultToolsDeps) => ({
  /**
   * The agent's live grants. Audit: none — it reads the agent's own grant terms (names, scopes,
   * expiry), the same facts an admin lists, and no secret; every use of one is audited.
   */
  async listCredentials(call: McpCall, input: ListCredentialsInput): Promise<ListCredentialsResult> {
    const page = await grants.list(call.principal.namespace, {
      agent: call.principal.agentId,
      limit: pageSize,
      after: input.cursor,
    });
    return {
      credentials: page.items
        // A grant whose credential was deleted cannot be used: nothing to list.
        .filter((g) => g.credentialName !== null)
        .map((g) => ({
          name: g.credentialName as string,
          scopes: [...g.scopes],
          reveal: g.reveal,
          expires_at: g.expiresAt,
          grant_id: g.id,
        })),
      next_cursor: page.nextCursor,
    };
  },

  /** A reveal grant's token. Audit: `credential.retrieve`, recorded by the retrieval path. */
  async getCredential(call: McpCall, input: GetCredentialInput): Promise<GetCredentialResult> {
    const token = await retrieval.retrieve({
      principal: call.principal,
      // The tool names no agent: the caller is the agent it is for.
      agentRef: call.principal.agentId,
      service: input.credential,
      scope: input.scope,
      endUser: input.user,
      client: call.client,
      requestId: call.requestId,
      details: viaMcp('get_credential'),
    });
    return {
      access_token: token.accessToken,
      token_type: token.tokenType,
      expires_at: token.expiresAt,
      scopes: token.scopes,
      ...(token.fields ? { fields: token.fields } : {}),
    };
  },

  /** An HTTP call through the proxy. Audit: `credential.proxy`, recorded by the proxy service. */
  async callApi(call: McpCall, input: CallApiInput): Promise<CallApiResult> {
    const answer = await proxy.forward({
      ...callApiRequest(input),
      principal: call.principal,
      client: call.client,
      requestId: call.requestId,
      details: viaMcp('call_api'),
    });
    return callApiAnswer(answer);
  },
});

export type VaultTools = ReturnType<typeof createVaultTools>;
