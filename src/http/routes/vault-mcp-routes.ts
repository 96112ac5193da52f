import type { FastifyInstance } from 'fastify';
import { VaultError } from '../../errors/vault-error.js';
import { toWebRequest, sendWebResponse } from '../../mcp/mcp-fastify-bridge.js';
import { originAllowed } from '../../mcp/mcp-origin-check.js';
import { accessClientOf } from '../client-info.js';
import type { VaultServices } from '../../services.js';

/**
 * `/mcp`: the vault's own MCP server (Streamable HTTP; docs/mcp.md). Exactly that path: the MCP
 * proxies live below it (`/mcp/{proxy}`), in their own module.
 *
 * Every HTTP request, whatever its MCP method, goes through the same steps before a byte of its body
 * is read: the `Origin` (DNS rebinding, mcp-origin-check.ts) → the agent's key or JWT, exactly as
 * the agent REST routes take it (`app.authenticateAgent`, refusals audited there) → the body, capped
 * at the vault's body limit → the MCP handler, bound to that agent (vault-mcp-handler.ts), whose
 * answer streams back (mcp-fastify-bridge.ts).
 */
export const registerVaultMcpRoutes = (
  app: FastifyInstance,
  { vaultMcp }: Pick<VaultServices, 'vaultMcp'>,
) => {
  void app.register(async (scope) => {
    // The SDK reads JSON-RPC itself (and answers 415 for anything but application/json).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

    scope.addHook('onRequest', async (request) => {
      const origin = request.headers.origin;
      if (!originAllowed(origin, vaultMcp.publicOrigins)) throw new VaultError('mcp_origin_refused');
      await app.authenticateAgent(request);
    });
    scope.addHook('onClose', async () => vaultMcp.close());

    scope.route({
      method: ['POST', 'GET', 'DELETE'],
      url: '/mcp',
      exposeHeadRoute: false,
      config: {
        audit: {
          none: 'each tool that uses a credential records its own event (credential.retrieve, credential.proxy); authentication refusals are recorded by authenticateAgent',
        },
      },
      schema: {
        tags: ['agents'],
        security: [{ agentToken: [] }],
        summary: 'The vault’s MCP server (Streamable HTTP): list_credentials, get_credential, call_api',
        description:
          'Send `Authorization: Bearer <agent key or agent JWT>` on every request. MCP revisions 2025-03-26 to 2026-07-28, served statelessly (no `Mcp-Session-Id`). See docs/mcp.md.',
      },
      handler: async (request, reply) => {
        // Set by the onRequest hook: every request here is an authenticated agent's.
        const principal = request.agent as NonNullable<typeof request.agent>;
        const response = await vaultMcp.handle(
          {
            principal,
            client: accessClientOf(request),
            requestId: request.id,
          },
          toWebRequest(request, reply, vaultMcp.publicUrl),
        );
        return sendWebResponse(reply, response);
      },
    });
  });
};
