import {
  classifyInboundRequest,
  type InboundClassificationOutcome,
  isJSONRPCErrorResponse,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/server';
import type { AccessClient } from '../access/access-types.js';
import type { AuditRecorder } from '../audit/audit-types.js';
import { errorRegistry } from '../errors/error-registry.js';
import { VaultError } from '../errors/vault-error.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import type { ProxySession } from './proxy-session.js';

/**
 * The 2026-07-28 revision on `/mcp/{proxy}`: stateless requests, each carrying its protocol version,
 * client info and capabilities in `_meta`, with the `MCP-Protocol-Version`, `Mcp-Method` and
 * `Mcp-Name` headers. The SDK's own classifier (the ladder `createMcpHandler` runs) decides which era
 * a request belongs to and refuses a malformed one — a header that does not match the body among
 * them, so a rule keyed on the header's tool name cannot be bypassed: the vault only ever acts on
 * the body, and a body that disagrees with its headers never gets that far.
 *
 * Behind it, the requests of one proxy key share one upstream session (one upstream `initialize`,
 * kept and reused, closed when idle like any other session): each request is handed to that
 * session under an id of its own (clients number their requests from zero, so two clients of one
 * key would collide), and its answer is mapped back. `server/discover` is answered from the
 * upstream's `initialize` result.
 */

/** The revision this leg serves. */
export const modernRevision = '2026-07-28';

export const classify = (request: Request, body: unknown): InboundClassificationOutcome => {
  const header = (name: string) => request.headers.get(name) ?? undefined;
  return classifyInboundRequest({
    httpMethod: request.method,
    ...(header('mcp-protocol-version') ? { protocolVersionHeader: header('mcp-protocol-version') } : {}),
    ...(header('mcp-method') ? { mcpMethodHeader: header('mcp-method') } : {}),
    ...(header('mcp-name') ? { mcpNameHeader: header('mcp-name') } : {}),
    body,
  });
};

/** Which body field `Mcp-Name` mirrors, per method (SEP-2243; the SDK's own table, not exported). */
const nameSource: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** A header value, or the UTF-8 text inside the `=?base64?…?=` sentinel (undefined when malformed). */
const decodedHeader = (value: string): string | undefined => {
  const trimmed = value.trim();
  if (!(trimmed.startsWith('=?base64?') && trimmed.endsWith('?='))) return trimmed;
  const b64 = trimmed.slice(9, -2);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
};

/**
 * The standard-header rung the SDK's HTTP entry runs after its classifier (and does not export):
 * a modern request must carry `MCP-Protocol-Version` and `Mcp-Method`, and `Mcp-Name` must be
 * present and equal to the body's name, URI or task id for the methods that have one. The
 * classifier has already refused a version or method header that disagrees with the body. Returns
 * why the request is refused, or undefined.
 */
export const standardHeaderMismatch = (request: Request, message: JSONRPCRequest): string | undefined => {
  if (request.headers.get('mcp-protocol-version') === null)
    return 'the required MCP-Protocol-Version header is absent';
  if (request.headers.get('mcp-method') === null) return 'the required Mcp-Method header is absent';
  const field = Object.hasOwn(nameSource, message.method) ? nameSource[message.method] : undefined;
  if (field === undefined) return undefined;
  const raw = (message.params as Record<string, unknown> | undefined)?.[field];
  const body = typeof raw === 'string' ? raw : undefined;
  const header = request.headers.get('mcp-name');
  if (header === null) return body === undefined ? undefined : 'the required Mcp-Name header is absent';
  const decoded = decodedHeader(header);
  if (decoded === undefined) return 'the Mcp-Name header carries an invalid Base64 sentinel value';
  if (body !== undefined && decoded !== body)
    return `the body carries params.${field}=${JSON.stringify(body.slice(0, 200))} but the Mcp-Name header names ${JSON.stringify(decoded.slice(0, 200))}`;
  return undefined;
};

/** The keys of the per-request envelope: for the vault, not for a 2025-era upstream. */
const envelopePrefix = 'io.modelcontextprotocol/';

const withoutEnvelope = (message: JSONRPCRequest, id: RequestId): JSONRPCRequest => {
  const params = { ...(message.params ?? {}) } as Record<string, unknown>;
  const meta = params._meta as Record<string, unknown> | undefined;
  if (meta) {
    const kept = Object.fromEntries(Object.entries(meta).filter(([key]) => !key.startsWith(envelopePrefix)));
    if (Object.keys(kept).length > 0) params._meta = kept;
    else delete params._meta;
  }
  return { ...message, id, params };
};

export interface SharedSession {
  session: ProxySession;
  /** The upstream's `initialize` result, once it answered. */
  ready: Promise<Record<string, unknown>>;
  /** Internal request id → the HTTP request waiting for its answer. */
  waiting: Map<RequestId, (message: JSONRPCMessage) => void>;
  next: number;
}

/** What the session's `toAgent` does for a shared session: answers go to the request that waits. */
export const deliverTo = (waiting: SharedSession['waiting']) => async (message: JSONRPCMessage) => {
  // Notifications and server requests have no HTTP request of their own in this leg: dropped.
  if (!isJSONRPCResultResponse(message) && !isJSONRPCErrorResponse(message)) return;
  const resolve = waiting.get(message.id as RequestId);
  if (!resolve) return;
  waiting.delete(message.id as RequestId);
  resolve(message);
};

/** Sends one request through the shared session and waits for its answer. */
const exchange = (shared: SharedSession, message: JSONRPCRequest, requestId: string) => {
  shared.next += 1;
  const internal = `tv-${shared.next}`;
  return new Promise<JSONRPCMessage>((resolve) => {
    shared.waiting.set(internal, resolve);
    void shared.session.fromAgent(withoutEnvelope(message, internal), requestId).catch(() => undefined);
  });
};

/** Opens the upstream of a new shared session, as a 2025-era client would. */
export const initializeShared = async (shared: SharedSession, requestId: string) => {
  const answer = await exchange(
    shared,
    {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'tokenvault-mcp-proxy', version: '1' },
      },
    },
    requestId,
  );
  if (!isJSONRPCResultResponse(answer)) throw answer;
  await shared.session.fromAgent({ jsonrpc: '2.0', method: 'notifications/initialized' }, requestId);
  return answer.result as Record<string, unknown>;
};

/** The JSON-RPC answer to one modern request (a request with an id; notifications get 202). */
export const serveModern = async (
  shared: SharedSession,
  message: JSONRPCRequest,
  requestId: string,
): Promise<JSONRPCMessage> => {
  let initialized: Record<string, unknown>;
  try {
    initialized = await shared.ready;
  } catch (failure) {
    // The upstream refused or the decision did: that answer, under this request's id.
    if (isJSONRPCErrorResponse(failure as JSONRPCMessage))
      return { ...(failure as JSONRPCMessage & object), id: message.id } as JSONRPCMessage;
    throw failure instanceof VaultError ? failure : new VaultError('mcp_upstream_unavailable');
  }
  if (message.method === 'server/discover') {
    const result: Record<string, unknown> = {
      supportedVersions: [modernRevision],
      capabilities: initialized.capabilities ?? {},
      ...(typeof initialized.instructions === 'string' ? { instructions: initialized.instructions } : {}),
      ttlMs: 0,
      cacheScope: 'private',
      resultType: 'complete',
      _meta: { [`${envelopePrefix}serverInfo`]: initialized.serverInfo },
    };
    return { jsonrpc: '2.0', id: message.id, result } as JSONRPCMessage;
  }
  const answer = await exchange(shared, message, requestId);
  if (isJSONRPCResultResponse(answer)) {
    // A 2026-07-28 result says it is complete (the upstream's era has no `input_required`); lists
    // and reads say how long they may be cached: not at all, as what an agent sees is its own (the
    // proxy's lists and pins filter it) and a 2025-era upstream says nothing about it.
    const cacheable = message.method.endsWith('/list') || message.method === 'resources/read';
    const result: Record<string, unknown> = {
      resultType: 'complete',
      ...(cacheable ? { ttlMs: 0, cacheScope: 'private' } : {}),
      ...(answer.result as Record<string, unknown>),
    };
    result._meta = {
      ...((result._meta as Record<string, unknown> | undefined) ?? {}),
      [`${envelopePrefix}serverInfo`]: initialized.serverInfo,
    };
    return { ...answer, id: message.id, result } as JSONRPCMessage;
  }
  return { ...answer, id: message.id } as JSONRPCMessage;
};

/** A refusal of the SDK's classifier (JSON-RPC), with the vault's code when it has one. */
export const ladderRefusal = async (
  audit: Pick<AuditRecorder, 'record'>,
  caller: ProxyCaller,
  input: { request: Request; body: unknown; client: AccessClient; requestId: string },
  rejection: Extract<ReturnType<typeof classify>, { kind: 'reject' }>,
) => {
  const mismatch = rejection.code === -32020;
  const id = (input.body as { id?: unknown } | undefined)?.id;
  if (mismatch) {
    const body = input.body as { method?: unknown; params?: { name?: unknown; uri?: unknown } };
    await audit.record({
      namespace: caller.principal.namespace,
      actor: { type: 'agent', id: caller.principal.agentId },
      action: 'mcp_proxy.call',
      target: { type: 'mcp_proxy', id: caller.proxy.id },
      decision: 'deny',
      reason: 'mcp_header_mismatch',
      client: { ip: input.client.ip, userAgent: input.client.userAgent },
      requestId: input.requestId,
      details: {
        proxy_id: caller.proxy.id,
        proxy_name: caller.proxy.name,
        proxy_key_id: caller.keyId,
        agent_id: caller.principal.agentId,
        agent_name: caller.principal.agentName,
        mcp_method: String(body?.method ?? '').slice(0, 200),
        header_method: (input.request.headers.get('mcp-method') ?? '').slice(0, 200),
        header_name: (input.request.headers.get('mcp-name') ?? '').slice(0, 200),
      },
    });
  }
  return Response.json(
    {
      jsonrpc: '2.0',
      id: typeof id === 'string' || typeof id === 'number' ? id : null,
      error: {
        code: rejection.code,
        message: mismatch ? errorRegistry.mcp_header_mismatch.message : rejection.message,
        data: {
          ...(typeof rejection.data === 'object' && rejection.data !== null ? rejection.data : {}),
          ...(mismatch ? { code: 'mcp_header_mismatch' } : {}),
          request_id: input.requestId,
        },
      },
    },
    { status: rejection.httpStatus },
  );
};
