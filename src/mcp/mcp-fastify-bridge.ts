import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Fastify ↔ the MCP SDK's web-standard handlers (`Request` in, `Response` out), without buffering
 * the answer: an SSE response streams to the client as the SDK writes it, and the SDK sees the client
 * go away (its `Request.signal` aborts when the connection closes).
 *
 * The request body is the one the route's content-type parser read (a Buffer, size-capped by
 * Fastify's body limit): a JSON-RPC message, which the SDK must read whole anyway.
 */

/** Headers that are the vault's business, never the MCP layer's: the agent's token above all. */
const notForwarded = new Set(['authorization', 'cookie', 'proxy-authorization']);

export const toWebRequest = (request: FastifyRequest, reply: FastifyReply, origin: string): Request => {
  const headers = new Headers();
  const raw = request.raw.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!notForwarded.has(name)) headers.append(name, raw[i + 1] as string);
  }
  const aborted = new AbortController();
  // The response closing before it finished is the client gone (an `IncomingMessage` closes as soon
  // as its body is read, so it cannot tell).
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) aborted.abort();
  });
  const body = Buffer.isBuffer(request.body) && request.method === 'POST' ? request.body : undefined;
  return new Request(new URL(request.url, origin), {
    method: request.method,
    headers,
    body,
    signal: aborted.signal,
  });
};

/** Sends the SDK's response through Fastify (so the vault's hooks and headers still apply). */
export const sendWebResponse = (reply: FastifyReply, response: Response): FastifyReply => {
  reply.code(response.status);
  response.headers.forEach((value, name) => {
    reply.header(name, value);
  });
  if (!response.body) return reply.send();
  return reply.send(Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>));
};
