import { type CallToolResult, McpServer } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { isVaultError } from '../../errors/vault-error.js';
import { errorRegistry } from '../../errors/error-registry.js';
import { type ToolRunner, vaultToolDefinitions } from './vault-tool-definitions.js';
import type { McpCall, VaultTools } from './vault-tools.js';

/**
 * The vault's MCP server: one `McpServer` per HTTP request (both protocol eras are served
 * statelessly, see vault-mcp-handler.ts), bound to the agent that request authenticated. Its three
 * tools are vault-tools.ts, described to the model in vault-tool-definitions.ts; this file puts their
 * answers and refusals on the wire.
 *
 * A refusal is a tool error (`isError: true`), not a JSON-RPC error: the model reads it and can act
 * (ask for a grant, use `call_api` instead of `get_credential`). It carries the vault's stable code
 * in `structuredContent` (`{code, message, request_id}`) and in the text, as a REST error body does.
 * Anything that is not a VaultError is `internal_error`, with the details in the log only.
 */

export interface VaultMcpServerDeps {
  tools: VaultTools;
  logger: Pick<Logger, 'error'>;
  version: string;
}

const json = (value: object): CallToolResult => ({
  content: [{ type: 'text', text: JSON.stringify(value) }],
  structuredContent: value as Record<string, unknown>,
});

/** A refusal as the model sees it: the vault's code and message, as a REST error body has them. */
const refusal = (error: unknown, call: McpCall, logger: VaultMcpServerDeps['logger']): CallToolResult => {
  let code: string;
  let message: string;
  if (isVaultError(error) && error.status < 500) {
    ({ code, message } = error);
  } else if (isVaultError(error) && error.code !== 'internal_error') {
    // A 5xx the vault names (audit_unavailable, upstream_timeout, …): its registry message only.
    code = error.code;
    message = errorRegistry[error.code].message;
  } else {
    logger.error({ err: error, request_id: call.requestId }, 'vault MCP tool failed');
    code = 'internal_error';
    message = errorRegistry.internal_error.message;
  }
  const body = { code, message, request_id: call.requestId };
  return {
    isError: true,
    content: [{ type: 'text', text: `${code}: ${message}` }],
    structuredContent: body,
  };
};

export const createVaultMcpServer = (call: McpCall, { tools, logger, version }: VaultMcpServerDeps) => {
  const server = new McpServer(
    { name: 'token-vault', version },
    {
      instructions:
        'Token Vault holds credentials for you. `list_credentials` shows what you are granted; `call_api` calls an API with a credential injected (you never see it); `get_credential` returns the secret only where your grant reveals it.',
    },
  );
  const run: ToolRunner = async (act) => {
    try {
      return json(await act(tools, call));
    } catch (error) {
      return refusal(error, call, logger);
    }
  };
  for (const tool of vaultToolDefinitions) tool.register(server, run);
  return server;
};
