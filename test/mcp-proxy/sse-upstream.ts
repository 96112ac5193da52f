import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';

/**
 * A small MCP server speaking only the deprecated HTTP+SSE transport, written with the v1 SDK's
 * `SSEServerTransport`: `GET /sse` opens a session, `POST /messages?sessionId=…` carries its
 * messages. It records the headers of every request (the stream's GET and each POST), and its tool
 * `whoami` answers with the Authorization header of the POST that called it.
 */
export interface SseUpstream {
  url: string;
  requests: { method: string; headers: IncomingHttpHeaders }[];
  sessionCount(): number;
  stop(): Promise<void>;
}

export const startSseUpstream = async (): Promise<SseUpstream> => {
  const requests: SseUpstream['requests'] = [];
  const transports = new Map<string, SSEServerTransport>();
  let sessions = 0;

  const http: Server = createServer((req, res) => {
    void (async () => {
      requests.push({ method: req.method ?? '', headers: req.headers });
      const url = new URL(req.url ?? '/', 'http://upstream');
      if (req.method === 'GET' && url.pathname === '/sse') {
        sessions += 1;
        const server = new McpServer({ name: 'sse-upstream', version: '1.0.0' });
        server.registerTool('whoami', { description: 'Answers with the Authorization header.' }, (extra) => ({
          content: [
            { type: 'text', text: `authorization=${String(extra.requestInfo?.headers.authorization)}` },
          ],
        }));
        const transport = new SSEServerTransport('/messages', res);
        transports.set(transport.sessionId, transport);
        res.on('close', () => transports.delete(transport.sessionId));
        await server.connect(transport);
        return;
      }
      const transport = transports.get(url.searchParams.get('sessionId') ?? '');
      if (req.method === 'POST' && transport) return transport.handlePostMessage(req, res);
      res.writeHead(404).end();
    })().catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/sse`,
    requests,
    sessionCount: () => sessions,
    async stop() {
      for (const transport of transports.values()) await transport.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    },
  };
};
