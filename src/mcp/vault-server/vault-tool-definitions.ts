import type { CallToolResult, McpServer, ToolAnnotations } from '@modelcontextprotocol/server';
import { z } from 'zod';
import type { AuditAction } from '../../audit/audit-types.js';
import { callApiMethods } from './call-api.js';
import type { McpCall, VaultTools } from './vault-tools.js';

/**
 * The vault's MCP tools as the model sees them, each with the audit event it records (through the
 * service it calls) or why it records none — declared in the definition, as routes declare
 * `config.audit`, so a tool cannot be added without saying it. What each does is vault-tools.ts.
 */

export type ToolAudit = { event: AuditAction; recordedBy: 'service' } | { none: string };

/** Runs a tool's act for the call being served, and turns its answer or refusal into a tool result. */
export type ToolRunner = (
  act: (tools: VaultTools, call: McpCall) => Promise<object>,
) => Promise<CallToolResult>;

export interface VaultToolDefinition {
  name: string;
  audit: ToolAudit;
  register(server: McpServer, run: ToolRunner): void;
}

interface ToolSpec<S extends z.ZodObject> {
  name: string;
  audit: ToolAudit;
  title: string;
  description: string;
  inputSchema: S;
  annotations: ToolAnnotations;
  act(tools: VaultTools, call: McpCall, input: z.output<S>): Promise<object>;
}

const defineTool = <S extends z.ZodObject>(spec: ToolSpec<S>): VaultToolDefinition => ({
  name: spec.name,
  audit: spec.audit,
  register(server, run) {
    const { title, description, annotations } = spec;
    // Widened for the SDK's overloads; the SDK parses the input with this very schema, so it is S's.
    const inputSchema: z.ZodObject = spec.inputSchema;
    server.registerTool(spec.name, { title, description, inputSchema, annotations }, (input) =>
      run((tools, call) => spec.act(tools, call, input as z.output<S>)),
    );
  },
});

const credentialName = z
  .string()
  .min(1)
  .max(64)
  .describe('The credential’s name, as `list_credentials` shows it.');

export const vaultToolDefinitions: readonly VaultToolDefinition[] = [
  defineTool({
    name: 'list_credentials',
    audit: { none: 'lists the agent’s own grant terms (names, scopes, expiry); no secret is read' },
    title: 'List granted credentials',
    description:
      'The credentials you are granted: name, scopes, when the grant expires, and whether `get_credential` may reveal it (otherwise use `call_api`).',
    inputSchema: z.object({
      cursor: z.string().max(512).optional().describe('`next_cursor` of the previous page.'),
    }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    act: (tools, call, input) => tools.listCredentials(call, input),
  }),
  defineTool({
    name: 'get_credential',
    audit: { event: 'credential.retrieve', recordedBy: 'service' },
    title: 'Get a credential’s token',
    description:
      'Returns the token of a credential your grant lets you reveal. A proxy-only grant is refused with `reveal_not_granted`: use `call_api` for it.',
    inputSchema: z.object({
      credential: credentialName,
      scope: z.string().max(2048).optional().describe('Scopes to narrow to, space- or comma-separated.'),
      user: z.string().min(1).max(256).optional().describe('The end user, for a per-user credential.'),
    }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    act: (tools, call, input) => tools.getCredential(call, input),
  }),
  defineTool({
    name: 'call_api',
    audit: { event: 'credential.proxy', recordedBy: 'service' },
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
    act: (tools, call, input) => tools.callApi(call, input),
  }),
];
