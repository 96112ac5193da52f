import { type CallToolResult, McpServer } from '@modelcontextprotocol/server';
import type { Logger } from 'pino';
import { z } from 'zod';
import { isVaultError } from '../../errors/vault-error.js';
import { errorRegistry } from '../../errors/error-registry.js';
import { callApiMethods } from './call-api.js';
import type { McpCall, VaultTools } from './vault-tools.js';

/**
 * The vault's MCP server: one `McpServer` per HTTP request (both protocol eras are served
 * statelessly, see vault-mcp-handler.ts), bound to the agent that request authenticated. Its three
 * tools are vault-tools.ts; this file only describes them to the model and puts their answers and
 * refusals on the wire.
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

const credentialName = z
  .string()
  .min(1)
  .max(64)
  .describe('The credential’s name, as `list_credentials` shows it.');

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
  const run = async (act: () => Promise<object>): Promise<CallToolResult> => {
    try {
      return json(await act());
    } catch (error) {
      return refusal(error, call, logger);
    }
  };

  // audit: none — lists the agent's own grant terms; no secret is read (vault-tools.ts).
  server.registerTool(
    'list_credentials',
    {
      title: 'List granted credentials',
      description:
        'The credentials you are granted: name, scopes, when the grant expires, and whether `get_credential` may reveal it (otherwise use `call_api`).',
      inputSchema: z.object({
        cursor: z.string().max(512).optional().describe('`next_cursor` of the previous page.'),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input) => run(() => tools.listCredentials(call, input)),
  );

  // audit: credential.retrieve (recorded by the retrieval path, with via: mcp).
  server.registerTool(
    'get_credential',
    {
      title: 'Get a credential’s token',
      description:
        'Returns the token of a credential your grant lets you reveal. A proxy-only grant is refused with `reveal_not_granted`: use `call_api` for it.',
      inputSchema: z.object({
        credential: credentialName,
        scope: z.string().max(2048).optional().describe('Scopes to narrow to, space- or comma-separated.'),
      }),
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (input) => run(() => tools.getCredential(call, input)),
  );

  // audit: credential.proxy (recorded by the proxy service, with via: mcp).
  server.registerTool(
    'call_api',
    {
      title: 'Call an API with a credential',
      description:
        'Sends an HTTP request to the credential’s API (its base URL joined with `path`) with the credential injected; you never see it. Answers status, headers and the body as text (secrets redacted, at most 128 KiB; binary or large bodies are not returned).',
      inputSchema: z.object({
        credential: credentialName,
        method: z.enum(callApiMethods).default('GET'),
        path: z
          .string()
          .max(8192)
          .describe(
            'Path below the API’s base URL, with an optional `?query`, e.g. `/repos/o/r/issues?state=open`.',
          ),
        headers: z
          .record(z.string().max(256), z.string().max(8192))
          .optional()
          .describe('Request headers; `Authorization`, cookies and `Host` are the vault’s and are dropped.'),
        body: z
          .string()
          .max(1_048_576)
          .optional()
          .describe('Request body as text (JSON: also set Content-Type).'),
        user: z.string().min(1).max(256).optional().describe('The end user, for a per-user credential.'),
      }),
      annotations: { openWorldHint: true },
    },
    (input) => run(() => tools.callApi(call, input)),
  );

  return server;
};
