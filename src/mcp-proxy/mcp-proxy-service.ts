import { createHash, randomBytes } from 'node:crypto';
import {
  isInitializeRequest,
  type JSONRPCMessage,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import type { AccessClient } from '../access/access-types.js';
import { type AgentRequestDeps, createAgentRequests } from '../access/agent-request.js';
import type { AuditDetails } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { GuardedFetch } from '../net/outbound-guard.js';
import { openProxySession, type ProxySession, type SessionDeps } from './proxy-session.js';
import type { ToolPins } from './tool-pins.js';
import { authenticateProxyKey, presentedProxyKey } from './proxy-key-auth.js';
import { declaredCapabilities } from './modern-exchange.js';
import { createSseLeg } from './sse-leg.js';
import {
  classify,
  closeSharedSession,
  ladderRefusal,
  openSharedSession,
  serveModern,
  type SharedSession,
  sharedIdle,
  standardHeaderMismatch,
} from './stateless-leg.js';

/**
 * The endpoint `/mcp/{proxy}` (transport-free: a web `Request` in, a `Response` out), for the MCP
 * revisions with sessions (`initialize`, `Mcp-Session-Id`) and the stateless 2026-07-28 one
 * (stateless-leg.ts), told apart per request by the SDK's classifier. Each request is authenticated afresh by
 * its proxy key (a session id is a handle, never authentication: it is honoured only with the key
 * that opened it), its `Origin` checked, and handed to the session's transport (the SDK's).
 */

export interface McpProxyServiceDeps extends AgentRequestDeps {
  fetch: GuardedFetch;
  /** After an upstream 401 on an OAuth credential: one refresh, and the newer secret (proxy-session.ts). */
  reauthorize?: SessionDeps['reauthorize'];
  pins: ToolPins;
  log: (message: string, details: Record<string, unknown>) => void;
  /** A session unused this long is closed, its upstream with it (default 30 min). */
  idleMs?: number | undefined;
  /** How often idle sessions are looked for (default: a quarter of `idleMs`, from 1 s to 60 s). */
  sweepMs?: number | undefined;
}

export interface McpHttpRequest {
  proxyName: string;
  request: Request;
  /** The body, parsed (POST). */
  body: unknown;
  client: AccessClient;
  requestId: string;
}

interface Held {
  session: ProxySession;
  transport: WebStandardStreamableHTTPServerTransport;
  lastSeen: number;
  /** When this replica last moved the stored session's `last_seen_at` (at most once a minute). */
  touched: number;
}

/** Session ids are stored hashed: a row read from the store is no handle to anyone's session. */
const idHash = (id: string) => createHash('sha256').update(id).digest('hex');

const errorResponse = (error: VaultError, requestId: string, headers: Record<string, string> = {}) =>
  Response.json(
    { error: { code: error.code, message: error.message, request_id: requestId } },
    { status: error.status, headers },
  );

/**
 * A browser page on another site must not reach the proxy through a user's machine (DNS rebinding):
 * a request that carries an `Origin` is served only when that origin is the vault's own host.
 * Clients that are not browsers send none.
 */
export const originAllowed = (origin: string | null, host: string | null): boolean => {
  if (origin === null) return true;
  try {
    return host !== null && new URL(origin).host === host;
  } catch {
    return false;
  }
};

export const createMcpProxyService = (deps: McpProxyServiceDeps) => {
  const requests = createAgentRequests(deps);
  const { clock, idleMs = 30 * 60_000 } = deps;
  const sweepMs = deps.sweepMs ?? Math.min(60_000, Math.max(1000, Math.floor(idleMs / 4)));
  const sessions = new Map<string, Held>();
  const sessionDeps: SessionDeps = {
    requests,
    audit: deps.audit,
    clock,
    fetch: deps.fetch,
    reauthorize: deps.reauthorize,
    pins: deps.pins,
    log: deps.log,
  };
  /** The 2026-07-28 leg: shared upstream sessions, by proxy key and declared client capabilities. */
  const sharedSessions = new Map<string, { shared: SharedSession; lastSeen: number }>();
  let sweeper: NodeJS.Timeout | undefined;

  const closeSession = async (id: string) => {
    const held = sessions.get(id);
    if (!held) return;
    sessions.delete(id);
    await held.session.close();
    await held.transport.close().catch(() => undefined);
  };

  const sweep = async () => {
    const oldest = clock.now().getTime() - idleMs;
    for (const [id, held] of sessions) if (held.lastSeen < oldest) await closeSession(id);
    // Stored sessions no replica has used for as long are over everywhere (`last_seen_at` moves at
    // most once a minute, hence the minute more).
    await deps.store.db
      .deleteFrom('mcp_sessions')
      .where('last_seen_at', '<', new Date(oldest - 60_000).toISOString())
      .execute();
    for (const [keyId, held] of sharedSessions)
      if (held.lastSeen < oldest && sharedIdle(held.shared)) await closeShared(keyId);
  };

  const closeShared = async (keyId: string) => {
    const held = sharedSessions.get(keyId);
    if (!held) return;
    sharedSessions.delete(keyId);
    await closeSharedSession(held.shared);
  };

  /**
   * The shared session of a proxy key and the client capabilities a request declares (2026-07-28
   * leg), opened on its first request; one whose upstream never started is replaced.
   */
  const sharedFor = (
    caller: Awaited<ReturnType<typeof authenticateProxyKey>>,
    input: McpHttpRequest,
    capabilities: string[],
  ) => {
    const key = `${caller.keyId} ${capabilities.join(',')}`;
    const found = sharedSessions.get(key);
    if (found && !found.shared.ended) {
      found.lastSeen = clock.now().getTime();
      return found.shared;
    }
    if (found) void closeShared(key);
    const opened = openSharedSession(
      (toAgent) =>
        openProxySession(sessionDeps, { caller, client: input.client, requestId: input.requestId, toAgent }),
      capabilities,
      input.requestId,
    );
    // A refused or failed start is not kept: the next request tries afresh (and is decided afresh).
    opened.ready.catch(() => {
      if (sharedSessions.get(key)?.shared === opened) void closeShared(key);
    });
    sharedSessions.set(key, { shared: opened, lastSeen: clock.now().getTime() });
    return opened;
  };

  /**
   * A session's transport and proxy session. A new one gets its session id once `initialize` is
   * answered, and is written to the store (`mcp_sessions`: the key that opened it and the client's
   * `initialize` parameters), so that another replica can continue it. A continued one (`restored`)
   * keeps the id it had.
   */
  const open = (
    caller: Awaited<ReturnType<typeof authenticateProxyKey>>,
    input: McpHttpRequest,
    restored?: string,
  ) => {
    // `transport` is only used once a message flows, after both exist.
    const session = openProxySession(sessionDeps, {
      caller,
      client: input.client,
      requestId: input.requestId,
      toAgent: (message: JSONRPCMessage, related) =>
        transport.send(message, related === undefined ? undefined : { relatedRequestId: related }),
    });
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => restored ?? randomBytes(24).toString('base64url'),
      onsessioninitialized: async (id) => {
        const now = clock.now();
        sessions.set(id, { session, transport, lastSeen: now.getTime(), touched: now.getTime() });
        if (restored) return;
        await deps.store.db
          .insertInto('mcp_sessions')
          .values({
            id_hash: idHash(id),
            namespace: caller.principal.namespace,
            proxy_id: caller.proxy.id,
            key_id: caller.keyId,
            state: JSON.stringify({ initialize: (input.body as { params?: unknown }).params ?? {} }),
            created_at: now.toISOString(),
            last_seen_at: now.toISOString(),
          })
          .execute();
      },
      onsessionclosed: async (id) => {
        await closeSession(id);
        await deps.store.db.deleteFrom('mcp_sessions').where('id_hash', '=', idHash(id)).execute();
      },
    });
    transport.onmessage = (message) =>
      void session.fromAgent(message, input.requestId).catch(() => undefined);
    return { transport, session };
  };

  /**
   * A session another replica started (or this one closed when idle): opened here under the same
   * id, its upstream connected with the client's stored `initialize` parameters. The agent-facing
   * session is not initialized again: the `initialize` and `notifications/initialized` are the
   * vault's own, and their answers go nowhere.
   */
  const continued = async (
    sessionId: string,
    caller: Awaited<ReturnType<typeof authenticateProxyKey>>,
    input: McpHttpRequest,
  ): Promise<Held | undefined> => {
    const row = await deps.store.db
      .selectFrom('mcp_sessions')
      .select(['key_id', 'state'])
      .where('id_hash', '=', idHash(sessionId))
      .executeTakeFirst();
    if (!row || row.key_id !== caller.keyId) return undefined;
    const { initialize } = JSON.parse(row.state) as { initialize: Record<string, unknown> };
    const { transport } = open(caller, input, sessionId);
    const post = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
      const response = await transport.handleRequest(
        new Request(input.request.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...headers,
          },
          body: JSON.stringify(body),
        }),
        { parsedBody: body },
      );
      await response.text();
      return response.status;
    };
    const status = await post({ jsonrpc: '2.0', id: 0, method: 'initialize', params: initialize });
    const held = sessions.get(sessionId);
    if (status !== 200 || !held) return undefined;
    const version = typeof initialize.protocolVersion === 'string' ? initialize.protocolVersion : '';
    await post(
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sessionId, ...(version ? { 'mcp-protocol-version': version } : {}) },
    );
    return held;
  };

  /** Concurrent first requests for one session (a POST and the client's GET stream) continue it once. */
  const continuing = new Map<string, Promise<Held | undefined>>();
  const continuedOnce = (
    sessionId: string,
    caller: Awaited<ReturnType<typeof authenticateProxyKey>>,
    input: McpHttpRequest,
  ) => {
    const pending = continuing.get(sessionId);
    if (pending) return pending;
    const started = continued(sessionId, caller, input).finally(() => continuing.delete(sessionId));
    continuing.set(sessionId, started);
    return started;
  };

  /**
   * Learns from the store whether another replica ended the session (`DELETE`): then it ends here
   * too, so a session ended through one replica is refused by the others on their next request (one
   * read by primary key, as the proxy key is read afresh). It also keeps the stored session alive
   * for the other replicas' sweeps (at most one write a minute).
   */
  const touch = async (sessionId: string, held: Held) => {
    const now = clock.now();
    held.lastSeen = now.getTime();
    let present: boolean;
    if (now.getTime() - held.touched < 60_000) {
      present =
        (await deps.store.db
          .selectFrom('mcp_sessions')
          .select('id_hash')
          .where('id_hash', '=', idHash(sessionId))
          .executeTakeFirst()) !== undefined;
    } else {
      held.touched = now.getTime();
      const [updated] = await deps.store.db
        .updateTable('mcp_sessions')
        .set({ last_seen_at: now.toISOString() })
        .where('id_hash', '=', idHash(sessionId))
        .execute();
      present = Number(updated?.numUpdatedRows ?? 0) > 0;
    }
    if (!present) {
      await closeSession(sessionId);
      throw new VaultError('mcp_session_not_found');
    }
  };

  /**
   * The request's proxy key, or the refusal, recorded (`mcp_proxy.authenticate`, naming the key and
   * its agent when the key was found) before it is answered.
   */
  const authenticated = async (input: McpHttpRequest) => {
    const facts: AuditDetails = {};
    try {
      return await authenticateProxyKey(
        deps.store.db,
        clock,
        presentedProxyKey(Object.fromEntries(input.request.headers)),
        input.proxyName,
        facts,
      );
    } catch (error) {
      if (!isVaultError(error)) throw error;
      const namespace = await deps.store.db
        .selectFrom('agents')
        .select('namespace')
        .where('id', '=', String(facts.agent_id ?? ''))
        .executeTakeFirst();
      await deps.audit.record({
        namespace: namespace?.namespace ?? 'default',
        actor: facts.agent_id
          ? { type: 'agent', id: String(facts.agent_id) }
          : { type: 'anonymous', id: null },
        action: 'mcp_proxy.authenticate',
        target: { type: 'mcp_proxy', id: input.proxyName.slice(0, 200) },
        decision: 'deny',
        reason: error.code,
        client: { ip: input.client.ip, userAgent: input.client.userAgent },
        requestId: input.requestId,
        details: facts,
      });
      throw error;
    }
  };

  /** The deprecated HTTP+SSE transport (sse-leg.ts): the same admission and the same proxy session. */
  const sse = createSseLeg({
    store: deps.store,
    clock,
    idleMs,
    admit: async (input) => {
      if (!originAllowed(input.request.headers.get('origin'), input.request.headers.get('host')))
        throw new VaultError('origin_refused');
      return authenticated(input);
    },
    openSession: (caller, input, toAgent) =>
      openProxySession(sessionDeps, { caller, client: input.client, requestId: input.requestId, toAgent }),
  });

  return {
    /** `GET /mcp/{proxy}/sse` and `POST /mcp/{proxy}/messages` (the HTTP+SSE transport). */
    sse: { open: sse.open, post: sse.post },

    async handle(input: McpHttpRequest): Promise<Response> {
      const { request, requestId } = input;
      try {
        if (!originAllowed(request.headers.get('origin'), request.headers.get('host'))) {
          throw new VaultError('origin_refused');
        }
        const caller = await authenticated(input);
        const sessionId = request.headers.get('mcp-session-id');
        if (sessionId === null) {
          const route = classify(request, input.body);
          if (route.kind === 'reject') return await ladderRefusal(deps.audit, caller, input, route);
          if (route.kind === 'modern') {
            // Notifications have nothing to answer in a stateless exchange (no stream to cancel).
            if (route.messageKind === 'notification') return new Response(null, { status: 202 });
            const mismatch = standardHeaderMismatch(request, route.message);
            if (mismatch !== undefined) {
              return await ladderRefusal(deps.audit, caller, input, {
                kind: 'reject',
                rung: 'standard-header-validation',
                cell: 'name-header-mismatch',
                httpStatus: 400,
                code: -32020,
                message: `Bad Request: the request headers and body disagree: ${mismatch}`,
                data: {
                  mismatch: { header: request.headers.get('mcp-name') ?? '(missing)', body: mismatch },
                },
                settled: true,
              });
            }
            const capabilities = declaredCapabilities(route.message);
            return await serveModern(
              sharedFor(caller, input, capabilities),
              route.message,
              request,
              requestId,
            );
          }
          if (request.method !== 'POST' || !isInitializeRequest(input.body)) {
            throw new VaultError(
              'mcp_session_not_found',
              'Start a session with `initialize` (this endpoint serves the MCP revisions with sessions).',
            );
          }
          const { transport } = open(caller, input);
          return await transport.handleRequest(request, { parsedBody: input.body });
        }
        // A session is a handle, never authentication: only the key that opened it may use it.
        const held = sessions.get(sessionId) ?? (await continuedOnce(sessionId, caller, input));
        if (!held || held.session.caller.keyId !== caller.keyId)
          throw new VaultError('mcp_session_not_found');
        await touch(sessionId, held);
        held.transport.onmessage = (message) =>
          void held.session.fromAgent(message, requestId).catch(() => undefined);
        return await held.transport.handleRequest(request, { parsedBody: input.body });
      } catch (error) {
        const vault = isVaultError(error)
          ? error
          : new VaultError('internal_error', undefined, { cause: error });
        if (!isVaultError(error))
          deps.log('mcp proxy request failed', { error: String(error), request_id: requestId });
        return errorResponse(vault, requestId, vault.status === 401 ? { 'www-authenticate': 'Bearer' } : {});
      }
    },

    /** The number of open sessions (metrics, tests). */
    sessionCount: () => sessions.size + sharedSessions.size + sse.count(),

    start() {
      sweeper = setInterval(() => void sweep().catch(() => undefined), sweepMs);
      sweeper.unref();
    },

    /** Closes every session (their upstreams and stdio children with them). */
    async stop() {
      if (sweeper) clearInterval(sweeper);
      for (const id of [...sessions.keys()]) await closeSession(id);
      for (const keyId of [...sharedSessions.keys()]) await closeShared(keyId);
      await sse.stop();
    },
  };
};

export type McpProxyService = ReturnType<typeof createMcpProxyService>;
