import { createHash } from 'node:crypto';
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
import type { AgentRequests } from '../access/agent-request.js';
import type { AuditAction, AuditDetails, AuditRecorder } from '../audit/audit-types.js';
import { errorRegistry } from '../errors/error-registry.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { createTextRedactor, redactMessage, type TextRedactor } from './message-redaction.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import { toolPermitted } from './proxy-rules.js';
import type { ToolPins } from './tool-pins.js';
import { type RenderedSecret, renderSecret, upstreamTransport, type UpstreamOptions } from './upstream.js';

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

/** How long closing a session waits for the upstream to acknowledge the end of its session. */
const terminateWaitMs = 2_000;
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

const argumentsHash = (args: unknown): string =>
  createHash('sha256')
    .update(JSON.stringify(args ?? {}))
    .digest('hex');

export interface SessionDeps {
  requests: Pick<AgentRequests, 'use'>;
  audit: Pick<AuditRecorder, 'record'>;
  clock: Clock;
  fetch: UpstreamOptions['fetch'];
  pins: Pick<ToolPins, 'observe' | 'callable'>;
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

interface Pending {
  /** The upstream's answer, or why there will be none (the upstream ended). */
  resolve: (answer: JSONRPCMessage | VaultError) => void;
}

export const openProxySession = (deps: SessionDeps, start: SessionStart) => {
  const { caller } = start;
  const { proxy } = caller;
  let upstream: Transport | undefined;
  let secret: RenderedSecret | undefined;
  let redactor: TextRedactor = createTextRedactor([]);
  let ended: VaultError | undefined;
  /** Requests of the agent awaiting the upstream's answer: the vault's own (calls) and forwarded ones. */
  const pendingCalls = new Map<RequestId, Pending>();
  const listRequests = new Set<RequestId>();
  const inFlight = new Set<RequestId>();
  /** progressToken → the agent request it belongs to, so progress rides that request's stream. */
  const progressOf = new Map<string | number, RequestId>();
  let lastRequestId = start.requestId;

  const useRequest = (action: AuditAction, attributes: Record<string, string>, client = start.client) => ({
    principal: caller.principal,
    agentRef: caller.principal.agentId,
    service: proxy.credential,
    scope: undefined,
    channel: 'mcp' as const,
    action,
    client,
    requestId: lastRequestId,
    proxy: { id: proxy.id, name: proxy.name, keyId: caller.keyId },
    endUser: caller.endUser,
    attributes,
  });

  const proxyFacts = (): AuditDetails => ({
    proxy_id: proxy.id,
    proxy_name: proxy.name,
    proxy_key_id: caller.keyId,
    end_user: caller.endUser ?? null,
  });

  /** Takes the secret of an allowed use: what the upstream's next request injects, and what is redacted. */
  const adopt = (type: Parameters<typeof renderSecret>[1], fields: Parameters<typeof renderSecret>[2]) => {
    const next = renderSecret(proxy, type, fields);
    const known = new Set([...(secret?.values ?? []), ...next.values]);
    secret = next;
    redactor = createTextRedactor(known);
  };

  const recordRedactions = async (count: number, where: string) => {
    if (count === 0) return;
    await deps.audit.record({
      namespace: caller.principal.namespace,
      actor: { type: 'agent', id: caller.principal.agentId },
      action: 'mcp_proxy.redact',
      target: { type: 'mcp_proxy', id: proxy.id },
      decision: 'allow',
      reason: 'ok',
      requestId: lastRequestId,
      details: {
        ...proxyFacts(),
        agent_id: caller.principal.agentId,
        agent_name: caller.principal.agentName,
        redactions: count,
        where,
      },
    });
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
      await recordRedactions(count, 'response');
      inFlight.delete(id);
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

  /** The session's end, recorded once: `ok` when closed (DELETE, idle, shutdown), else why it ended. */
  let endRecorded = false;
  const recordEnd = (reason: string) => {
    if (endRecorded || !upstream) return Promise.resolve();
    endRecorded = true;
    return deps.audit
      .record({
        namespace: caller.principal.namespace,
        actor: { type: 'agent', id: caller.principal.agentId },
        action: 'mcp_proxy.session.end',
        target: { type: 'mcp_proxy', id: proxy.id },
        decision: reason === 'ok' ? 'allow' : 'deny',
        reason,
        requestId: lastRequestId,
        details: {
          ...proxyFacts(),
          agent_id: caller.principal.agentId,
          agent_name: caller.principal.agentName,
        },
      })
      .catch(() => undefined);
  };

  const endWith = (error: VaultError) => {
    if (ended) return;
    ended = error;
    for (const pending of pendingCalls.values()) pending.resolve(error);
    pendingCalls.clear();
    for (const id of inFlight) void start.toAgent(refusalMessage(id, error, lastRequestId), id);
    inFlight.clear();
    void recordEnd(error.code);
  };

  const connect = async (message: JSONRPCRequest) => {
    await deps.requests.use(
      useRequest('mcp_proxy.connect', { mcp_method: 'initialize' }),
      async (use, facts) => {
        adopt(use.read.credential.type, use.read.secret);
        Object.assign(facts, proxyFacts());
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
          endWith(
            new VaultError(proxy.transport === 'stdio' ? 'mcp_upstream_exited' : 'mcp_upstream_unavailable'),
          );
        transport.onerror = () => undefined;
        try {
          await transport.start();
        } catch (error) {
          throw new VaultError('mcp_upstream_unavailable', undefined, { cause: error });
        }
        upstream = transport;
        return { result: undefined };
      },
    );
    inFlight.add(message.id);
    await (upstream as Transport).send(message);
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
        if (!(await deps.pins.callable(proxy, tool))) {
          throw new VaultError(
            'mcp_tool_withheld',
            `The definition of "${tool}" is not the accepted one (changed or new upstream, or not listed yet): list the tools, and ask an admin to accept it (\`tokenvault proxy tools accept ${proxy.name}\`).`,
          );
        }
        adopt(use.read.credential.type, use.read.secret);
        if (ended) throw ended;
        const token = params._meta?.progressToken;
        if (token !== undefined) progressOf.set(token, message.id);
        const response = await new Promise<JSONRPCMessage | VaultError>((resolve) => {
          pendingCalls.set(message.id, { resolve });
          (upstream as Transport)
            .send(message)
            .catch(() => resolve(new VaultError('mcp_upstream_unavailable')));
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
          if (!upstream) throw new VaultError('mcp_session_not_found');
          if (message.method === 'tools/call') return await call(message);
          if (message.method === 'tools/list') listRequests.add(message.id);
          inFlight.add(message.id);
          await upstream.send(message);
        } catch (error) {
          inFlight.delete(message.id);
          await start.toAgent(refusalMessage(message.id, error, requestId), message.id);
        }
        return;
      }
      if (ended || !upstream) return;
      if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
        const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
        if (id !== undefined) inFlight.delete(id);
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
