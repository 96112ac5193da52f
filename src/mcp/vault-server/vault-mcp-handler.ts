import { readFileSync } from 'node:fs';
import { type AuthInfo, createMcpHandler } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { publicOriginsOf } from '../mcp-origin-check.js';
import { createVaultMcpServer } from './vault-mcp-server.js';
import { createVaultTools, type McpCall, type VaultToolsDeps } from './vault-tools.js';

/**
 * The vault's MCP endpoint as a web-standard handler (`Request` in, `Response` out), over the
 * official SDK's `createMcpHandler`: the 2026-07-28 revision (`server/discover`, the
 * `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers, header/body mismatches refused by the
 * SDK) and the 2025 revisions (`initialize`) both, from one server definition.
 *
 * Both eras are served statelessly: every HTTP request is authenticated on its own and answered by a
 * fresh server bound to that request's agent, and the 2025 leg hands out no `Mcp-Session-Id`. So no
 * session can be taken over by presenting its id (a session id is never authentication here — there
 * is none), a revoked key or grant holds on the very next request, and any replica can answer any
 * request. The tools need nothing from the client between requests (no sampling, no elicitation), so
 * a session would buy nothing; 2025 clients handle a server without sessions (GET and DELETE answer
 * 405, as the specification allows).
 */

/** Where the authenticated call rides from the route to the factory (`authInfo` is pass-through). */
const callKey = 'tokenvault_call';

export interface VaultMcpDeps extends VaultToolsDeps {
  logger: Pick<Logger, 'error' | 'debug'>;
  /** The vault's public URL (`--audience`): the base of `/mcp`, and the one origin allowed besides loopback. */
  publicUrl: string;
  /** The largest POST body read, in bytes (the vault's `--body-limit`). */
  maxRequestBodySize: number;
}

/** The package's version, for the server's `serverInfo` (src/… and dist/… sit at the same depth). */
const version = (): string =>
  (
    JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

export const createVaultMcp = (deps: VaultMcpDeps) => {
  const server = { tools: createVaultTools(deps), logger: deps.logger, version: version() };
  const handler = createMcpHandler(
    (context) => {
      const call = context.authInfo?.extra?.[callKey] as McpCall | undefined;
      // The route authenticates before it calls `handle`, which always sets the call.
      if (!call) throw new Error('vault MCP request without an authenticated agent');
      return createVaultMcpServer(call, server);
    },
    {
      legacy: 'stateless',
      maxRequestBodySize: deps.maxRequestBodySize,
      // Mostly requests the SDK answers itself (a GET for a stream this stateless server has not,
      // a malformed message): the client is told; the log keeps them at debug.
      onerror: (error) => deps.logger.debug({ err: error }, 'vault MCP request refused'),
    },
  );

  return {
    publicUrl: deps.publicUrl,
    /** Origins allowed besides loopback ones (mcp-origin-check.ts). */
    publicOrigins: publicOriginsOf(deps.publicUrl),
    /** Serves one authenticated request. */
    handle(call: McpCall, request: Request): Promise<Response> {
      const authInfo: AuthInfo = {
        // The bearer token stays with the route: nothing behind this point needs it.
        token: '',
        clientId: call.principal.agentId,
        scopes: [],
        extra: { [callKey]: call },
      };
      return handler.fetch(request, { authInfo });
    },
    close: () => handler.close(),
  };
};

export type VaultMcp = ReturnType<typeof createVaultMcp>;
