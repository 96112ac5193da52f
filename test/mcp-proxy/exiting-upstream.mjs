// A stdio MCP server written with the SDK whose tool `exit` ends the process before answering.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

const server = new McpServer({ name: 'exiting', version: '1.0.0' });
server.tool('exit', async () => {
  setTimeout(() => process.exit(3), 10);
  return new Promise(() => {});
});
await server.connect(new StdioServerTransport());
