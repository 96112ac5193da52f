import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import {
  type AuthInfo,
  getOAuthProtectedResourceMetadataUrl,
  McpServer,
  type OAuthMetadata,
  oauthMetadataResponse,
  OAuthError,
  OAuthErrorCode,
  requireBearerAuth,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';

/**
 * A remote MCP server protected by OAuth, written with the official SDK (v2) as the MCP specification's
 * authorization section asks: an unauthenticated request is answered 401 with `WWW-Authenticate:
 * Bearer resource_metadata="…"`, the protected resource metadata (RFC 9728) names the authorization
 * server, and a token is accepted only if the authorization server's introspection reports it active
 * and issued for this server's resource (its audience). The tool `whoami` answers with the token's
 * subject. `mode` makes the refusals discovery must handle:
 *   - `open`: answers without asking for a token (no 401);
 *   - `bare-401`: 401 without `resource_metadata` (the client must try the well-known URL).
 */
export interface ProtectedMcpServer {
  url: string;
  /** Requests that reached the MCP handler with a valid token. */
  authorized: number;
  stop(): Promise<void>;
}

export interface ProtectedMcpOptions {
  /** The authorization server's metadata (RFC 8414 / OIDC discovery document), named in the PRM. */
  oauthMetadata: OAuthMetadata;
  /** RFC 7662 introspection at the authorization server. */
  introspect: (token: string) => Promise<Record<string, unknown>>;
  scopes?: string[];
  mode?: 'protected' | 'open' | 'bare-401';
  /** The resource it names (default: its own URL): a test may present it under another name. */
  resourceUrl?: string;
}

export const startProtectedMcpServer = async (options: ProtectedMcpOptions): Promise<ProtectedMcpServer> => {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  const resource = new URL(options.resourceUrl ?? url);
  const metadataOptions = {
    oauthMetadata: options.oauthMetadata,
    resourceServerUrl: resource,
    scopesSupported: options.scopes ?? ['openid', 'offline_access', 'api:read'],
    resourceName: 'Protected test MCP server',
    dangerouslyAllowInsecureIssuerUrl: true,
  };
  const verifier = {
    async verifyAccessToken(token: string): Promise<AuthInfo> {
      const info = await options.introspect(token);
      if (info.active !== true) throw new OAuthError(OAuthErrorCode.InvalidToken, 'inactive token');
      const aud = Array.isArray(info.aud) ? info.aud[0] : info.aud;
      return {
        token,
        clientId: String(info.client_id),
        scopes: typeof info.scope === 'string' ? info.scope.split(' ') : [],
        expiresAt: Number(info.exp),
        ...(typeof aud === 'string' ? { resource: new URL(aud) } : {}),
        extra: { sub: info.sub },
      };
    },
  };
  const mode = options.mode ?? 'protected';
  const gate = requireBearerAuth({
    verifier,
    expectedResource: resource,
    ...(mode === 'bare-401' ? {} : { resourceMetadataUrl: getOAuthProtectedResourceMetadataUrl(resource) }),
  });
  const state = { authorized: 0 };

  const handle = async (request: Request): Promise<Response> => {
    const metadata = oauthMetadataResponse(request, metadataOptions);
    if (metadata) return metadata;
    if (new URL(request.url).pathname !== '/mcp') return new Response(null, { status: 404 });
    let subject = 'nobody';
    let authInfo: AuthInfo | undefined;
    if (mode !== 'open') {
      const auth = await gate(request);
      if (auth instanceof Response) return auth;
      state.authorized += 1;
      authInfo = auth;
      subject = String(auth.extra?.sub);
    }
    // Stateless: a fresh server and transport per request.
    const server = new McpServer({ name: 'protected-mcp', version: '1.0.0' });
    server.registerTool('whoami', { description: 'Answers with the token’s subject.' }, async () => ({
      content: [{ type: 'text', text: `sub=${subject}` }],
    }));
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    return transport.handleRequest(request, authInfo ? { authInfo } : {});
  };

  http.on('request', (req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string') headers.set(name, value);
      const response = await handle(
        new Request(`http://${req.headers.host}${req.url}`, {
          method: req.method,
          headers,
          ...(body.length === 0 ? {} : { body }),
        }),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) Readable.fromWeb(response.body as NodeReadableStream).pipe(res);
      else res.end();
    })().catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });

  return {
    url,
    get authorized() {
      return state.authorized;
    },
    async stop() {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
};
