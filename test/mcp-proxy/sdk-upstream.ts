import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { McpServer, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';

/**
 * A small Streamable HTTP MCP server written with the SDK (v2), recording the headers of every
 * request it receives and the `initialize` calls, so tests can assert what the vault sends upstream.
 * Its tool `whoami` answers with the Authorization header it received.
 */
export interface SdkUpstream {
  url: string;
  requests: IncomingHttpHeaders[];
  initializeCount(): number;
  /** Sessions ended by the client (`DELETE`). */
  closedCount(): number;
  /** The description `whoami` has in sessions opened from now on (a tool changing under the agent). */
  setDescription(text: string): void;
  stop(): Promise<void>;
}

/**
 * `port`: listen there (an upstream restarted on the port it had); a free one when omitted.
 * `hang`: also a tool `hang` that never answers (an upstream that goes away mid-call).
 */
export const startSdkUpstream = async ({
  port: wanted = 0,
  hang = false,
}: { port?: number; hang?: boolean } = {}): Promise<SdkUpstream> => {
  const requests: IncomingHttpHeaders[] = [];
  let initializes = 0;
  let closed = 0;
  let description = 'Answers with the Authorization header it received.';
  const transports = new Map<string, WebStandardStreamableHTTPServerTransport>();

  const newSession = async () => {
    const server = new McpServer({ name: 'sdk-upstream', version: '1.0.0' });
    let authorization = '';
    server.registerTool('whoami', { description }, async () => ({
      content: [{ type: 'text', text: `authorization=${authorization}` }],
    }));
    if (hang) server.registerTool('hang', { description: 'Never answers.' }, () => new Promise(() => {}));
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => void transports.set(id, transport),
      onsessionclosed: () => void (closed += 1),
    });
    await server.connect(transport);
    return { transport, setAuthorization: (value: string) => (authorization = value) };
  };
  const sessions = new Map<WebStandardStreamableHTTPServerTransport, (value: string) => void>();

  const http: Server = createServer((req, res) => {
    void (async () => {
      requests.push(req.headers);
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      const parsed = body === '' ? undefined : (JSON.parse(body) as { method?: string });
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string') headers.set(name, value);
      const request = new Request(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers,
        ...(body === '' ? {} : { body }),
      });
      const sessionId = req.headers['mcp-session-id'];
      let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
      if (!transport && parsed?.method === 'initialize') {
        initializes += 1;
        const created = await newSession();
        transport = created.transport;
        sessions.set(transport, created.setAuthorization);
      }
      if (!transport) {
        res.writeHead(404).end();
        return;
      }
      sessions.get(transport)?.(req.headers.authorization ?? '');
      const response = await transport.handleRequest(request, { parsedBody: parsed });
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) Readable.fromWeb(response.body as NodeReadableStream).pipe(res);
      else res.end();
    })().catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(wanted, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    initializeCount: () => initializes,
    closedCount: () => closed,
    setDescription: (text) => {
      description = text;
    },
    async stop() {
      for (const transport of transports.values()) await transport.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
};
