import type { Transport } from '@modelcontextprotocol/client';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/server';
import type { AccessClient } from '../access/access-types.js';
import type { AgentRequests, CredentialUse } from '../access/agent-request.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { createTextRedactor, redactMessage, type TextRedactor } from './message-redaction.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import {
  argumentsHash,
  listChanged,
  ownRequest,
  type Pending,
  refusalMessage,
  repinTools,
  sessionEvents,
} from './session-parts.js';
import { toolPermitted } from './proxy-rules.js';
import type { ToolPins } from './tool-pins.js';
import {
  type RenderedSecret,
  renderSecret,
  upstreamFailure,
  upstreamTransport,
  type UpstreamOptions,
} from './upstream.js';

/**
 * One agent session through an MCP proxy: the agent's transport on one side, one upstream
 * connection on the other, kept for the session's life (one upstream `initialize` per session, never
 * one per call). Messages are forwarded as they are, ids, progress tokens and cursors included, so
 * everything the two sides exchange goes through (resources, prompts, completions, logging,
 * cancellation, list_changed, the server's requests to the client); the vault steps in only where it
 * must:
 *
 * - `initialize` opens the upstream, after a decision (the grant) that also reads the secret;
 * - every `tools/call` is its own decision at the one decision point (grant, kill switch, policies),
 *   with the tool lists checked, and is one `mcp_proxy.call` event: agent, user, proxy, tool, a hash
 *   of the arguments, outcome, latency, redactions;
 * - `tools/list` answers lose the tools the lists deny;
 * - everything from upstream is redacted of every injected secret before the agent sees it.
 */

export { refusalMessage };

/** How long closing a session waits for the upstream to acknowledge the end of its session. */
const terminateWaitMs = 2_000;
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export interface SessionDeps {
  requests: Pick<AgentRequests, 'use'>;
  audit: Pick<AuditRecorder, 'record'>;
  clock: Clock;
  fetch: UpstreamOptions['fetch'];
  pins: Pick<ToolPins, 'observe' | 'callable'>;
  /**
   * After an upstream 401 on an OAuth credential: one refresh (or the one that already replaced the
   * refused version) and the use with the newer secret, undefined when there is none
   * (`oauthRefresh.reauthorize`). Absent: a 401 is answered as it is.
   */
  reauthorize?: ((use: CredentialUse) => Promise<CredentialUse | undefined>) | undefined;
  /** Called with redacted stderr text of a stdio upstream. */
  log: (message: string, details: Record<string, unknown>) => void;
}

export interface SessionStart {
  caller: ProxyCaller;
  client: AccessClient;
  requestId: string;
  /** Sends a message to the agent, on the stream of `related` when given. */
  toAgent: (message: JSONRPCMessage, related?: RequestId) => Promise<void>;
}

export const openProxySession = (deps: SessionDeps, start: SessionStart) => {
  const { caller } = start;
  const { proxy } = caller;
  /** The live upstream connection; undefined before `initialize` and while it is lost. */
  let upstream: Transport | undefined;
  /** The client's `initialize` parameters: a lost upstream is initialized again with them. */
  let initializeParams: JSONRPCRequest['params'];
  /** Why the upstream was lost (it exited, restarted, went away): the next request reconnects. */
  let lost: VaultError | undefined;
  let reconnecting: Promise<void> | undefined;
  let secret: RenderedSecret | undefined;
  /** The secret version the upstream receives now: a 401 refers to it. */
  let secretVersion = 0;
  let redactor: TextRedactor = createTextRedactor([]);
  let ended: VaultError | undefined;
  /** Requests awaiting the upstream's answer: the vault's own (calls, reconnecting) and forwarded ones. */
  const pendingCalls = new Map<RequestId, Pending>();
  const listRequests = new Set<RequestId>();
  const inFlight = new Set<RequestId>();
  /** progressToken → the agent request it belongs to, so progress rides that request's stream. */
  const progressOf = new Map<string | number, RequestId>();
  /** The resources the agent subscribed to upstream: a new upstream connection is subscribed again. */
  const subscriptions = new Set<string>();
  let lastRequestId = start.requestId;

  const events = sessionEvents(deps.audit, caller);
  const { proxyFacts } = events;
  const useRequest = (action: AuditAction, attributes: Record<string, string>) =>
    events.useRequest(action, attributes, start.client, lastRequestId);
  const recordRedactions = (count: number, where: string) =>
    events.recordRedactions(count, where, lastRequestId);

  /** Takes the secret of an allowed use: what the upstream's next request injects, and what is redacted. */
  const adopt = (use: CredentialUse) => {
    const next = renderSecret(proxy, use.read.credential.type, use.read.secret);
    const known = new Set([...(secret?.values ?? []), ...next.values]);
    secret = next;
    secretVersion = use.read.version;
    redactor = createTextRedactor(known);
  };

  /** Everything from upstream, on its way to the agent: redacted, then routed to the right stream. */
  const fromUpstream = async (raw: JSONRPCMessage) => {
    const { message, count } = redactMessage(redactor, raw, () =>
      'id' in raw && raw.id !== undefined
        ? refusalMessage(raw.id, new VaultError('internal_error'), lastRequestId)
        : {
            jsonrpc: '2.0',
            method: 'notifications/message',
            params: { level: 'warning', data: '[REDACTED]' },
          },
    );
    if (isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) {
      const id = message.id as RequestId;
      const pending = pendingCalls.get(id);
      if (pending) {
        pendingCalls.delete(id);
        // The call's own event counts these redactions.
        pending.resolve({ ...message, _redactions: count } as unknown as JSONRPCMessage);
        return;
      }
      // Answered: no longer one to refuse if the upstream is lost (synchronously, before any wait).
      inFlight.delete(id);
      await recordRedactions(count, 'response');
      if (listRequests.delete(id) && isJSONRPCResultResponse(message)) {
        // Agents see a tool when the lists allow it and its definition is the pinned one.
        const result = message.result as { tools?: Record<string, unknown>[] };
        if (Array.isArray(result.tools)) {
          const pinned = await deps.pins.observe(proxy, result.tools);
          result.tools = result.tools.filter(
            (t) => toolPermitted(proxy, String(t.name)) && pinned.has(String(t.name)),
          );
        }
      }
      await start.toAgent(message, id);
      return;
    }
    await recordRedactions(
      count,
      isJSONRPCRequest(message) ? message.method : (message as { method: string }).method,
    );
    if (isJSONRPCNotification(message)) {
      const token = (message.params as { progressToken?: string | number } | undefined)?.progressToken;
      const related = token !== undefined ? progressOf.get(token) : [...inFlight].at(-1);
      await start.toAgent(message, related);
      return;
    }
    // A request of the server's (sampling, elicitation, roots): on the stream of the newest request.
    await start.toAgent(message as JSONRPCMessage, [...inFlight].at(-1));
  };

  /** The session's end, recorded once: `ok` when closed (DELETE, idle, shutdown). */
  let endRecorded = false;
  const recordEnd = (reason: string) => {
    if (endRecorded || initializeParams === undefined) return Promise.resolve();
    endRecorded = true;
    return events.recordEnd(reason, lastRequestId);
  };

  /**
   * The upstream connection is gone (a stdio child exited, an HTTP upstream restarted or went away):
   * what was waiting on it is answered with why (a call in flight gets its own code and its event),
   * and the session goes on: its next request connects again. `keep` is a request about to be sent
   * again on the new connection.
   */
  const lose = (transport: Transport, error: VaultError, keep?: RequestId) => {
    if (transport !== upstream) return;
    upstream = undefined;
    lost = error;
    transport.onclose = undefined;
    void transport.close().catch(() => undefined);
    for (const [id, pending] of pendingCalls) {
      if (id === keep) continue;
      pendingCalls.delete(id);
      pending.resolve(error);
    }
    for (const id of inFlight) {
      if (id === keep) continue;
      inFlight.delete(id);
      void start.toAgent(refusalMessage(id, error, lastRequestId), id).catch(() => undefined);
    }
  };

  /**
   * The upstream's answer stream for a request ended without its answer (it went away mid-answer):
   * the request is refused now rather than left to the agent's timeout. An answer that came is
   * taken off the waiting lists synchronously as it arrives (fromUpstream), before this runs.
   */
  const unanswered = (id: RequestId) =>
    setImmediate(() => {
      const gone = new VaultError('mcp_upstream_unavailable');
      const pending = pendingCalls.get(id);
      if (pending) {
        pendingCalls.delete(id);
        pending.resolve(gone);
      } else if (inFlight.delete(id)) {
        listRequests.delete(id);
        void start.toAgent(refusalMessage(id, gone, lastRequestId), id).catch(() => undefined);
      }
    });

  /** A started transport to the upstream, its messages redacted on their way to the agent. */
  const openTransport = async (use: CredentialUse): Promise<Transport> => {
    const transport = upstreamTransport({
      proxy,
      allowedHosts: use.read.credential.allowedHosts,
      current: () => secret as RenderedSecret,
      fetch: deps.fetch,
      onStderr: (text) => {
        const { text: clean, count } = redactor(text);
        void recordRedactions(count, 'stderr').catch(() => undefined);
        deps.log('mcp upstream stderr', { proxy: proxy.name, stderr: clean.slice(0, 4000) });
      },
    });
    transport.onmessage = (m) => void fromUpstream(m).catch(() => undefined);
    transport.onclose = () =>
      lose(
        transport,
        new VaultError(proxy.transport === 'stdio' ? 'mcp_upstream_exited' : 'mcp_upstream_unavailable'),
      );
    transport.onerror = () => undefined;
    try {
      await transport.start();
    } catch (error) {
      throw new VaultError('mcp_upstream_unavailable', undefined, { cause: error });
    }
    if (ended) {
      // The session closed while this connection was being made: no child outlives it.
      await transport.close().catch(() => undefined);
      throw ended;
    }
    upstream = transport;
    lost = undefined;
    return transport;
  };

  /**
   * The credential the upstream answered 401 to, renewed once: the refresh (or the one another
   * request or replica already made) and the newer secret, read through the decision `use` came
   * from. Refused again after that, or nothing newer: `mcp_upstream_unauthorized`, never a loop.
   */
  const renewAfter401 = async (use: CredentialUse, facts: AuditDetails): Promise<void> => {
    const refused = new VaultError('mcp_upstream_unauthorized');
    if (facts.retried_after_401 === true || use.read.credential.type !== 'oauth2' || !deps.reauthorize)
      throw refused;
    facts.retried_after_401 = true;
    // The decision just made may already have read a newer version than the one refused.
    const renewed = use.read.version === secretVersion ? await deps.reauthorize(use) : use;
    if (!renewed) throw refused;
    adopt(renewed);
    facts.version = renewed.read.version;
  };

  /**
   * Sends a message to the upstream, connecting first when the upstream was lost. A 404 for the
   * upstream's session (it restarted) or a refused connection means the request was not processed:
   * the vault connects again and sends it once more; `recheck` runs in between (a tool's pin may
   * have changed with the restart). A 401 goes to `unauthorized` when given.
   */
  const deliver = async (
    message: JSONRPCMessage,
    related: RequestId | undefined,
    options: { recheck?: () => Promise<void>; unauthorized?: () => Promise<void> } = {},
  ): Promise<void> => {
    let renewed = false;
    for (let attempt = 0; ; attempt += 1) {
      await ensureConnected(related);
      const transport = upstream as Transport;
      try {
        await transport.send(
          message,
          related === undefined ? undefined : { onRequestStreamEnd: () => unanswered(related) },
        );
        return;
      } catch (error) {
        const failure = upstreamFailure(error);
        if (failure === 'unauthorized' && options.unauthorized && !renewed) {
          renewed = true;
          await options.unauthorized();
          continue;
        }
        if (failure === 'unauthorized') throw new VaultError('mcp_upstream_unauthorized');
        const unavailable = new VaultError('mcp_upstream_unavailable', undefined, { cause: error });
        if (failure === 'failed') throw unavailable;
        lose(transport, unavailable, related);
        if (attempt > 0) throw unavailable;
        await ensureConnected(related);
        await options.recheck?.();
      }
    }
  };

  const own = (transport: Transport, method: string, params: JSONRPCRequest['params']) =>
    ownRequest(transport, pendingCalls, method, params);

  /**
   * A new upstream connection for a session whose upstream was lost: a decision like `initialize`'s
   * (the grant still holds; the secret is read afresh), one upstream `initialize` with the client's
   * parameters, the tool pins checked against the new tool list, the agent's resource subscriptions
   * made again, and the agent told to list again
   * (`list_changed` for each list the upstream has), on the stream of the request that found the
   * upstream gone. One `mcp_proxy.reconnect` event.
   */
  const reconnect = (related: RequestId | undefined, after: VaultError) =>
    deps.requests.use(useRequest('mcp_proxy.reconnect', { mcp_method: 'initialize' }), async (use, facts) => {
      Object.assign(facts, proxyFacts(), { after: after.code });
      adopt(use);
      let answer: JSONRPCMessage | VaultError | undefined;
      for (let attempt = 0; attempt < 2; attempt += 1) {
        const transport = await openTransport(use);
        answer = await own(transport, 'initialize', initializeParams);
        if (answer instanceof VaultError || !isJSONRPCResultResponse(answer)) {
          lose(transport, answer instanceof VaultError ? answer : new VaultError('mcp_upstream_unavailable'));
        }
        if (!(answer instanceof VaultError && answer.code === 'mcp_upstream_unauthorized')) break;
        await renewAfter401(use, facts);
      }
      if (answer instanceof VaultError) throw answer;
      if (!upstream || !isJSONRPCResultResponse(answer as JSONRPCMessage))
        throw new VaultError('mcp_upstream_unavailable');
      const transport: Transport = upstream;
      await transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      const capabilities =
        (answer as { result: { capabilities?: Record<string, unknown> } }).result.capabilities ?? {};
      if (capabilities.tools !== undefined)
        await repinTools((method, params) => own(transport, method, params), deps.pins, proxy);
      // The restarted upstream forgot them; a refusal changes nothing the agent holds.
      if ((capabilities.resources as { subscribe?: unknown } | undefined)?.subscribe === true)
        await Promise.all([...subscriptions].map((uri) => own(transport, 'resources/subscribe', { uri })));
      const notices = listChanged(capabilities);
      for (const notice of notices) await start.toAgent(notice, related);
      return {
        result: undefined,
        details: { list_changed: notices.map((n) => n.method.split('/')[1] ?? '') },
      };
    });

  /** The upstream, connected again first when it was lost (one reconnect at a time). */
  const ensureConnected = async (related: RequestId | undefined) => {
    while (!upstream) {
      if (!reconnecting) {
        reconnecting = reconnect(related, lost ?? new VaultError('mcp_upstream_unavailable')).finally(() => {
          reconnecting = undefined;
        });
        await reconnecting;
      } else await reconnecting.catch(() => undefined);
      if (ended) throw ended;
    }
  };

  const connect = async (message: JSONRPCRequest) => {
    initializeParams = message.params;
    inFlight.add(message.id);
    await deps.requests.use(
      useRequest('mcp_proxy.connect', { mcp_method: 'initialize' }),
      async (use, facts) => {
        adopt(use);
        Object.assign(facts, proxyFacts());
        for (;;) {
          const transport = await openTransport(use);
          try {
            await transport.send(message);
            return { result: undefined };
          } catch (error) {
            const unavailable = new VaultError('mcp_upstream_unavailable', undefined, { cause: error });
            lose(transport, unavailable, message.id);
            if (upstreamFailure(error) !== 'unauthorized') throw unavailable;
            await renewAfter401(use, facts);
          }
        }
      },
    );
  };

  /** A `tools/call`: the decision, the lists, then the upstream's answer, recorded as one event. */
  const call = async (message: JSONRPCRequest) => {
    const params = (message.params ?? {}) as {
      name?: unknown;
      arguments?: unknown;
      _meta?: { progressToken?: string | number };
    };
    const tool = typeof params.name === 'string' ? params.name.slice(0, 200) : '';
    const started = performance.now();
    const answer = await deps.requests
      .use(useRequest('mcp_proxy.call', { mcp_tool: tool }), async (use, facts) => {
        Object.assign(facts, proxyFacts(), { tool, arguments_sha256: argumentsHash(params.arguments) });
        if (!toolPermitted(proxy, tool))
          throw new VaultError('mcp_tool_denied', `The proxy's tool lists do not let agents call "${tool}".`);
        adopt(use);
        // A lost upstream is connected again (and its tools pinned again) before the tool is judged.
        await ensureConnected(message.id);
        const recheck = async () => {
          if (!(await deps.pins.callable(proxy, tool))) {
            throw new VaultError(
              'mcp_tool_withheld',
              `The definition of "${tool}" is not the accepted one (changed or new upstream, or not listed yet): list the tools, and ask an admin to accept it (\`tokenvault proxy tools accept ${proxy.name}\`).`,
            );
          }
        };
        await recheck();
        const token = params._meta?.progressToken;
        if (token !== undefined) progressOf.set(token, message.id);
        const response = await new Promise<JSONRPCMessage | VaultError>((resolve) => {
          pendingCalls.set(message.id, { resolve });
          deliver(message, message.id, { recheck, unauthorized: () => renewAfter401(use, facts) }).catch(
            (error: unknown) => {
              pendingCalls.delete(message.id);
              resolve(isVaultError(error) ? error : new VaultError('mcp_upstream_unavailable'));
            },
          );
        });
        if (token !== undefined) progressOf.delete(token);
        // The upstream ended before it answered: the call is refused with why (its own code).
        if (response instanceof VaultError) throw response;
        const { _redactions: redactions = 0, ...clean } = response as JSONRPCMessage & {
          _redactions?: number;
        };
        const failed =
          'error' in clean || (clean as { result?: { isError?: boolean } }).result?.isError === true;
        return {
          result: clean as JSONRPCMessage,
          details: {
            outcome: 'error' in clean ? 'error' : failed ? 'tool_error' : 'ok',
            latency_ms: Math.round(performance.now() - started),
            redactions,
          },
        };
      })
      .catch((error: unknown) => refusalMessage(message.id, error, lastRequestId));
    await start.toAgent(answer, message.id);
  };

  /**
   * Any other request of the agent's, forwarded as it is. A 401 is renewed through a decision of its
   * own (`mcp_proxy.reauthorize`: the grant still holds, the secret is read afresh and refreshed once).
   */
  const forward = (message: JSONRPCRequest) =>
    deliver(message, message.id, {
      unauthorized: () =>
        deps.requests.use(
          useRequest('mcp_proxy.reauthorize', { mcp_method: message.method.slice(0, 200) }),
          async (use, facts) => {
            Object.assign(facts, proxyFacts());
            await renewAfter401(use, facts);
            return { result: undefined };
          },
        ),
    });

  return {
    caller,
    /** A message from the agent (the transport has checked its session and shape). */
    async fromAgent(message: JSONRPCMessage, requestId: string): Promise<void> {
      lastRequestId = requestId;
      if (isJSONRPCRequest(message)) {
        if (ended) {
          await start.toAgent(refusalMessage(message.id, ended, requestId), message.id);
          return;
        }
        try {
          if (message.method === 'initialize') return await connect(message);
          if (initializeParams === undefined) throw new VaultError('mcp_session_not_found');
          if (message.method === 'tools/call') return await call(message);
          if (message.method === 'tools/list') listRequests.add(message.id);
          const uri = (message.params as { uri?: unknown } | undefined)?.uri;
          if (message.method === 'resources/subscribe' && typeof uri === 'string') subscriptions.add(uri);
          if (message.method === 'resources/unsubscribe' && typeof uri === 'string')
            subscriptions.delete(uri);
          inFlight.add(message.id);
          await forward(message);
        } catch (error) {
          inFlight.delete(message.id);
          listRequests.delete(message.id);
          await start.toAgent(refusalMessage(message.id, error, requestId), message.id);
        }
        return;
      }
      // Notifications and the agent's answers to the server's requests: for a live upstream only.
      if (ended || !upstream) return;
      if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
        const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
        if (id !== undefined) inFlight.delete(id);
        // The upstream will not answer a cancelled call: its wait ends here, and its event says so.
        const cancelled = id === undefined ? undefined : pendingCalls.get(id);
        if (cancelled && id !== undefined) {
          pendingCalls.delete(id);
          cancelled.resolve(new VaultError('mcp_request_cancelled'));
        }
      }
      await upstream.send(message);
    },
    /** Ends the session: the upstream connection closes and a stdio child is killed. */
    async close(): Promise<void> {
      const transport = upstream;
      if (!ended) await recordEnd('ok');
      upstream = undefined;
      ended ??= new VaultError('mcp_session_not_found');
      if (transport) {
        transport.onclose = undefined;
        // A Streamable HTTP upstream keeps each session until told (`DELETE`); without this it held
        // every one of the bench's 10,000 closed sessions (docs/benchmarks.md). Bounded: an upstream
        // that does not answer does not hold up the close, which aborts the request.
        if ('terminateSession' in transport) {
          const told = (transport as { terminateSession(): Promise<void> }).terminateSession();
          await Promise.race([told.catch(() => undefined), delay(terminateWaitMs)]);
        }
        await transport.close().catch(() => undefined);
      }
    },
  };
};

export type ProxySession = ReturnType<typeof openProxySession>;
