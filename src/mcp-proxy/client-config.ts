/**
 * What each common MCP client needs to reach a proxy: its URL and the key header. Pure; the CLI
 * prints it (`tokenvault proxy config NAME --client …`) and docs/mcp-proxy.md shows each.
 */

/** `sse`: a client that only speaks the deprecated HTTP+SSE transport (MCP 2024-11-05). */
export const mcpClients = ['claude', 'cursor', 'vscode', 'generic', 'sse'] as const;
export type McpClient = (typeof mcpClients)[number];

/** Stands for the key in a printed configuration when none is given: the key is shown only once. */
export const keyPlaceholder = 'tv_proxy_…';

export interface ClientConfig {
  /** The URL the client connects to. */
  url: string;
  /** Where the text goes (a file, or a command to run). */
  where: string;
  /** The configuration itself: JSON, or a shell command. */
  text: string;
}

/** The proxy's URL: the vault's address and `/mcp/{proxy}`. */
export const proxyUrl = (vaultAddr: string, proxy: string): string =>
  `${vaultAddr.replace(/\/+$/, '')}/mcp/${encodeURIComponent(proxy)}`;

/** Where a client of the deprecated HTTP+SSE transport opens its stream (it is told where to post). */
export const sseUrl = (url: string): string => `${url}/sse`;

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** The configuration of `client` for the proxy named `proxy` at `url`, with `key` (or the placeholder). */
export const clientConfig = (
  client: McpClient,
  proxy: string,
  url: string,
  key = keyPlaceholder,
): ClientConfig => {
  const name = `tokenvault-${proxy}`;
  const headers = { Authorization: `Bearer ${key}` };
  switch (client) {
    case 'claude':
      return {
        url,
        where: 'run in a shell (Claude Code), or add under "mcpServers" in .mcp.json',
        text:
          `claude mcp add --transport http ${name} ${url} --header "Authorization: Bearer ${key}"\n\n` +
          json({ mcpServers: { [name]: { type: 'http', url, headers } } }),
      };
    case 'cursor':
      return {
        url,
        where: '~/.cursor/mcp.json (or .cursor/mcp.json in a project)',
        text: json({ mcpServers: { [name]: { url, headers } } }),
      };
    case 'vscode': {
      // VS Code asks for the key once and keeps it in its secret storage, so the file holds none.
      const input = `${name}-key`;
      return {
        url,
        where: '.vscode/mcp.json',
        text: json({
          inputs: [
            {
              type: 'promptString',
              id: input,
              description: `Token Vault proxy key for ${proxy}`,
              password: true,
            },
          ],
          servers: { [name]: { type: 'http', url, headers: { Authorization: `Bearer \${input:${input}}` } } },
        }),
      };
    }
    case 'generic':
      return {
        url,
        where: 'any Streamable HTTP MCP client',
        text: json({ url, transport: 'streamable-http', headers }),
      };
    case 'sse':
      return {
        url: sseUrl(url),
        where:
          'an MCP client that only speaks the deprecated HTTP+SSE transport (sends the key on every request)',
        text: json({ url: sseUrl(url), transport: 'sse', headers }),
      };
  }
};
