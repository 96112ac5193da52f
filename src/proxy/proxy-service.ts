import { type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable, Transform } from 'node:stream';
import type { AccessClient } from '../access/access-types.js';
import { type AgentRequestDeps, type CredentialUse, createAgentRequests } from '../access/agent-request.js';
import type { AgentPrincipal } from '../agents/agent-types.js';
import type { AuditDetails } from '../audit/audit-types.js';
import { VaultError } from '../errors/vault-error.js';
import { type OutboundGuard, outboundRefusal } from '../net/outbound-guard.js';
import type { ApiBaseFallback } from './api-base.js';
import { agentResponseHeaders, renderInjections, upstreamRequestHeaders } from './proxy-headers.js';
import { createRedactor, defaultRedactionCap, scannableBody, secretsToRedact } from './redaction.js';
import { assertHostAllowed, explicitlyAllowed, upstreamTarget } from './upstream-target.js';

/**
 * The HTTP proxy (`/v1/proxy/{service}/{path…}`): the agent request path (src/access/agent-request.ts)
 * on the `proxy` channel, whose act is forwarding the agent's call with the credential injected. A
 * proxy-only grant suffices; the agent never sees the secret.
 *
 *   authenticate (the route) → decide → read the secret → the upstream URL and its host → the guard
 *   → forward, streaming the agent's body → the upstream's answer, redacted → record → answer
 *
 * Every call is exactly one `credential.proxy` event. It is recorded when the upstream's status and
 * headers are in (and, for a body small enough to scan, the whole body), before anything reaches the
 * agent: when the record cannot be written the agent gets `audit_unavailable` and the upstream's
 * answer is dropped. A body streamed after that point is counted in the request log line, not in the
 * event (its length is in the event when the upstream declared it).
 */

export interface ProxyRequest {
  principal: AgentPrincipal;
  service: string;
  method: string;
  /** Everything after `/v1/proxy/{service}` and before `?`, as sent (still percent-encoded). */
  rawPath: string;
  /** Everything after `?`, as sent. */
  rawQuery: string;
  /** `?user=`: selects a per-user credential. */
  endUser: string | undefined;
  /** Node's flat [name, value, …] header list of the agent's request. */
  rawHeaders: readonly string[];
  /** The agent's request body, streamed upstream as it arrives; undefined when there is none. */
  body: Readable | undefined;
  client: AccessClient;
  requestId: string;
  /** Facts the event carries besides the call's own (the vault's MCP `call_api`: `via: 'mcp'`). */
  details?: AuditDetails | undefined;
}

export interface ProxyResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** A scanned (redacted) body, the upstream's stream, or nothing. */
  body: Buffer | Readable | null;
}

/**
 * What happens on an upstream 401 for an OAuth credential: the hook refreshes the token (or waits for
 * the refresh in flight) and answers `retry` when there is a newer one, and the call is sent once more
 * with it. Only bodiless calls: a body already streamed upstream cannot be replayed.
 */
export type UnauthorizedHook = (context: {
  namespace: string;
  credentialId: string;
  method: string;
  /** The secret version the upstream refused. */
  version: number;
}) => Promise<'retry' | 'pass'>;

const passUnauthorized: UnauthorizedHook = async () => 'pass';

export interface ProxyServiceDeps extends AgentRequestDeps {
  outbound: Pick<OutboundGuard, 'connectOptions'>;
  /** How long the upstream may take to answer with its status and headers (default 30 s). */
  timeoutMs?: number | undefined;
  /** The largest text body scanned for the secret (default 1 MiB); larger ones stream unmodified. */
  redactionCap?: number | undefined;
  onUnauthorized?: UnauthorizedHook | undefined;
  /**
   * The API base URL of a credential that has none of its own (an OAuth provider's, from the catalog:
   * `catalogApiBase` in ./api-base.ts). Absent: such a credential is `proxy_not_configured`.
   */
  apiBase?: ApiBaseFallback | undefined;
}

const nullBodyStatuses = new Set([204, 205, 304]);

/** The upstream's declared `Content-Length`, when it declared a valid one. */
const declaredLength = (response: IncomingMessage): number | null => {
  const value = response.headers['content-length'];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : null;
};

/** Counts the bytes that pass. */
const counter = () => {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, bytes: () => bytes };
};

/** Reads at most `cap` bytes: the whole body when it fits, else what was read and the rest to stream. */
const readUpTo = async (
  body: IncomingMessage,
  cap: number,
): Promise<{ whole: Buffer } | { head: Buffer[]; rest: AsyncIterator<Buffer> }> => {
  const iterator = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { whole: Buffer.concat(head) };
    head.push(next.value);
    size += next.value.length;
    if (size > cap) return { head, rest: iterator };
  }
};

const continued = (head: Buffer[], rest: AsyncIterator<Buffer>): Readable =>
  Readable.from(
    (async function* () {
      yield* head;
      for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
    })(),
    { objectMode: false },
  );

/** A failed connection as the agent sees it: the guard's refusal, a timeout, or unreachable. */
const upstreamFailure = (error: unknown): VaultError => {
  const refusal = outboundRefusal(error);
  // The registry's message only: the guard's names the address the host resolved to, which is the
  // vault's network to know, not the agent's.
  if (refusal) return new VaultError('proxy_destination_refused', undefined, { cause: refusal });
  if ((error as Error).name === 'TimeoutError') return new VaultError('upstream_timeout');
  return new VaultError('upstream_unreachable', undefined, { cause: error });
};

export const createProxyService = (deps: ProxyServiceDeps) => {
  const requests = createAgentRequests(deps);
  const {
    outbound,
    clock,
    timeoutMs = 30_000,
    redactionCap = defaultRedactionCap,
    onUnauthorized = passUnauthorized,
    apiBase,
  } = deps;

  /** Sends the call and resolves with the upstream's response head (the body still to read). */
  const send = (
    url: URL,
    options: RequestOptions,
    body: Readable | undefined,
  ): Promise<{ response: IncomingMessage; sent: () => number }> => {
    const count = counter();
    return new Promise((resolve, reject) => {
      const outgoing = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options);
      const timer = setTimeout(() => {
        const error = new Error(`no answer within ${timeoutMs} ms`);
        error.name = 'TimeoutError';
        outgoing.destroy(error);
      }, timeoutMs);
      outgoing.once('response', (response) => {
        clearTimeout(timer);
        resolve({ response, sent: count.bytes });
      });
      outgoing.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      if (body) {
        body.once('error', (error) => outgoing.destroy(error));
        body.pipe(count.stream).pipe(outgoing);
      } else outgoing.end();
    });
  };

  const forward = async (
    request: ProxyRequest,
    { allowed, read }: CredentialUse,
    facts: AuditDetails,
    retried = false,
  ): Promise<ProxyResponse> => {
    const credential = read.credential;
    facts.method = request.method;
    // TODO(per-user): select the end user's credential by `?user=` once per-user credentials exist;
    // until then only a credential stored for that very subject matches.
    if (request.endUser !== undefined && credential.subject !== request.endUser) {
      throw new VaultError('credential_not_granted');
    }
    const baseUrl =
      credential.baseUrl ??
      (await apiBase?.({
        namespace: allowed.namespace,
        credentialId: allowed.credentialId,
        type: credential.type,
      }));
    if (!baseUrl) throw new VaultError('proxy_not_configured');
    const injected = renderInjections(credential.type, credential.injections, read.secret);
    const target = upstreamTarget(baseUrl, request.rawPath, request.rawQuery, injected.query);
    facts.upstream_host = target.url.host;
    facts.path = target.path.slice(0, 500);
    assertHostAllowed(target.url, baseUrl, credential.allowedHosts);
    let connect: Pick<RequestOptions, 'lookup'>;
    try {
      connect = outbound.connectOptions(target.url, explicitlyAllowed(credential.allowedHosts));
    } catch (error) {
      throw upstreamFailure(error);
    }
    const headers = upstreamRequestHeaders(request.rawHeaders, injected.headers, target.url.host);

    const started = clock.now().getTime();
    let upstream: Awaited<ReturnType<typeof send>>;
    try {
      upstream = await send(target.url, { method: request.method, headers, ...connect }, request.body);
    } catch (error) {
      throw upstreamFailure(error);
    }
    const { response } = upstream;
    const status = response.statusCode ?? 502;
    if (status === 401 && credential.type === 'oauth2' && request.body === undefined && !retried) {
      // Refused although not expired by our clock (revoked early, clock skew): one refresh, one retry.
      const verdict = await onUnauthorized({
        namespace: allowed.namespace,
        credentialId: allowed.credentialId,
        method: request.method,
        version: read.version,
      });
      if (verdict === 'retry') {
        response.resume();
        facts.retried_after_401 = true;
        const again = await deps.credentials.readCurrentSecret(allowed);
        facts.version = again.version;
        return forward(request, { allowed, read: again }, facts, true);
      }
    }

    const redact = createRedactor(secretsToRedact(credential.type, read.secret));
    const responseHeaders = agentResponseHeaders(response.headers, redact);
    let body: Buffer | Readable | null;
    let bytesOut: number | null;
    let scanned = false;
    if (request.method === 'HEAD' || nullBodyStatuses.has(status)) {
      response.resume();
      body = null;
      bytesOut = 0;
    } else if (scannableBody(response.headers)) {
      const part = await readUpTo(response, redactionCap);
      if ('whole' in part) {
        body = redact.bytes(part.whole);
        responseHeaders['content-length'] = String(body.length);
        bytesOut = body.length;
        scanned = true;
      } else {
        body = continued(part.head, part.rest);
        bytesOut = declaredLength(response);
      }
    } else {
      body = response;
      bytesOut = declaredLength(response);
    }
    Object.assign(facts, {
      status,
      bytes_in: upstream.sent(),
      bytes_out: bytesOut,
      body_scanned: scanned,
      redactions: redact.count(),
      latency_ms: clock.now().getTime() - started,
    });
    return { status, headers: responseHeaders, body };
  };

  return {
    /** Forwards one call; resolves once the event is durable, with what to send the agent. */
    async forward(request: ProxyRequest): Promise<ProxyResponse> {
      let answer: ProxyResponse | undefined;
      try {
        return await requests.use(
          {
            principal: request.principal,
            // The proxy's path names no agent: the caller is the agent it is for.
            agentRef: request.principal.agentId,
            service: request.service,
            scope: undefined,
            channel: 'proxy',
            action: 'credential.proxy',
            client: request.client,
            requestId: request.requestId,
            endUser: request.endUser,
            attributes: { method: request.method },
            details: request.details,
          },
          async (use, facts) => {
            answer = await forward(request, use, facts);
            return { result: answer };
          },
        );
      } catch (error) {
        // The event could not be written (or a later step failed): the upstream's answer is dropped.
        if (answer?.body instanceof Readable) answer.body.destroy();
        throw error;
      }
    },
  };
};

export type ProxyService = ReturnType<typeof createProxyService>;
