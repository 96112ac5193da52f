import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { McpHttpRequest } from '../../mcp-proxy/mcp-proxy-service.js';
import type { VaultServices } from '../../services.js';
import { accessClientOf } from '../client-info.js';

/**
 * `/mcp/{proxy}`: agents reach an upstream MCP server through the vault (docs/mcp-proxy.md). The
 * route is only the HTTP glue: the body is kept as text (so its size is bounded by the vault's body
 * limit and it is parsed once, here), and the request and the answer are handed to and from the
 * MCP proxy service as web `Request` and `Response`, streams included. `/mcp/{proxy}/sse` and
 * `/mcp/{proxy}/messages` are the deprecated HTTP+SSE transport's two ends (sse-leg.ts). The vault's
 * own MCP server (`/mcp`) is not this route.
 */
export const registerMcpProxyEndpointRoutes = (
  app: FastifyInstance,
  { mcpEndpoint }: Pick<VaultServices, 'mcpEndpoint'>,
) => {
  void app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) =>
      done(null, body),
    );

    const handlerFor =
      (serve: (input: McpHttpRequest) => Promise<Response>) =>
      async (request: FastifyRequest<{ Params: { proxy: string } }>, reply: FastifyReply) => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(request.headers)) {
          if (typeof value === 'string') headers.set(name, value);
          else if (Array.isArray(value)) for (const v of value) headers.append(name, v);
        }
        const text = typeof request.body === 'string' ? request.body : undefined;
        let parsed: unknown;
        if (text !== undefined) {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = undefined;
          }
        }
        const controller = new AbortController();
        // The response's close, not the request's: a request "closes" once its body is read.
        reply.raw.once('close', () => {
          if (!reply.raw.writableFinished) controller.abort();
        });
        const webRequest = new Request(`http://${request.headers.host ?? 'localhost'}${request.url}`, {
          method: request.method,
          headers,
          ...(text !== undefined ? { body: text } : {}),
          signal: controller.signal,
        });
        const response = await serve({
          proxyName: request.params.proxy,
          request: webRequest,
          body: parsed,
          client: accessClientOf(request),
          requestId: request.id,
        });
        reply.status(response.status);
        response.headers.forEach((value, name) => {
          if (name !== 'content-length') reply.header(name, value);
        });
        if (!response.body) return reply.send();
        return reply.send(Readable.fromWeb(response.body as NodeReadableStream));
      };

    const handler = handlerFor((input) => mcpEndpoint.handle(input));
    for (const method of ['GET', 'POST', 'DELETE'] as const) {
      scope.route({ method, url: '/mcp/:proxy', handler });
    }
    // The deprecated HTTP+SSE transport (MCP 2024-11-05), for clients that speak nothing newer.
    scope.route({
      method: 'GET',
      url: '/mcp/:proxy/sse',
      handler: handlerFor((i) => mcpEndpoint.sse.open(i)),
    });
    scope.route({
      method: 'POST',
      url: '/mcp/:proxy/messages',
      handler: handlerFor((i) => mcpEndpoint.sse.post(i)),
    });
  });
};
