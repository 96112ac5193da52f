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
import { closeListeners, type ListenTable, offerToListeners, serveListen } from './modern-listen.js';
import {
  cancelExchanges,
  deliverTo,
  type Exchange,
  ownRequest,
  type ExchangeTable,
  resumeExchange,
  startExchange,
} from './modern-exchange.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import { type ProxySession, refusalMessage } from './proxy-session.js';

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

/**
 * A request as the 2025-era upstream gets it: the vault's id and progress token for the client's
 * (unique across the clients sharing the session), without the per-request envelope or the
 * retry fields, which are the vault's business.
 */
const withoutEnvelope = (
  message: JSONRPCRequest,
  id: RequestId,
  progressToken: string | undefined,
): JSONRPCRequest => {
  const {
    inputResponses: _responses,
    requestState: _state,
    ...params
  } = {
    ...(message.params ?? {}),
  } as Record<string, unknown>;
  const meta = params._meta as Record<string, unknown> | undefined;
  if (meta) {
    const kept = Object.fromEntries(
      Object.entries(meta).filter(([key]) => !key.startsWith(envelopePrefix) && key !== 'progressToken'),
    );
    if (progressToken !== undefined) kept.progressToken = progressToken;
    if (Object.keys(kept).length > 0) params._meta = kept;
    else delete params._meta;
  }
  return { ...message, id, params };
};

export interface SharedSession extends ExchangeTable, ListenTable {
  /** The upstream's `initialize` result, once it answered. */
  ready: Promise<Record<string, unknown>>;
  /** The upstream never started (refused or failed): the next request opens a new shared session. */
  ended: boolean;
}

/** A 2026-07-28 answer in the vault's shape: the request's id, and the revision's result fields. */
const shapeAnswer =
  (initialized: () => Record<string, unknown>) =>
  (exchange: Pick<Exchange, 'clientId' | 'method'>, answer: JSONRPCMessage): JSONRPCMessage => {
    // The vault's own `initialize` (openSharedSession) is the upstream's answer as it is.
    if (exchange.method === 'initialize') return answer;
    if (!isJSONRPCResultResponse(answer)) return { ...answer, id: exchange.clientId } as JSONRPCMessage;
    // A 2026-07-28 result says it is complete; lists and reads say how long they may be cached: not
    // at all, as what an agent sees is its own (the proxy's lists and pins filter it) and a 2025-era
    // upstream says nothing about it.
    const cacheable = exchange.method.endsWith('/list') || exchange.method === 'resources/read';
    const result: Record<string, unknown> = {
      resultType: 'complete',
      ...(cacheable ? { ttlMs: 0, cacheScope: 'private' } : {}),
      ...(answer.result as Record<string, unknown>),
    };
    result._meta = {
      ...((result._meta as Record<string, unknown> | undefined) ?? {}),
      [`${envelopePrefix}serverInfo`]: initialized().serverInfo,
    };
    return { ...answer, id: exchange.clientId, result } as JSONRPCMessage;
  };

/** The upstream `initialize` of a shared session: the vault's, declaring what its clients declared. */
const initializeRequest = (capabilities: readonly string[]): JSONRPCRequest => ({
  jsonrpc: '2.0',
  id: 'tv-initialize',
  method: 'initialize',
  params: {
    protocolVersion: '2025-06-18',
    capabilities: Object.fromEntries(capabilities.map((name) => [name, {}])),
    clientInfo: { name: 'tokenvault-mcp-proxy', version: '1' },
  },
});

/**
 * A shared session (one per proxy key and set of declared client capabilities, so the upstream
 * sees the capabilities its clients have: a server lists its sampling tools only to a client that
 * can sample): the proxy session `open` builds, with this leg's routing as its `toAgent`, and its
 * upstream opened as a 2025-era client would.
 */
export const openSharedSession = (
  open: (toAgent: (message: JSONRPCMessage) => Promise<void>) => ProxySession,
  capabilities: readonly string[],
  requestId: string,
  inputWaitMs = 10 * 60_000,
): SharedSession => {
  let initialized: Record<string, unknown> = {};
  // The session is set just below: its `toAgent` is this table's routing.
  const shared = {
    exchanges: new Map(),
    progress: new Map(),
    parked: new Map(),
    listeners: new Set(),
    subscribed: new Map(),
    next: 0,
    requestId,
    inputWaitMs,
    shape: shapeAnswer(() => initialized),
    offer: (message: JSONRPCMessage) => offerToListeners(shared, message),
    ready: Promise.resolve({}),
    ended: false,
  } as unknown as SharedSession;
  // An upstream lost later (it exited, restarted, is down) does not end the shared session: the
  // proxy session connects again on the next request and tells the listen streams (`list_changed`).
  shared.session = open(deliverTo(shared));
  shared.ready = (async () => {
    const answer = await ownRequest(shared, initializeRequest(capabilities));
    if (!isJSONRPCResultResponse(answer)) {
      shared.ended = true;
      throw answer;
    }
    await shared.session.fromAgent({ jsonrpc: '2.0', method: 'notifications/initialized' }, requestId);
    initialized = answer.result as Record<string, unknown>;
    return initialized;
  })();
  return shared;
};

/** Whether nothing is in flight or listening (so an idle sweep may close the shared session). */
export const sharedIdle = (shared: SharedSession) =>
  shared.exchanges.size === 0 && shared.parked.size === 0 && shared.listeners.size === 0;

/** Closes a shared session: its listen streams end, its calls are cancelled, its upstream closes. */
export const closeSharedSession = async (shared: SharedSession) => {
  closeListeners(shared);
  cancelExchanges(shared, 'the vault closed the session');
  await shared.session.close();
};

/** The answer to one modern request (a request with an id; notifications get 202). */
export const serveModern = async (
  shared: SharedSession,
  message: JSONRPCRequest,
  request: Request,
  requestId: string,
): Promise<Response> => {
  let initialized: Record<string, unknown>;
  try {
    initialized = await shared.ready;
  } catch (failure) {
    // The upstream refused or the decision did: that answer, under this request's id.
    if (isJSONRPCErrorResponse(failure as JSONRPCMessage))
      return Response.json({ ...(failure as JSONRPCMessage & object), id: message.id });
    throw failure instanceof VaultError ? failure : new VaultError('mcp_upstream_unavailable');
  }
  shared.requestId = requestId;
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
    return Response.json({ jsonrpc: '2.0', id: message.id, result });
  }
  if (message.method === 'subscriptions/listen')
    return serveListen(shared, message, request.signal, initialized);
  if ((message.params as { requestState?: unknown } | undefined)?.requestState !== undefined) {
    const resumed = resumeExchange(shared, message, request.signal);
    if (resumed) return resumed;
    return Response.json(refusalMessage(message.id, new VaultError('mcp_request_state_invalid'), requestId));
  }
  return startExchange(shared, message, request.signal, (internal, upstreamToken) => {
    void shared.session
      .fromAgent(withoutEnvelope(message, internal, upstreamToken), requestId)
      .catch(() => undefined);
  });
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
