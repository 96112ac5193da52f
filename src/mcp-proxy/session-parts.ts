import { createHash } from 'node:crypto';
import type { Transport } from '@modelcontextprotocol/client';
import {
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/server';
import type { AccessClient } from '../access/access-types.js';
import type { AgentRequest } from '../access/agent-request.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { errorRegistry } from '../errors/error-registry.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import type { McpProxy } from './proxy-repo.js';
import type { ToolPins } from './tool-pins.js';
import { upstreamFailure } from './upstream.js';

/**
 * The parts of an MCP proxy session (proxy-session.ts) that hold no session state: what its events
 * say, the refusal an agent gets, and the vault's own exchanges with the upstream when it connects
 * again (one `initialize`, the tool list for the pins, the `list_changed` the agent is sent).
 */

/** The JSON-RPC error an agent gets for a vault refusal: the vault's code is in `data.code`. */
export const refusalMessage = (id: RequestId, error: unknown, requestId: string): JSONRPCMessage => {
  const vault = isVaultError(error) ? error : new VaultError('internal_error');
  const message =
    vault.status >= 500 && vault.code === 'internal_error'
      ? errorRegistry.internal_error.message
      : vault.message;
  return {
    jsonrpc: '2.0',
    id,
    error: {
      code: -32000 - Math.min(vault.status, 999),
      message,
      data: { code: vault.code, request_id: requestId },
    },
  };
};

export const argumentsHash = (args: unknown): string =>
  createHash('sha256')
    .update(JSON.stringify(args ?? {}))
    .digest('hex');

/** What every event of a session says, and the request each decision of the session is. */
export const sessionEvents = (audit: Pick<AuditRecorder, 'record'>, caller: ProxyCaller) => {
  const { proxy } = caller;
  const proxyFacts = (): AuditDetails => ({
    proxy_id: proxy.id,
    proxy_name: proxy.name,
    proxy_key_id: caller.keyId,
    end_user: caller.endUser ?? null,
  });
  const agentFacts = () => ({
    ...proxyFacts(),
    agent_id: caller.principal.agentId,
    agent_name: caller.principal.agentName,
  });
  const base = (requestId: string) => ({
    namespace: caller.principal.namespace,
    actor: { type: 'agent' as const, id: caller.principal.agentId },
    target: { type: 'mcp_proxy', id: proxy.id },
    requestId,
  });
  return {
    proxyFacts,
    /** A decision at the decision point, on the `mcp` channel, about the proxy's credential. */
    useRequest: (
      action: AuditAction,
      attributes: Record<string, string>,
      client: AccessClient,
      requestId: string,
    ): AgentRequest => ({
      principal: caller.principal,
      agentRef: caller.principal.agentId,
      service: proxy.credential,
      scope: undefined,
      channel: 'mcp',
      action,
      client,
      requestId,
      proxy: { id: proxy.id, name: proxy.name, keyId: caller.keyId },
      endUser: caller.endUser,
      attributes,
    }),
    async recordRedactions(count: number, where: string, requestId: string) {
      if (count === 0) return;
      await audit.record({
        ...base(requestId),
        action: 'mcp_proxy.redact',
        decision: 'allow',
        reason: 'ok',
        details: { ...agentFacts(), redactions: count, where },
      });
    },
    /** The session's end: `ok` when closed (DELETE, idle, shutdown), else why it ended. */
    recordEnd: (reason: string, requestId: string) =>
      audit
        .record({
          ...base(requestId),
          action: 'mcp_proxy.session.end',
          decision: reason === 'ok' ? 'allow' : 'deny',
          reason,
          details: agentFacts(),
        })
        .catch(() => undefined),
  };
};

/** A request awaiting the upstream's answer, or why there will be none (the upstream was lost). */
export interface Pending {
  resolve: (answer: JSONRPCMessage | VaultError) => void;
}

/** How long the vault waits for the upstream's answer to a request of its own (connecting again). */
const ownRequestTimeoutMs = 30_000;
let ownNext = 0;

/**
 * A request of the vault's own to the upstream (not the agent's): its answer (redactions stripped),
 * or the refusal, in time. Its id is the vault's, so no agent request is answered with it.
 */
export const ownRequest = (
  transport: Transport,
  pending: Map<RequestId, Pending>,
  method: string,
  params: JSONRPCRequest['params'],
) =>
  new Promise<JSONRPCMessage | VaultError>((resolve) => {
    ownNext += 1;
    const id = `tv-own-${ownNext}`;
    const timer = setTimeout(() => {
      pending.delete(id);
      resolve(new VaultError('mcp_upstream_unavailable'));
    }, ownRequestTimeoutMs);
    timer.unref();
    pending.set(id, {
      resolve: (answer) => {
        clearTimeout(timer);
        if (answer instanceof VaultError) return resolve(answer);
        const { _redactions, ...message } = answer as JSONRPCMessage & { _redactions?: number };
        resolve(message as JSONRPCMessage);
      },
    });
    transport.send({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) }).catch((error: unknown) => {
      pending.delete(id);
      clearTimeout(timer);
      resolve(
        upstreamFailure(error) === 'unauthorized'
          ? new VaultError('mcp_upstream_unauthorized')
          : new VaultError('mcp_upstream_unavailable', undefined, { cause: error }),
      );
    });
  });

/** The upstream's tool list, every page, recorded against the pins (a restart may change a tool). */
export const repinTools = async (
  ask: (method: string, params: JSONRPCRequest['params']) => Promise<JSONRPCMessage | VaultError>,
  pins: Pick<ToolPins, 'observe'>,
  proxy: McpProxy,
) => {
  let cursor: string | undefined;
  for (let page = 0; page < 100; page += 1) {
    const answer = await ask('tools/list', cursor === undefined ? {} : { cursor });
    if (!isJSONRPCResultResponse(answer as JSONRPCMessage)) return;
    const result = (answer as { result: { tools?: Record<string, unknown>[]; nextCursor?: unknown } }).result;
    if (Array.isArray(result.tools)) await pins.observe(proxy, result.tools);
    if (typeof result.nextCursor !== 'string') return;
    cursor = result.nextCursor;
  }
};

/** The lists an agent is told to fetch again after a reconnect: those the upstream has. */
export const listChanged = (capabilities: Record<string, unknown>): JSONRPCNotification[] =>
  (['tools', 'resources', 'prompts'] as const)
    .filter((list) => capabilities[list] !== undefined)
    .map((list) => ({ jsonrpc: '2.0', method: `notifications/${list}/list_changed` }));
