import type { Command } from 'commander';
import type {
  CreatedMcpProxyKey,
  McpProxyKeyList,
  McpProxyKeyView,
  McpProxyList,
  McpProxyView,
} from '../http/schemas/response-types.js';
import { parseDuration } from '../lib/duration.js';
import { clientConfig, type McpClient, mcpClients, proxyUrl } from '../mcp-proxy/client-config.js';
import { resolveClientSettings } from './api-client.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface ToolPin {
  tool: string;
  status: string;
  accepted: unknown;
  observed: unknown;
  observed_at: string | null;
}

/** The pinned tools, and for each waiting change the lines that differ (accepted `-`, upstream `+`). */
const toolsText = (proxy: string, items: ToolPin[]): string => {
  if (items.length === 0) return `No tools pinned yet: they are pinned the first time an agent lists them.`;
  const lines = [
    table(
      ['TOOL', 'STATUS'],
      items.map((p) => [p.tool, p.status === 'accepted' ? 'accepted' : `${p.status} (withheld)`]),
    ),
  ];
  for (const pin of items.filter((p) => p.status !== 'accepted')) {
    const before = pin.accepted === null ? [] : JSON.stringify(pin.accepted, null, 2).split('\n');
    const after = JSON.stringify(pin.observed, null, 2).split('\n');
    lines.push('', `${pin.tool} (${pin.status}, seen ${pin.observed_at ?? '?'}):`);
    for (const line of before) if (!after.includes(line)) lines.push(`- ${line}`);
    for (const line of after) if (!before.includes(line)) lines.push(`+ ${line}`);
  }
  if (items.some((p) => p.status !== 'accepted'))
    lines.push('', `Accept with: tokenvault proxy tools accept ${proxy}`);
  return lines.join('\n');
};
const path = (name: string, rest = '') => `/v1/admin/mcp-proxies/${encodeURIComponent(name)}${rest}`;

const upstreamOf = (p: McpProxyView) =>
  p.url ? `${p.url} (${p.transport})` : [p.command, ...p.args].map((a) => JSON.stringify(a)).join(' ');

const show = (p: McpProxyView) =>
  keyValues([
    ['name', p.name],
    ['id', p.id],
    ['namespace', p.namespace],
    ['upstream', upstreamOf(p)],
    ['cwd', p.cwd],
    ['credential', p.credential],
    ['per user', p.per_user ? 'yes (each key injects its user’s own connection)' : 'no'],
    [
      'injects',
      p.injections.map((i) => (i.in === 'header' ? `${i.name}: ${i.template}` : `${i.name}=${i.template}`)),
    ],
    ['allow tools', p.allow_tools.length > 0 ? p.allow_tools : 'all'],
    ['deny tools', p.deny_tools],
    ['description', p.description || '-'],
    ['created at', p.created_at],
    ['updated at', p.updated_at],
  ]);

const showKey = (k: McpProxyKeyView) =>
  keyValues([
    ['id', k.id],
    ['agent', k.agent_name ?? `${k.agent_id} (deleted)`],
    ['user', k.user],
    ['name', k.name],
    ['status', k.status],
    ['expires at', k.expires_at ?? 'never (until revoked)'],
    ['created at', k.created_at],
  ]);

interface ConfigFlags {
  url?: string;
  transport?: string;
  command?: string;
  arg?: string[];
  cwd?: string;
  credential?: string;
  perUser?: boolean;
  injectHeader?: string[];
  injectEnv?: string[];
  allowTool?: string[];
  denyTool?: string[];
  description?: string;
}

/** `Name: template` and `VAR=template` as the API's injections; the vault checks the rest. */
const injections = (flags: ConfigFlags) => {
  const parsed = [
    ...(flags.injectHeader ?? []).map((text) => {
      const colon = text.indexOf(':');
      if (colon <= 0)
        throw new InputError(`--inject-header expects 'Name: template', got "${text.slice(0, 60)}"`);
      return {
        in: 'header' as const,
        name: text.slice(0, colon).trim(),
        template: text.slice(colon + 1).trim(),
      };
    }),
    ...(flags.injectEnv ?? []).map((text) => {
      const equals = text.indexOf('=');
      if (equals <= 0)
        throw new InputError(`--inject-env expects 'VAR=template', got "${text.slice(0, 60)}"`);
      return { in: 'env' as const, name: text.slice(0, equals), template: text.slice(equals + 1) };
    }),
  ];
  return parsed.length > 0 ? parsed : undefined;
};

/** The flags given, as the API's body; what was not given is left out. */
const configBody = (flags: ConfigFlags) => {
  const body: Record<string, unknown> = {
    transport: flags.transport,
    url: flags.url,
    command: flags.command,
    args: flags.arg,
    cwd: flags.cwd,
    credential: flags.credential,
    per_user: flags.perUser,
    injections: injections(flags),
    allow_tools: flags.allowTool,
    deny_tools: flags.denyTool,
    description: flags.description,
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
};

const configOptions = (command: Command) =>
  command
    .option('--url <url>', 'the upstream MCP endpoint (Streamable HTTP or SSE)')
    .option('--transport <transport>', 'streamable-http (default for --url) or sse')
    .option(
      '--command <cmd>',
      'a stdio upstream: the command the vault runs (fixed here, never by a request)',
    )
    .option('--arg <arg>', 'an argument of the command (repeatable)', collect)
    .option('--cwd <dir>', 'the command’s working directory')
    .option('--per-user', 'inject each key’s end user’s own connection')
    .option('--inject-header <header>', "'Authorization: Bearer {{access_token}}' (repeatable)", collect)
    .option('--inject-env <var>', "'VAR={{field}}' for a stdio command (repeatable)", collect)
    .option('--allow-tool <tool>', 'only these tools (repeatable; * matches any run)', collect)
    .option('--deny-tool <tool>', 'never these tools (repeatable; wins over --allow-tool)', collect)
    .option('--description <text>', 'what the proxy is for');

export const registerProxyCommand = (program: Command, io: CliIo): void => {
  const proxy = program
    .command('proxy')
    .description('MCP proxies: agents reach an MCP server through the vault, which injects the credential');

  configOptions(withClientOptions(proxy.command('create <name>')))
    .description('register an upstream MCP server (--url or --command) bound to a credential')
    .requiredOption('--credential <name>', 'the credential the proxy injects')
    .action(async (name: string, flags: ConfigFlags, command: Command) => {
      if (!flags.injectHeader && !flags.injectEnv) {
        throw new InputError(
          "say how the credential is injected: --inject-header 'Authorization: Bearer {{access_token}}' or --inject-env 'VAR={{field}}'",
        );
      }
      const ctx = contextFor(command, io);
      const created = await ctx.api.post<McpProxyView>('/v1/admin/mcp-proxies', {
        name,
        ...configBody(flags),
      });
      ctx.out.result(
        created,
        () =>
          `Created MCP proxy "${created.name}".\n${show(created)}\nGive an agent a key: tokenvault proxy key create ${created.name} --agent NAME`,
      );
    });

  withClientOptions(proxy.command('list'))
    .description('list MCP proxies')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<McpProxyList>('/v1/admin/mcp-proxies');
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No MCP proxies. Create one with `tokenvault proxy create NAME --url URL --credential C --inject-header …`.'
          : table(
              ['NAME', 'UPSTREAM', 'CREDENTIAL', 'PER USER'],
              items.map((p) => [p.name, upstreamOf(p), p.credential, p.per_user ? 'yes' : 'no']),
            ),
      );
    });

  withClientOptions(proxy.command('show <name>'))
    .description('show one MCP proxy')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<McpProxyView>(path(name));
      ctx.out.result(found, () => show(found));
    });

  configOptions(withClientOptions(proxy.command('update <name>')))
    .description('change an MCP proxy (what is not given stays as it is)')
    .option('--credential <name>', 'the credential the proxy injects')
    .action(async (name: string, flags: ConfigFlags, command: Command) => {
      const body = configBody(flags);
      if (Object.keys(body).length === 0) throw new InputError('say what to change (see --help)');
      const ctx = contextFor(command, io);
      const updated = await ctx.api.patch<McpProxyView>(path(name), body);
      ctx.out.result(updated, () => `Updated MCP proxy "${updated.name}".\n${show(updated)}`);
    });

  withClientOptions(proxy.command('rm <name>'))
    .description('remove an MCP proxy with its keys')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const removed = await ctx.api.delete<McpProxyView>(path(name));
      ctx.out.result(removed, () => `Removed MCP proxy "${removed.name}" and its keys.`);
    });

  withClientOptions(proxy.command('config <name>'))
    .description('print an MCP client’s configuration for this proxy (URL and key header)')
    .requiredOption('--client <client>', `one of ${mcpClients.join(', ')}`)
    .option('--key <key>', 'the proxy key to put in it (default: a placeholder)')
    .option('--public-url <url>', 'the vault’s address as agents reach it (default: --addr)')
    .action(
      async (
        name: string,
        flags: { client: string; key?: string; publicUrl?: string; addr?: string; dataDir?: string },
        command: Command,
      ) => {
        if (!(mcpClients as readonly string[]).includes(flags.client)) {
          throw new InputError(`--client is one of ${mcpClients.join(', ')}`);
        }
        const ctx = contextFor(command, io);
        // The proxy must exist: a typo would otherwise print a configuration that can never work.
        const found = await ctx.api.get<McpProxyView>(path(name));
        const addr = flags.publicUrl ?? resolveClientSettings(command.optsWithGlobals(), io.env).addr;
        const url = proxyUrl(addr, found.name);
        const config = clientConfig(flags.client as McpClient, found.name, url, flags.key);
        ctx.out.result(
          { client: flags.client, url: config.url, where: config.where, config: config.text },
          () => `# ${config.where}\n${config.text}`,
        );
      },
    );

  withClientOptions(proxy.command('tools <name> [proxy]'))
    .description(
      'show the pinned tool definitions and what changed upstream (`proxy tools NAME`); accept the changes (`proxy tools accept NAME`)',
    )
    .option('--tool <tool>', 'with accept: only this tool (repeatable)', collect)
    .action(
      async (first: string, second: string | undefined, flags: { tool?: string[] }, command: Command) => {
        const ctx = contextFor(command, io);
        if (first === 'accept' && second !== undefined) {
          const result = await ctx.api.post<{ accepted: string[] }>(path(second, '/tools/accept'), {
            ...(flags.tool ? { tools: flags.tool } : {}),
          });
          ctx.out.result(result, () =>
            result.accepted.length === 0
              ? 'Nothing was waiting to be accepted.'
              : `Accepted: ${result.accepted.join(', ')}. Agents see them from now on.`,
          );
          return;
        }
        if (second !== undefined) throw new InputError('use `proxy tools NAME` or `proxy tools accept NAME`');
        const { items } = await ctx.api.get<{ items: ToolPin[] }>(path(first, '/tools'));
        ctx.out.result(items, () => toolsText(first, items));
      },
    );

  const key = proxy.command('key').description('proxy keys (tv_proxy_…): how an agent reaches a proxy');

  withClientOptions(key.command('create <proxy>'))
    .description('create a key for an agent (and end user); it is shown only here')
    .requiredOption('--agent <agent>', 'the agent (id or name) the key authenticates as')
    .option('--user <user>', 'the end user whose connection is injected (per-user proxies)')
    .option('--name <name>', 'a label for the key')
    .option('--ttl <duration>', 'how long the key lasts (e.g. 90d); default: until revoked')
    .action(
      async (
        proxyName: string,
        flags: { agent: string; user?: string; name?: string; ttl?: string },
        command: Command,
      ) => {
        if (flags.ttl !== undefined && parseDuration(flags.ttl) === undefined) {
          throw new InputError(`--ttl "${flags.ttl}" is not a duration; use forms like 90d, 12h or 2w`);
        }
        const ctx = contextFor(command, io);
        const created = await ctx.api.post<CreatedMcpProxyKey>(path(proxyName, '/keys'), {
          agent: flags.agent,
          ...(flags.user !== undefined ? { user: flags.user } : {}),
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.ttl !== undefined ? { ttl: flags.ttl } : {}),
        });
        ctx.out.result(
          created,
          () =>
            `${created.key}\n\nThis key is shown only once: store it now. Client configuration: tokenvault proxy config ${proxyName} --client claude --key KEY\n${showKey(created)}`,
        );
      },
    );

  withClientOptions(key.command('list <proxy>'))
    .description('list a proxy’s keys (never the keys themselves)')
    .action(async (proxyName: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<McpProxyKeyList>(path(proxyName, '/keys'));
      ctx.out.result(items, () =>
        items.length === 0
          ? `No keys. Create one with \`tokenvault proxy key create ${proxyName} --agent NAME\`.`
          : table(
              ['ID', 'AGENT', 'USER', 'NAME', 'STATUS', 'EXPIRES'],
              items.map((k) => [
                k.id,
                k.agent_name ?? k.agent_id,
                k.user,
                k.name,
                k.status,
                k.expires_at ?? 'never',
              ]),
            ),
      );
    });

  withClientOptions(key.command('revoke <proxy> <id>'))
    .description('revoke a key: refused from the next request on')
    .action(async (proxyName: string, id: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const revoked = await ctx.api.delete<McpProxyKeyView>(
        path(proxyName, `/keys/${encodeURIComponent(id)}`),
      );
      ctx.out.result(
        revoked,
        () => `Revoked proxy key ${revoked.id} of agent "${revoked.agent_name ?? revoked.agent_id}".`,
      );
    });
};
