// A stdio MCP server written with the SDK (v1) that reports what happened to its requests: its
// tool `wait` runs until cancelled (or 20 s), `cancellations` says how many `wait` calls saw their
// cancellation, and `resources/list` is paginated (two resources a page, five in all).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

const server = new Server(
  { name: 'counting', version: '1.0.0' },
  { capabilities: { tools: {}, resources: {} } },
);
let started = 0;
let cancelled = 0;
const text = (value) => ({ content: [{ type: 'text', text: value }] });

server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: 'wait', description: 'Runs until cancelled.', inputSchema: { type: 'object' } },
    { name: 'cancellations', description: 'Counts the cancelled waits.', inputSchema: { type: 'object' } },
  ],
}));
server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  if (request.params.name === 'cancellations') return text(`started=${started} cancelled=${cancelled}`);
  started += 1;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(text('waited to the end')), 20_000);
    extra.signal.addEventListener('abort', () => {
      cancelled += 1;
      clearTimeout(timer);
      resolve(text('cancelled'));
    });
  });
});

const resources = [1, 2, 3, 4, 5].map((n) => ({ uri: `counting://item/${n}`, name: `item ${n}` }));
server.setRequestHandler(ListResourcesRequestSchema, async (request) => {
  const from = Number(request.params?.cursor ?? 0);
  const next = from + 2;
  return {
    resources: resources.slice(from, next),
    ...(next < resources.length ? { nextCursor: String(next) } : {}),
  };
});
server.setRequestHandler(ReadResourceRequestSchema, async (request) => ({
  contents: [{ uri: request.params.uri, text: `contents of ${request.params.uri}` }],
}));

await server.connect(new StdioServerTransport());
