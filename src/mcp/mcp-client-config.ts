/**
 * Client configurations for an MCP server of the vault, as the common MCP clients read them: the
 * vault's own server (`tokenvault mcp config`) and, with another header, the MCP proxies. Pure.
 *
 * The secret (an agent key, a proxy key) goes in only when the operator hands it over; otherwise the
 * configuration names a placeholder each client fills in itself, so the file can be committed:
 *
 * - Claude Code (`.mcp.json`) expands `${VAR}` in headers from its environment;
 * - Cursor (`mcp.json`) expands `${env:VAR}`;
 * - VS Code (`.vscode/mcp.json`) prompts once for an `${input:…}` declared as a password;
 * - generic: the URL, the transport and the header, with `<…>` where the key goes.
 */

export const mcpClients = ['claude', 'cursor', 'vscode', 'generic'] as const;
export type McpClient = (typeof mcpClients)[number];

export const isMcpClient = (value: string): value is McpClient =>
  (mcpClients as readonly string[]).includes(value);

export interface McpClientConfigInput {
  client: McpClient;
  /** The server's name in the client (`token-vault`, a proxy's name). */
  serverName: string;
  /** The MCP endpoint, e.g. `https://vault.example.com/mcp`. */
  url: string;
  /** The header the key travels in, e.g. `Authorization`. */
  header: string;
  /** What precedes the key in the header, e.g. `Bearer ` (empty for a bare key). */
  prefix: string;
  /** The environment variable the placeholder names, e.g. `TOKENVAULT_AGENT_KEY`. */
  keyVariable: string;
  /** What the key is, for a prompt or a placeholder: `Token Vault agent key`. */
  keyDescription: string;
  /** The key itself, only when the operator passed it; a placeholder otherwise. */
  key?: string | undefined;
}

export interface McpClientConfig {
  client: McpClient;
  /** Where the client reads it from. */
  file: string;
  /** The JSON to put there (merge it into an existing file's server list). */
  config: Record<string, unknown>;
  /** A command that adds it instead, where the client has one. */
  command?: string;
  /** Whether `config` holds the key itself (then keep the file out of version control). */
  includesKey: boolean;
}

/** Single-quotes a shell word (POSIX): everything between the quotes is literal. */
const shellQuote = (word: string): string => `'${word.replace(/'/g, `'\\''`)}'`;

export const mcpClientConfig = (input: McpClientConfigInput): McpClientConfig => {
  const { client, serverName, url, header, prefix, key } = input;
  const includesKey = key !== undefined;
  const headerWith = (placeholder: string) => ({ [header]: `${prefix}${key ?? placeholder}` });
  switch (client) {
    case 'claude': {
      const headers = headerWith(`\${${input.keyVariable}}`);
      return {
        client,
        file: '.mcp.json (project) or ~/.claude.json (user)',
        config: { mcpServers: { [serverName]: { type: 'http', url, headers } } },
        command: `claude mcp add --transport http ${shellQuote(serverName)} ${shellQuote(url)} --header ${shellQuote(`${header}: ${headers[header]}`)}`,
        includesKey,
      };
    }
    case 'cursor':
      return {
        client,
        file: '.cursor/mcp.json (project) or ~/.cursor/mcp.json (user)',
        config: {
          mcpServers: { [serverName]: { url, headers: headerWith(`\${env:${input.keyVariable}}`) } },
        },
        includesKey,
      };
    case 'vscode': {
      const inputId = input.keyVariable.toLowerCase().replace(/_/g, '-');
      return {
        client,
        file: '.vscode/mcp.json (workspace) or the user mcp.json (MCP: Open User Configuration)',
        config: {
          ...(includesKey
            ? {}
            : {
                inputs: [
                  { type: 'promptString', id: inputId, description: input.keyDescription, password: true },
                ],
              }),
          servers: { [serverName]: { type: 'http', url, headers: headerWith(`\${input:${inputId}}`) } },
        },
        includesKey,
      };
    }
    case 'generic':
      return {
        client,
        file: 'your client’s MCP server list',
        config: {
          name: serverName,
          transport: 'streamable-http',
          url,
          headers: headerWith(`<${input.keyDescription.toLowerCase()}>`),
        },
        includesKey,
      };
  }
};
