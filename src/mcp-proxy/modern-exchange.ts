import { createHash, randomBytes } from 'node:crypto';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/server';
import type { ProxySession } from './proxy-session.js';
import { openSink, type Sink } from './response-sink.js';

/**
 * One 2026-07-28 request in flight through a shared upstream session (stateless-leg.ts), and the
 * HTTP answer it gets. The upstream speaks a 2025-era revision, so three things are translated:
 *
 * - **Progress.** The request's progress token is replaced upstream by one of the vault's (clients
 *   of one key all number from zero, and share the upstream session), and the upstream's progress
 *   comes back on this request's own response stream under the client's token. The answer is plain
 *   JSON until the first notification; from then on it is an SSE stream that the final answer ends.
 * - **The server's requests to the client** (sampling, elicitation, roots) become
 *   `input_required` rounds (MRTR, SEP-2322): the answer is an `InputRequiredResult` with the
 *   requests and a `requestState`, while the upstream call stays open here, waiting. The client's
 *   retry (same method and parameters, a new id, `inputResponses`, the state echoed) is matched to
 *   it, the responses go upstream as the answers to its requests, and the retry's stream carries the
 *   rest. The state is a random handle to what this replica holds (never the state itself), bound to
 *   the proxy key (each key has its own shared sessions), to the request (method, name or URI, and
 *   a hash of the arguments), to one use, and to a deadline.
 * - **Cancellation.** Over HTTP, the client closing its response stream is the cancellation (the
 *   revision expects no `notifications/cancelled` there): the upstream call is cancelled
 *   (`notifications/cancelled` upstream, its pending requests to the client refused), and nothing
 *   more is sent for it.
 */

/** The methods whose answer may be `input_required` (the revision allows it on these only). */
const inputMethods = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** The capability a client declares for each request a server may make of it. */
const capabilityOf: Record<string, string> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** The client capabilities the vault can serve an upstream with, declared in a request's `_meta`. */
export const declaredCapabilities = (message: JSONRPCRequest): string[] => {
  const meta = (message.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
  const declared = meta?.['io.modelcontextprotocol/clientCapabilities'];
  if (typeof declared !== 'object' || declared === null) return [];
  return ['elicitation', 'roots', 'sampling'].filter((name) => Object.hasOwn(declared, name));
};

/** What a retry must repeat of its original: the method, its name or URI, and its arguments. */
export const requestDigest = (message: JSONRPCRequest): string => {
  const params = (message.params ?? {}) as Record<string, unknown>;
  return createHash('sha256')
    .update(
      JSON.stringify([message.method, params.name ?? null, params.uri ?? null, params.arguments ?? null]),
    )
    .digest('hex');
};

interface Asked {
  /** The id of the upstream's request, which the client's response answers. */
  upstreamId: RequestId;
  request: { method: string; params?: unknown };
}

export interface Exchange {
  /** The id the request has upstream. */
  internal: RequestId;
  method: string;
  digest: string;
  /** The id of the current round's request, which its answer carries. */
  clientId: RequestId;
  /** The current round's progress token, and the one standing for it upstream. */
  clientToken: string | number | undefined;
  upstreamToken: string | undefined;
  capabilities: string[];
  /** The current round's answer; none while the client is fulfilling input requests. */
  sink: Sink | undefined;
  /** The upstream's requests not yet answered, by the key the client answers them under. */
  asked: Map<string, Asked>;
  /** The upstream's answer when it came while the client was away. */
  final: JSONRPCMessage | undefined;
  state: string | undefined;
  expiry: NodeJS.Timeout | undefined;
  roundPending: boolean;
}

export interface ExchangeTable {
  session: ProxySession;
  /** By upstream id. */
  exchanges: Map<RequestId, Exchange>;
  /** By upstream progress token. */
  progress: Map<string, Exchange>;
  /** By `requestState`: exchanges waiting for the client's input. */
  parked: Map<string, Exchange>;
  next: number;
  /** The newest HTTP request's id (what the session's audit events name). */
  requestId: string;
  /** How long a parked exchange waits for the client's retry before its upstream call is cancelled. */
  inputWaitMs: number;
  /** Offers a notification that belongs to no request to the listen streams (modern-listen.ts). */
  offer: (message: JSONRPCMessage) => void;
  /** Shapes the upstream's final answer for the client (stateless-leg.ts). */
  shape: (exchange: Exchange, answer: JSONRPCMessage) => JSONRPCMessage;
}

const forget = (table: ExchangeTable, exchange: Exchange) => {
  table.exchanges.delete(exchange.internal);
  if (exchange.upstreamToken !== undefined) table.progress.delete(exchange.upstreamToken);
  if (exchange.state !== undefined) table.parked.delete(exchange.state);
  if (exchange.expiry) clearTimeout(exchange.expiry);
};

const answerUpstream = (table: ExchangeTable, message: JSONRPCMessage) =>
  void table.session.fromAgent(message, table.requestId).catch(() => undefined);

/** Cancels every exchange of a shared session that is closing. */
export const cancelExchanges = (table: ExchangeTable, reason: string) => {
  for (const exchange of [...table.exchanges.values(), ...table.parked.values()])
    cancelExchange(table, exchange, reason);
};

/** Cancels an exchange: the upstream call is cancelled, its pending requests refused. */
export const cancelExchange = (table: ExchangeTable, exchange: Exchange, reason: string) => {
  if (!table.exchanges.has(exchange.internal) && exchange.state === undefined) return;
  forget(table, exchange);
  // Answered upstream while the client was away: nothing left to cancel.
  if (exchange.final) return;
  exchange.sink?.drop();
  exchange.sink = undefined;
  answerUpstream(table, {
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId: exchange.internal, reason },
  });
  for (const { upstreamId } of exchange.asked.values())
    answerUpstream(table, {
      jsonrpc: '2.0',
      id: upstreamId,
      error: { code: -32800, message: `The agent's request was cancelled: ${reason}` },
    });
  exchange.asked.clear();
};

/** Ends the current round with an `InputRequiredResult` carrying every unanswered request. */
const askRound = (table: ExchangeTable, exchange: Exchange) => {
  exchange.roundPending = false;
  const sink = exchange.sink;
  if (!sink || exchange.asked.size === 0) return;
  const state = randomBytes(24).toString('base64url');
  exchange.state = state;
  exchange.sink = undefined;
  table.parked.set(state, exchange);
  exchange.expiry = setTimeout(
    () => cancelExchange(table, exchange, 'the agent did not answer in time'),
    table.inputWaitMs,
  );
  exchange.expiry.unref();
  sink.end({
    jsonrpc: '2.0',
    id: exchange.clientId,
    result: {
      resultType: 'input_required',
      inputRequests: Object.fromEntries([...exchange.asked].map(([key, asked]) => [key, asked.request])),
      requestState: state,
    },
  });
};

/** A request of the upstream's to the client: asked on the newest request that may carry it. */
const routeServerRequest = (table: ExchangeTable, message: JSONRPCRequest) => {
  if (message.method === 'ping') {
    answerUpstream(table, { jsonrpc: '2.0', id: message.id, result: {} });
    return;
  }
  const needed = capabilityOf[message.method];
  const taker =
    needed === undefined
      ? undefined
      : [...table.exchanges.values()]
          .reverse()
          .find((e) => inputMethods.has(e.method) && e.capabilities.includes(needed));
  if (!taker) {
    // Nothing the client asked can carry it (the revision has no other channel for it).
    answerUpstream(table, {
      jsonrpc: '2.0',
      id: message.id,
      error: {
        code: -32601,
        message: `No request of the agent's that declared the capability is waiting for ${message.method}.`,
      },
    });
    return;
  }
  table.next += 1;
  taker.asked.set(`${needed}-${table.next}`, {
    upstreamId: message.id,
    request: { method: message.method, ...(message.params ? { params: message.params } : {}) },
  });
  // Requests the upstream makes together go out in one round.
  if (taker.sink && !taker.roundPending) {
    taker.roundPending = true;
    setImmediate(() => askRound(table, taker));
  }
};

/** What the session's `toAgent` does for a shared session: each message to its exchange. */
export const deliverTo = (table: ExchangeTable) => async (message: JSONRPCMessage) => {
  if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
    const exchange = table.exchanges.get(message.id as RequestId);
    if (!exchange) return;
    // Requests it left unanswered are moot now.
    exchange.asked.clear();
    if (exchange.sink) {
      forget(table, exchange);
      exchange.sink.end(table.shape(exchange, message));
      return;
    }
    // The client is fulfilling input: its retry gets this answer (the state stays parked).
    table.exchanges.delete(exchange.internal);
    if (exchange.upstreamToken !== undefined) table.progress.delete(exchange.upstreamToken);
    exchange.final = message;
    return;
  }
  if (isJSONRPCRequest(message)) return routeServerRequest(table, message);
  if (isJSONRPCNotification(message) && message.method === 'notifications/progress') {
    const params = message.params as { progressToken?: unknown };
    const exchange = table.progress.get(String(params.progressToken));
    if (exchange?.sink && exchange.clientToken !== undefined)
      exchange.sink.notify({ ...message, params: { ...params, progressToken: exchange.clientToken } });
    return;
  }
  // The others belong to no request: the listen streams take the change notifications.
  if (isJSONRPCNotification(message)) table.offer(message);
};

/** Starts an exchange for a new request; `send` hands its upstream form to the session. */
export const startExchange = (
  table: ExchangeTable,
  message: JSONRPCRequest,
  signal: AbortSignal,
  send: (internal: RequestId, upstreamToken: string | undefined) => void,
): Promise<Response> => {
  table.next += 1;
  const internal = `tv-${table.next}`;
  const clientToken = (message.params?._meta as { progressToken?: string | number } | undefined)
    ?.progressToken;
  const exchange: Exchange = {
    internal,
    digest: requestDigest(message),
    method: message.method,
    clientId: message.id,
    clientToken,
    upstreamToken: clientToken === undefined ? undefined : `${internal}-progress`,
    capabilities: declaredCapabilities(message),
    sink: openSink(),
    asked: new Map(),
    final: undefined,
    state: undefined,
    expiry: undefined,
    roundPending: false,
  };
  table.exchanges.set(internal, exchange);
  if (exchange.upstreamToken !== undefined) table.progress.set(exchange.upstreamToken, exchange);
  watch(table, exchange, signal);
  const response = (exchange.sink as Sink).response;
  // Not sent at all when the client has already gone.
  if (table.exchanges.has(internal)) send(internal, exchange.upstreamToken);
  return response;
};

/** The upstream's answer to a request of the vault's own (the shared session's `initialize`). */
export const ownRequest = (table: ExchangeTable, request: JSONRPCRequest): Promise<JSONRPCMessage> =>
  new Promise((resolve) => {
    table.exchanges.set(request.id, {
      internal: request.id,
      method: request.method,
      digest: '',
      clientId: request.id,
      clientToken: undefined,
      upstreamToken: undefined,
      capabilities: [],
      sink: {
        response: Promise.resolve(new Response()),
        end: resolve,
        notify: () => undefined,
        drop: () => undefined,
      },
      asked: new Map(),
      final: undefined,
      state: undefined,
      expiry: undefined,
      roundPending: false,
    });
    void table.session.fromAgent(request, table.requestId).catch(() => undefined);
  });

/** The client closing this round's stream cancels the exchange (not once the round is answered). */
const watch = (table: ExchangeTable, exchange: Exchange, signal: AbortSignal) => {
  const sink = exchange.sink;
  const onAbort = () => {
    if (exchange.sink === sink) cancelExchange(table, exchange, 'the agent closed the request');
  };
  if (signal.aborted) return onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
};

/**
 * A retry of a parked exchange: its state checked, the client's responses sent upstream, and the
 * answer is the next round's (more input, or the upstream's final answer). Undefined when the state
 * is not one this key's exchange waits on with this very request.
 */
export const resumeExchange = (
  table: ExchangeTable,
  message: JSONRPCRequest,
  signal: AbortSignal,
): Promise<Response> | undefined => {
  const params = (message.params ?? {}) as { requestState?: unknown; inputResponses?: unknown };
  const state = typeof params.requestState === 'string' ? params.requestState : '';
  const exchange = table.parked.get(state);
  if (!exchange || exchange.digest !== requestDigest(message)) return undefined;
  table.parked.delete(state);
  if (exchange.expiry) clearTimeout(exchange.expiry);
  exchange.state = undefined;
  exchange.expiry = undefined;
  exchange.clientId = message.id;
  // The upstream keeps the token of the original request; its progress now goes under the retry's.
  exchange.clientToken = (message.params?._meta as { progressToken?: string | number } | undefined)
    ?.progressToken;
  exchange.capabilities = declaredCapabilities(message);
  const sink = openSink();
  exchange.sink = sink;
  const responses =
    typeof params.inputResponses === 'object' && params.inputResponses !== null
      ? (params.inputResponses as Record<string, unknown>)
      : {};
  for (const [key, result] of Object.entries(responses)) {
    const asked = exchange.asked.get(key);
    if (!asked) continue;
    exchange.asked.delete(key);
    answerUpstream(table, { jsonrpc: '2.0', id: asked.upstreamId, result } as JSONRPCMessage);
  }
  if (exchange.final) {
    forget(table, exchange);
    sink.end(table.shape(exchange, exchange.final));
  } else {
    table.exchanges.set(exchange.internal, exchange);
    watch(table, exchange, signal);
    // What the client left unanswered is asked again (the revision's advice), with what came since.
    if (exchange.asked.size > 0) askRound(table, exchange);
  }
  return sink.response;
};
