import type { Command } from 'commander';
import { isMcpClient, mcpClientConfig, mcpClients } from '../mcp/mcp-client-config.js';
import { resolveClientSettings } from './api-client.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { InputError } from './secret-input.js';

/** The environment variable the printed configurations read the agent key from. */
export const agentKeyVariable = 'TOKENVAULT_AGENT_KEY';

interface McpConfigFlags {
  agent: string;
  client: string;
  url?: string;
  keyStdin?: boolean;
  name: string;
}

/**
 * `tokenvault mcp config --agent A --client claude|cursor|vscode|generic`: the configuration an MCP
 * client needs to reach the vault's own MCP server as agent A (docs/mcp.md). The agent is looked up
 * (so a typo fails here, not in the client); its key is never printed unless the operator pipes it in
 * with `--key-stdin` (an agent key cannot be read back from the vault: it is stored hashed).
 */
export const registerMcpCommand = (program: Command, io: CliIo): void => {
  const mcp = program.command('mcp').description('the vault’s own MCP server (/mcp)');

  withClientOptions(mcp.command('config'))
    .description('print an MCP client’s configuration for the vault’s MCP server, as an agent')
    .requiredOption('--agent <agent>', 'the agent the client acts as (id or name)')
    .requiredOption('--client <client>', `the MCP client: ${mcpClients.join(', ')}`)
    .option('--url <url>', 'the vault’s URL as the client reaches it (default: --addr / TOKENVAULT_ADDR)')
    .option('--key-stdin', 'read the agent key from standard input and put it in the configuration')
    .option('--name <name>', 'the server’s name in the client', 'token-vault')
    .action(async (flags: McpConfigFlags, command: Command) => {
      if (!isMcpClient(flags.client)) {
        throw new InputError(
          `unknown --client "${flags.client.slice(0, 40)}"; use one of ${mcpClients.join(', ')}`,
        );
      }
      const ctx = contextFor(command, io);
      const base = flags.url ?? resolveClientSettings(command.optsWithGlobals(), io.env).addr;
      let url: URL;
      try {
        url = new URL('mcp', base.endsWith('/') ? base : `${base}/`);
      } catch {
        throw new InputError(`--url "${base.slice(0, 200)}" is not a URL`);
      }
      const agent = await ctx.api.get<{ id: string; name: string }>(
        `/v1/admin/agents/${encodeURIComponent(flags.agent)}`,
      );
      const key = flags.keyStdin ? (await ctx.readStdin()).trim() : undefined;
      if (key !== undefined && key === '') throw new InputError('--key-stdin: standard input was empty');
      const config = mcpClientConfig({
        client: flags.client,
        serverName: flags.name,
        url: url.href,
        header: 'Authorization',
        prefix: 'Bearer ',
        keyVariable: agentKeyVariable,
        keyDescription: `Token Vault agent key of ${agent.name}`,
        key,
      });
      ctx.out.result({ agent: agent.name, url: url.href, ...config }, () =>
        [
          `# ${flags.client}: ${config.file}`,
          JSON.stringify(config.config, null, 2),
          ...(config.command ? ['', '# or run:', config.command] : []),
          '',
          config.includesKey
            ? '# This holds the agent key: keep the file out of version control.'
            : flags.client === 'vscode'
              ? `# VS Code asks for the agent key of ${agent.name} once and keeps it in its secret storage.`
              : flags.client === 'generic'
                ? `# Put the agent key of ${agent.name} where the placeholder is.`
                : `# Set ${agentKeyVariable} to the agent key of ${agent.name} in the client’s environment.`,
        ].join('\n'),
      );
    });
};
