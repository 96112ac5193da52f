import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { VaultError } from '../../errors/vault-error.js';
import type { VaultServices } from '../../services.js';
import { accessClientOf } from '../client-info.js';

const prefix = '/v1/proxy/';
const methods: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * The path after `/v1/proxy/{service}` and the query, exactly as they came off the wire: the proxy
 * judges the encoded form (`%2F`, `%2e%2e`), which Fastify's decoded params would hide.
 */
export const splitProxyUrl = (rawUrl: string): { rawPath: string; rawQuery: string } => {
  const rest = rawUrl.startsWith(prefix) ? rawUrl.slice(prefix.length) : '';
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const slash = path.indexOf('/');
  return { rawPath: slash < 0 ? '' : path.slice(slash), rawQuery: q < 0 ? '' : rest.slice(q + 1) };
};

const hasBody = (request: FastifyRequest) =>
  request.headers['transfer-encoding'] !== undefined ||
  (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0');

/**
 * `/v1/proxy/{service}/{path…}`: any method, the agent's bearer token, `?user=` for a per-user
 * credential; everything else of the request goes upstream (docs/proxy.md). Authenticate (refusals
 * audited there), then the proxy service (the agent request path on the `proxy` channel), which
 * records the one `credential.proxy` event before the answer is sent. Bodies stream both ways: the
 * routes' own content-type parser hands the request stream on unread, so no body limit applies and
 * nothing is buffered here.
 */
export const registerProxyRoutes = (app: FastifyInstance, { proxy }: Pick<VaultServices, 'proxy'>) => {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    const handler = async (request: FastifyRequest<{ Params: { service: string } }>, reply: FastifyReply) => {
      const principal = await app.authenticateAgent(request);
      const user = (request.query as Record<string, unknown>).user;
      if (user !== undefined && typeof user !== 'string') {
        throw new VaultError('invalid_request', 'Give ?user= at most once.');
      }
      const { rawPath, rawQuery } = splitProxyUrl(request.raw.url ?? '');
      const answer = await proxy.forward({
        principal,
        service: request.params.service,
        method: request.method,
        rawPath,
        rawQuery,
        endUser: user,
        rawHeaders: request.raw.rawHeaders,
        body: hasBody(request) ? ((request.body as Readable | undefined) ?? request.raw) : undefined,
        client: accessClientOf(request),
        requestId: request.id,
      });
      // Set last, over anything the upstream sent: it tells a client (the SDK's `vault.fetch`) that
      // this status is the upstream's, not a refusal by the vault.
      return reply
        .code(answer.status)
        .headers(answer.headers)
        .header('x-tokenvault-proxied', '1')
        .send(answer.body);
    };

    for (const url of ['/v1/proxy/:service', '/v1/proxy/:service/*']) {
      scope.route({
        method: methods,
        url,
        exposeHeadRoute: false,
        config: { audit: { event: 'credential.proxy', recordedBy: 'service' } },
        schema: {
          tags: ['agents'],
          security: [{ agentToken: [] }],
          summary: 'Call the credential’s API through the vault, with the credential injected',
          description:
            'Send `Authorization: Bearer <agent key or agent JWT>`. The path and query go to the credential’s base URL; `?user=` is the vault’s. See docs/proxy.md.',
          hide: url.endsWith('*'),
        },
        handler,
      });
    }
  });
};
