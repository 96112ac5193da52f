import type { JSONRPCMessage, JSONRPCRequest, RequestId } from '@modelcontextprotocol/server';
import type { ProxySession } from './proxy-session.js';

/**
 * `subscriptions/listen` (2026-07-28) in front of a 2025-era upstream: the client's long-lived
 * stream of the change notifications it opted in to (tools, prompts and resources lists changing,
 * updates of the resources it names), each stamped with the listen request's id. The upstream
 * sends its notifications to its session whoever asked, so the shared session's notifications are
 * offered to every open listen stream of that session, each taking what its filter accepts; the
 * resources named are subscribed upstream (`resources/subscribe`) while at least one stream names
 * them. Closing the stream is the end of the subscription, as for any request over HTTP.
 */

const subscriptionIdKey = 'io.modelcontextprotocol/subscriptionId';
const serverInfoKey = 'io.modelcontextprotocol/serverInfo';
/** An SSE comment now and then, so intermediaries do not close a quiet stream. */
const keepAliveMs = 25_000;

interface Filter {
  toolsListChanged?: true;
  promptsListChanged?: true;
  resourcesListChanged?: true;
  resourceSubscriptions?: string[];
}

export interface Listener {
  filter: Filter;
  send(method: string, params: Record<string, unknown> | undefined): void;
  /** Ends the stream; graceful: with the empty result that says the subscription is over. */
  end(graceful: boolean): void;
}

export interface ListenTable {
  session: ProxySession;
  requestId: string;
  next: number;
  listeners: Set<Listener>;
  /** Resource URI → how many open streams name it (subscribed upstream while above zero). */
  subscribed: Map<string, number>;
}

/** What of the client's filter the upstream can deliver (its capabilities say). */
export const honoredFilter = (requested: unknown, capabilities: Record<string, unknown>): Filter => {
  const want = (typeof requested === 'object' && requested !== null ? requested : {}) as Record<
    string,
    unknown
  >;
  const capability = (name: string, bit: string) =>
    (capabilities[name] as Record<string, unknown> | undefined)?.[bit] === true;
  const honored: Filter = {};
  if (want.toolsListChanged === true && capability('tools', 'listChanged')) honored.toolsListChanged = true;
  if (want.promptsListChanged === true && capability('prompts', 'listChanged'))
    honored.promptsListChanged = true;
  if (want.resourcesListChanged === true && capability('resources', 'listChanged'))
    honored.resourcesListChanged = true;
  const uris = Array.isArray(want.resourceSubscriptions)
    ? want.resourceSubscriptions.filter((uri): uri is string => typeof uri === 'string').slice(0, 100)
    : [];
  if (uris.length > 0 && capability('resources', 'subscribe')) honored.resourceSubscriptions = uris;
  return honored;
};

const accepts = (filter: Filter, method: string, params: Record<string, unknown> | undefined) => {
  if (method === 'notifications/tools/list_changed') return filter.toolsListChanged === true;
  if (method === 'notifications/prompts/list_changed') return filter.promptsListChanged === true;
  if (method === 'notifications/resources/list_changed') return filter.resourcesListChanged === true;
  if (method === 'notifications/resources/updated')
    return filter.resourceSubscriptions?.includes(String(params?.uri)) === true;
  return false;
};

/** Offers an upstream notification (already redacted) to every open listen stream. */
export const offerToListeners = (table: ListenTable, message: JSONRPCMessage) => {
  const { method, params } = message as { method: string; params?: Record<string, unknown> };
  for (const listener of table.listeners)
    if (accepts(listener.filter, method, params)) listener.send(method, params);
};

const toUpstream = (table: ListenTable, method: string, uri: string) => {
  table.next += 1;
  const request: JSONRPCRequest = { jsonrpc: '2.0', id: `tv-listen-${table.next}`, method, params: { uri } };
  void table.session.fromAgent(request, table.requestId).catch(() => undefined);
};

/** Ends every listen stream of a shared session that is closing (the vault stops, or it is idle). */
export const closeListeners = (table: ListenTable) => {
  for (const listener of [...table.listeners]) listener.end(true);
};

/** The answer to a `subscriptions/listen` request: its SSE stream. */
export const serveListen = (
  table: ListenTable,
  message: JSONRPCRequest,
  signal: AbortSignal,
  initialized: Record<string, unknown>,
): Response => {
  const id: RequestId = message.id;
  const filter = honoredFilter(
    (message.params as { notifications?: unknown } | undefined)?.notifications,
    (initialized.capabilities ?? {}) as Record<string, unknown>,
  );
  const encoder = new TextEncoder();
  let stream!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  const write = (frame: string) => {
    if (!closed) stream.enqueue(encoder.encode(frame));
  };
  const listener: Listener = {
    filter,
    end: (graceful) => end(graceful),
    send: (method, params) =>
      write(
        `event: message\ndata: ${JSON.stringify({
          jsonrpc: '2.0',
          method,
          params: { ...params, _meta: { ...(params?._meta as object | undefined), [subscriptionIdKey]: id } },
        })}\n\n`,
      ),
  };
  let keepAlive: NodeJS.Timeout | undefined;
  const end = (graceful: boolean) => {
    if (closed) return;
    if (graceful)
      write(
        `event: message\ndata: ${JSON.stringify({
          jsonrpc: '2.0',
          id,
          result: {
            resultType: 'complete',
            _meta: { [subscriptionIdKey]: id, [serverInfoKey]: initialized.serverInfo },
          },
        })}\n\n`,
      );
    closed = true;
    if (keepAlive) clearInterval(keepAlive);
    signal.removeEventListener('abort', onAbort);
    if (table.listeners.delete(listener))
      for (const uri of filter.resourceSubscriptions ?? []) {
        const count = (table.subscribed.get(uri) ?? 1) - 1;
        if (count > 0) table.subscribed.set(uri, count);
        else {
          table.subscribed.delete(uri);
          toUpstream(table, 'resources/unsubscribe', uri);
        }
      }
    try {
      stream.close();
    } catch {
      // Already cancelled by the consumer.
    }
  };
  const onAbort = () => end(false);
  const body = new ReadableStream<Uint8Array>({
    start: (controller) => void (stream = controller),
    cancel: () => end(false),
  });
  listener.send('notifications/subscriptions/acknowledged', { notifications: filter });
  if (Object.keys(filter).length === 0) end(true);
  else {
    table.listeners.add(listener);
    for (const uri of filter.resourceSubscriptions ?? []) {
      const count = table.subscribed.get(uri) ?? 0;
      if (count === 0) toUpstream(table, 'resources/subscribe', uri);
      table.subscribed.set(uri, count + 1);
    }
    keepAlive = setInterval(() => write(': keepalive\n\n'), keepAliveMs);
    keepAlive.unref();
    if (signal.aborted) end(false);
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  return new Response(body, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' },
  });
};
