import type { Command } from 'commander';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

interface OAuthAppView {
  id: string;
  name: string;
  provider: string;
  client_id: string;
  client_secret_set: boolean;
  issuer: string | null;
  scopes: string[];
  parameters: Record<string, string>;
  endpoints: Record<string, string> | null;
  agent_connect: boolean;
  agent_connect_flows?: string[];
  resource: string | null;
  redirect_uri: string;
  registration: 'client_id_metadata_document' | 'dynamic_client_registration' | null;
  created_at: string;
}

const registrationText: Record<NonNullable<OAuthAppView['registration']>, string> = {
  client_id_metadata_document: 'client ID metadata document (the client id is the vault’s own URL)',
  dynamic_client_registration: 'dynamic client registration (RFC 7591)',
};

interface AddFlags {
  name?: string;
  clientId: string;
  clientSecretStdin?: boolean;
  issuer?: string;
  scopes?: string;
  param?: string[];
  authorizationUrl?: string;
  tokenUrl?: string;
  deviceUrl?: string;
  revocationUrl?: string;
  introspectionUrl?: string;
  clientAuth?: string;
  resource?: string;
  /** `--agent-connect` alone: true; `--agent-connect device` or `browser,device`: the flows. */
  agentConnect?: boolean | string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const splitList = (value: string) =>
  value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

const show = (a: OAuthAppView) =>
  keyValues([
    ['name', a.name],
    ['id', a.id],
    ['provider', a.provider],
    ['client id', a.client_id],
    ['client secret', a.client_secret_set ? 'set (encrypted)' : 'none (public client)'],
    ['issuer', a.issuer],
    ['scopes', a.scopes],
    ['parameters', Object.entries(a.parameters).map(([k, v]) => `${k}=${v}`)],
    ['endpoints', a.endpoints ? Object.entries(a.endpoints).map(([k, v]) => `${k} ${v}`) : null],
    [
      'agent connect',
      a.agent_connect ? `allowed (${(a.agent_connect_flows ?? ['browser']).join(', ')})` : 'no',
    ],
    ['resource', a.resource],
    ['registration', a.registration ? registrationText[a.registration] : null],
    ['redirect uri', a.redirect_uri],
    ['created at', a.created_at],
  ]);

const registrationOf = (value: string | undefined) => {
  if (value === undefined) return undefined;
  const known: Record<string, string> = {
    auto: 'auto',
    'metadata-document': 'client_id_metadata_document',
    dynamic: 'dynamic_client_registration',
  };
  const choice = known[value];
  if (!choice) throw new InputError('--registration is auto, metadata-document or dynamic');
  return choice;
};

const parameters = (pairs: string[] = []) =>
  Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new InputError(`--param expects NAME=VALUE, got "${pair}"`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );

const endpoints = (flags: AddFlags) => {
  const given = {
    authorization: flags.authorizationUrl,
    token: flags.tokenUrl,
    deviceAuthorization: flags.deviceUrl,
    revocation: flags.revocationUrl,
    introspection: flags.introspectionUrl,
  };
  const set = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined));
  return Object.keys(set).length === 0 ? undefined : set;
};

const clientAuthOf = (value: string | undefined) => {
  if (value === undefined) return undefined;
  const known: Record<string, string> = { basic: 'client_secret_basic', post: 'client_secret_post' };
  const method = known[value] ?? value;
  if (!['client_secret_basic', 'client_secret_post'].includes(method)) {
    throw new InputError('--client-auth is basic or post');
  }
  return method;
};

/** `tokenvault oauth app add|list|show|rm`: the OAuth clients the vault connects users through. */
export const registerOAuthAppCommand = (oauth: Command, io: CliIo): void => {
  const app = oauth.command('app').description('OAuth apps: the clients registered with providers');
  const path = (name: string) => `/v1/admin/oauth/apps/${encodeURIComponent(name)}`;

  withClientOptions(app.command('add <provider>'))
    .description('add an app: a catalog provider, `oidc` (with --issuer) or `generic` (with endpoint flags)')
    .option('--name <name>', 'the app name (default: the provider name)')
    .requiredOption('--client-id <id>', 'the client id the provider gave you')
    .option('--client-secret-stdin', 'read the client secret from standard input (stored encrypted)')
    .option('--issuer <url>', 'oidc: the issuer to discover')
    .option('--scopes <list>', 'scopes to ask for (comma- or space-separated; default: the provider’s)')
    .option('--param <name=value>', 'a provider setting such as tenant=… or subdomain=…; repeatable', collect)
    .option('--authorization-url <url>', 'generic: the authorization endpoint')
    .option('--token-url <url>', 'generic: the token endpoint')
    .option('--device-url <url>', 'generic: the device authorization endpoint')
    .option('--revocation-url <url>', 'generic: the revocation endpoint')
    .option('--introspection-url <url>', 'generic: the introspection endpoint')
    .option('--client-auth <method>', 'basic or post (oidc/generic; default from discovery or basic)')
    .option('--resource <uri>', 'RFC 8707 resource indicator to send on every request')
    .option(
      '--agent-connect [flows]',
      'let agents ask their users to connect through this app; optionally through which flows: browser, device (RFC 8628) or browser,device',
    )
    .action(async (provider: string, flags: AddFlags, command: Command) => {
      const ctx = contextFor(command, io);
      const clientSecret = flags.clientSecretStdin
        ? (await ctx.readStdin()).replace(/\r?\n$/, '')
        : undefined;
      if (flags.clientSecretStdin && !clientSecret)
        throw new InputError('the client secret on standard input is empty');
      const added = await ctx.api.post<OAuthAppView>('/v1/admin/oauth/apps', {
        provider,
        name: flags.name,
        client_id: flags.clientId,
        client_secret: clientSecret,
        issuer: flags.issuer,
        scopes: flags.scopes === undefined ? undefined : splitList(flags.scopes),
        parameters: flags.param ? parameters(flags.param) : undefined,
        endpoints: endpoints(flags),
        client_auth: clientAuthOf(flags.clientAuth),
        resource: flags.resource,
        agent_connect: flags.agentConnect === undefined ? undefined : true,
        agent_connect_flows:
          typeof flags.agentConnect === 'string' ? splitList(flags.agentConnect) : undefined,
      });
      ctx.out.result(
        added,
        () =>
          `Added OAuth app "${added.name}" (${added.provider}).\n` +
          `Register this redirect URL with the provider:\n  ${added.redirect_uri}`,
      );
    });

  withClientOptions(app.command('discover'))
    .description(
      'add an app for a remote MCP server: its authorization discovery, then the vault’s client ID metadata document where the server supports it, else dynamic client registration',
    )
    .requiredOption('--mcp-url <url>', 'the MCP server’s URL (it must answer 401 with its resource metadata)')
    .option('--name <name>', 'the app name (default: the MCP server’s host name)')
    .option('--scopes <list>', 'scopes to ask for (default: those the server’s resource metadata advertises)')
    .option('--agent-connect', 'let agents ask their users to connect through this app')
    .option(
      '--registration <how>',
      'auto (default), metadata-document (the vault’s client ID metadata document, or fail) or dynamic (RFC 7591 even where a document would do: a vault the server cannot reach)',
    )
    .action(
      async (
        flags: {
          mcpUrl: string;
          name?: string;
          scopes?: string;
          agentConnect?: boolean;
          registration?: string;
        },
        command: Command,
      ) => {
        const ctx = contextFor(command, io);
        const added = await ctx.api.post<OAuthAppView>('/v1/admin/oauth/apps/discover', {
          mcp_url: flags.mcpUrl,
          name: flags.name,
          scopes: flags.scopes === undefined ? undefined : splitList(flags.scopes),
          agent_connect: flags.agentConnect,
          registration: registrationOf(flags.registration),
        });
        ctx.out.result(
          added,
          () =>
            `${added.registration === 'client_id_metadata_document' ? 'Identified to' : 'Registered with'} ` +
            `${added.issuer ?? 'the authorization server'} as client "${added.client_id}"; ` +
            `added OAuth app "${added.name}" for the resource ${added.resource ?? '(none)'}.\n` +
            `Connect users with: tokenvault connect ${added.name} --agent AGENT --user USER`,
        );
      },
    );

  withClientOptions(app.command('list'))
    .description('list OAuth apps')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<{ items: OAuthAppView[] }>('/v1/admin/oauth/apps');
      ctx.out.result(items, () =>
        table(
          ['NAME', 'PROVIDER', 'CLIENT ID', 'SCOPES', 'AGENT CONNECT'],
          items.map((a) => [
            a.name,
            a.provider,
            a.client_id,
            a.scopes.join(' '),
            a.agent_connect ? 'yes' : 'no',
          ]),
        ),
      );
    });

  withClientOptions(app.command('show <name>'))
    .description('show one OAuth app (never its client secret) and its redirect URL')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<OAuthAppView>(path(name));
      ctx.out.result(found, () => show(found));
    });

  withClientOptions(app.command('rm <name>'))
    .description('remove an OAuth app (refused while credentials hold its tokens)')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      await ctx.api.delete(path(name));
      ctx.out.result({ deleted: name }, () => `Removed OAuth app "${name}".`);
    });
};
