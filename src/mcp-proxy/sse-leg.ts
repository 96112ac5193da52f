import { createHash, randomBytes } from 'node:crypto';
import { type JSONRPCMessage, parseJSONRPCMessage } from '@modelcontextprotocol/server';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/database.js';
import type { McpHttpRequest } from './mcp-proxy-service.js';
import type { ProxyCaller } from './proxy-key-auth.js';
import type { ProxySession } from './proxy-session.js';

/**
 * The deprecated HTTP+SSE transport (MCP 2024-11-05) toward agents, for clients that speak nothing
 * newer: `GET /mcp/{proxy}/sse` opens a session and its event stream, whose first event (`endpoint`)
 * names where the client posts its messages (`/mcp/{proxy}/messages?sessionId=…`); every answer,
 * notification and server request comes down the stream. Only the transport is here: the session is
 * the same proxy session as Streamable HTTP's (proxy-session.ts), so the decision point, the audit,
 * the redaction, the tool lists and the pinned definitions are the same code, and every request (the
 * GET and each POST) is admitted by the same Origin check and proxy key.
 *
 * The stream is one HTTP response held by one process, so a message posted to another replica cannot
 * be answered on it. Each stream is written to the store (`mcp_sessions`, under its own id namespace
 * so a Streamable HTTP request can never continue it) only so that another replica can tell "this
 * session's stream is open elsewhere: route this transport with sticky sessions"
 * (`mcp_sse_session_elsewhere`) from "no such session".
 */

export interface SseLegDeps {
  store: Pick<Store, 'db'>;
  clock: Clock;
  /** The request's Origin check and proxy key, refusals recorded (the Streamable HTTP path's). */
  admit: (input: McpHttpRequest) => Promise<ProxyCaller>;
  /** A proxy session whose messages to the agent go to `toAgent`. */
  openSession: (
    caller: ProxyCaller,
    input: McpHttpRequest,
    toAgent: (message: JSONRPCMessage) => Promise<void>,
  ) => ProxySession;
  /** A session without a message this long is closed, its stream and upstream with it. */
  idleMs: number;
  /** How often a comment is written to an idle stream, so intermediaries keep it open (default 15 s). */
  keepAliveMs?: number | undefined;
}

interface SseHeld {
  session: ProxySession;
  caller: ProxyCaller;
  end: () => Promise<void>;
  lastSeen: number;
  /** When the stored row's `last_seen_at` was last moved (at most once a minute). */
  touched: number;
}

/** Distinct from a Streamable HTTP session's hash, so neither transport can pick up the other's id. */
const sseIdHash = (id: string) => createHash('sha256').update(`sse:${id}`).digest('hex');

const encoder = new TextEncoder();

const errorResponse = (error: VaultError, requestId: string) =>
  Response.json(
    { error: { code: error.code, message: error.message, request_id: requestId } },
    { status: error.status, headers: error.status === 401 ? { 'www-authenticate': 'Bearer' } : {} },
  );

export const createSseLeg = (deps: SseLegDeps) => {
  const { clock, idleMs, keepAliveMs = 15_000 } = deps;
  const { db } = deps.store;
  const streams = new Map<string, SseHeld>();

  /** Keeps the stored row alive for the other replicas' sweeps (at most one write a minute). */
  const touch = async (id: string, held: SseHeld) => {
    const now = clock.now().getTime();
    held.lastSeen = now;
    if (now - held.touched < 60_000) return;
    held.touched = now;
    await db
      .updateTable('mcp_sessions')
      .set({ last_seen_at: new Date(now).toISOString() })
      .where('id_hash', '=', sseIdHash(id))
      .execute();
  };

  const refused = async (input: McpHttpRequest, run: () => Promise<Response>): Promise<Response> => {
    try {
      return await run();
    } catch (error) {
      return errorResponse(
        isVaultError(error) ? error : new VaultError('internal_error', undefined, { cause: error }),
        input.requestId,
      );
    }
  };

  /** `GET …/sse`: a new session, its stream opened with the `endpoint` event. */
  const open = (input: McpHttpRequest) =>
    refused(input, async () => {
      const caller = await deps.admit(input);
      const id = randomBytes(24).toString('base64url');
      const now = clock.now();
      await db
        .insertInto('mcp_sessions')
        .values({
          id_hash: sseIdHash(id),
          namespace: caller.principal.namespace,
          proxy_id: caller.proxy.id,
          key_id: caller.keyId,
          state: JSON.stringify({ transport: 'sse' }),
          created_at: now.toISOString(),
          last_seen_at: now.toISOString(),
        })
        .execute();

      let controller!: ReadableStreamDefaultController<Uint8Array>;
      const stream = new ReadableStream<Uint8Array>({
        start: (c) => {
          controller = c;
        },
        cancel: () => close(),
      });
      let closed = false;
      const write = (text: string) => {
        if (!closed) controller.enqueue(encoder.encode(text));
      };
      const keepAlive = setInterval(() => {
        if (clock.now().getTime() - held.lastSeen > idleMs) return void close().catch(() => undefined);
        write(': keep-alive\n\n');
        void touch(id, held).catch(() => undefined);
      }, keepAliveMs);
      keepAlive.unref();
      const close = async () => {
        if (closed) return;
        closed = true;
        clearInterval(keepAlive);
        streams.delete(id);
        try {
          controller.close();
        } catch {
          // already closed or cancelled by the client's disconnect
        }
        await held.session.close();
        await db.deleteFrom('mcp_sessions').where('id_hash', '=', sseIdHash(id)).execute();
      };
      const held: SseHeld = {
        caller,
        session: deps.openSession(caller, input, async (message) =>
          write(`event: message\ndata: ${JSON.stringify(message)}\n\n`),
        ),
        end: close,
        lastSeen: now.getTime(),
        touched: now.getTime(),
      };
      streams.set(id, held);
      input.request.signal.addEventListener('abort', () => void close().catch(() => undefined), {
        once: true,
      });
      // The path the client connected to, `/sse` swapped for `/messages` (as the SDK's servers do).
      const endpoint = new URL(input.request.url).pathname.replace(/\/sse$/, '/messages');
      write(`event: endpoint\ndata: ${endpoint}?sessionId=${id}\n\n`);
      return new Response(stream, {
        headers: {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache, no-transform',
          // Reverse proxies that buffer responses (nginx) would hold the events back.
          'x-accel-buffering': 'no',
        },
      });
    });

  /** `POST …/messages?sessionId=…`: one message (or a batch) into the session; answers come down its stream. */
  const post = (input: McpHttpRequest) =>
    refused(input, async () => {
      const caller = await deps.admit(input);
      const id = new URL(input.request.url).searchParams.get('sessionId') ?? '';
      const held = streams.get(id);
      // A session is a handle, never authentication: only the key that opened it may use it.
      if (!held || held.caller.keyId !== caller.keyId) {
        const elsewhere =
          !held &&
          id !== '' &&
          (await db
            .selectFrom('mcp_sessions')
            .select('key_id')
            .where('id_hash', '=', sseIdHash(id))
            .where('key_id', '=', caller.keyId)
            .executeTakeFirst());
        throw new VaultError(elsewhere ? 'mcp_sse_session_elsewhere' : 'mcp_session_not_found');
      }
      let messages: JSONRPCMessage[];
      try {
        messages = (Array.isArray(input.body) ? input.body : [input.body]).map((m) => parseJSONRPCMessage(m));
      } catch {
        throw new VaultError('invalid_request', 'The body is not a JSON-RPC message.');
      }
      await touch(id, held);
      for (const message of messages)
        void held.session.fromAgent(message, input.requestId).catch(() => undefined);
      return new Response('Accepted', { status: 202 });
    });

  return {
    open,
    post,
    /** The number of open streams (metrics, tests). */
    count: () => streams.size,
    /** Ends every stream (their sessions, upstreams and stdio children with them). */
    async stop() {
      for (const held of [...streams.values()]) await held.end().catch(() => undefined);
    },
  };
};

export type SseLeg = ReturnType<typeof createSseLeg>;
