import { parseTemplate, templateFields } from '../credentials/injection-template.js';
import { VaultError } from '../errors/vault-error.js';

/**
 * What makes an MCP proxy's configuration valid, as plain values in and out: its name, its upstream
 * (a URL, or a stdio command fixed here and never chosen by a request: DESIGN invariant 6), how the
 * credential is injected, and its tool lists.
 */

export const proxyTransports = ['streamable-http', 'sse', 'stdio'] as const;
export type ProxyTransport = (typeof proxyTransports)[number];

/** Where the credential goes: a header of each upstream HTTP request, or a stdio child's environment. */
export interface ProxyInjection {
  in: 'header' | 'env';
  name: string;
  template: string;
}

/** A proxy's upstream and guards, as stored. */
export interface ProxyConfig {
  transport: ProxyTransport;
  url: string | null;
  command: string | null;
  args: string[];
  cwd: string | null;
  credential: string;
  perUser: boolean;
  injections: ProxyInjection[];
  allowTools: string[];
  denyTools: string[];
}

const namePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const toolNamePattern = /^[A-Za-z0-9_.\-/*]{1,128}$/;
const maxArgs = 64;
const maxTools = 256;

/**
 * Headers the credential can never be injected into: hop-by-hop ones (RFC 9110 §7.6.1), the ones that
 * frame the request, and the MCP transport's own (the session id and protocol headers are the proxy's
 * to set, and a policy keyed on `Mcp-Name` must see the real one).
 */
const refusedHeaders = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
  'content-length',
  'content-type',
  'accept',
  'cookie',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'last-event-id',
]);

/** Variables the child's environment is built from by the vault itself; an injection cannot replace them. */
const refusedEnv = new Set([
  'PATH',
  'HOME',
  'NODE_OPTIONS',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
  'DYLD_INSERT_LIBRARIES',
]);

const invalid = (message: string): never => {
  throw new VaultError('invalid_mcp_proxy', message);
};

export const assertProxyName = (name: string): void => {
  if (!namePattern.test(name)) {
    throw new VaultError(
      'invalid_name',
      `"${name.slice(0, 80)}" is not a valid proxy name: use 1 to 64 lowercase letters, digits, \`-\`, \`_\` or \`.\`, starting with a letter or digit (for example \`github\`).`,
    );
  }
};

/** A template: at most 1024 characters, no control character (no CR or LF), at least one `{{field}}`. */
const checkTemplate = (template: string, where: string): void => {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(template) || template.length > 1024) {
    throw new VaultError(
      'invalid_injection',
      `${where}: the template must be at most 1024 characters with no control characters (no CR or LF).`,
    );
  }
  if (templateFields(template).length === 0) {
    throw new VaultError(
      'invalid_injection',
      `${where}: the template must name a field, as in {{access_token}}.`,
    );
  }
  // A brace left over is a placeholder the parser did not take (`{{ bad-name }}`): a typo.
  if (parseTemplate(template).some((part) => 'literal' in part && /\{\{|\}\}/.test(part.literal))) {
    throw new VaultError('invalid_injection', `${where}: a {{…}} placeholder is not a field name.`);
  }
};

export const validateInjections = (injections: readonly ProxyInjection[], transport: ProxyTransport) => {
  if (injections.length === 0 || injections.length > 16) {
    throw new VaultError(
      'invalid_injection',
      'Say how the credential is injected: 1 to 16 header templates (HTTP upstreams) or environment variables (stdio).',
    );
  }
  const seen = new Set<string>();
  return injections.map((injection): ProxyInjection => {
    const where = `${injection.in} ${String(injection.name).slice(0, 64)}`;
    if (injection.in === 'header') {
      if (transport === 'stdio') {
        throw new VaultError(
          'invalid_injection',
          `A stdio upstream takes environment variables, not headers (${where}).`,
        );
      }
      if (!headerNamePattern.test(injection.name)) {
        throw new VaultError(
          'invalid_injection',
          `"${injection.name.slice(0, 64)}" is not a valid HTTP header name.`,
        );
      }
      if (refusedHeaders.has(injection.name.toLowerCase())) {
        throw new VaultError(
          'invalid_injection',
          `The credential cannot be injected into the "${injection.name}" header (hop-by-hop, framing or MCP transport header).`,
        );
      }
    } else if (injection.in === 'env') {
      if (transport !== 'stdio') {
        throw new VaultError(
          'invalid_injection',
          `An HTTP upstream takes header templates, not variables (${where}).`,
        );
      }
      if (!envNamePattern.test(injection.name) || refusedEnv.has(injection.name)) {
        throw new VaultError(
          'invalid_injection',
          `"${injection.name.slice(0, 64)}" cannot be injected as a variable.`,
        );
      }
    } else {
      throw new VaultError('invalid_injection', 'An injection is a header or an env variable.');
    }
    checkTemplate(injection.template, where);
    const key = injection.in === 'header' ? injection.name.toLowerCase() : injection.name;
    if (seen.has(key)) throw new VaultError('invalid_injection', `${where} is given twice.`);
    seen.add(key);
    return { in: injection.in, name: injection.name, template: injection.template };
  });
};

const checkUrl = (raw: string): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return invalid(
      `"${raw.slice(0, 120)}" is not a URL; give the upstream's MCP endpoint, as https://host/mcp.`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    invalid('The upstream URL must be http or https.');
  if (url.username || url.password) {
    invalid('The upstream URL must not hold a user or password; inject the credential instead.');
  }
  url.hash = '';
  return url.toString();
};

const checkTools = (tools: readonly string[], flag: string): string[] => {
  if (tools.length > maxTools) invalid(`At most ${maxTools} ${flag} entries.`);
  for (const tool of tools) {
    if (!toolNamePattern.test(tool))
      invalid(`"${tool.slice(0, 64)}" is not a tool name (${flag}; \`*\` matches any run).`);
  }
  return [...new Set(tools)];
};

export interface ProxyConfigInput {
  transport?: string | undefined;
  url?: string | null | undefined;
  command?: string | null | undefined;
  args?: readonly string[] | undefined;
  cwd?: string | null | undefined;
  credential: string;
  perUser?: boolean | undefined;
  injections: readonly ProxyInjection[];
  allowTools?: readonly string[] | undefined;
  denyTools?: readonly string[] | undefined;
}

/** The whole configuration, checked at once: exactly one of a URL and a command, and the rest to match. */
export const validateProxyConfig = (input: ProxyConfigInput): ProxyConfig => {
  const hasUrl = input.url !== undefined && input.url !== null;
  const hasCommand = input.command !== undefined && input.command !== null;
  if (hasUrl === hasCommand)
    invalid('Give the upstream as either a URL (--url) or a command (--command), not both.');
  const transport = (input.transport ?? (hasUrl ? 'streamable-http' : 'stdio')) as ProxyTransport;
  if (!proxyTransports.includes(transport)) invalid(`The transport is one of ${proxyTransports.join(', ')}.`);
  if (hasCommand !== (transport === 'stdio')) {
    invalid(hasCommand ? 'A command is a stdio upstream.' : 'A stdio upstream needs a command.');
  }
  const args = [...(input.args ?? [])];
  if (args.length > maxArgs || args.some((a) => a.length > 4096 || a.includes('\0'))) {
    invalid(`At most ${maxArgs} arguments, each at most 4096 characters.`);
  }
  const command = hasCommand ? (input.command as string) : null;
  if (command !== null && (command.length === 0 || command.length > 1024 || command.includes('\0'))) {
    invalid('The command must be 1 to 1024 characters.');
  }
  const cwd = input.cwd ?? null;
  if (cwd !== null && !hasCommand) invalid('A working directory (--cwd) is for a stdio command.');
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(input.credential)) {
    invalid(`"${input.credential.slice(0, 64)}" is not a credential name.`);
  }
  return {
    transport,
    url: hasUrl ? checkUrl(input.url as string) : null,
    command,
    args: hasCommand ? args : [],
    cwd,
    credential: input.credential,
    perUser: Boolean(input.perUser),
    injections: validateInjections(input.injections, transport),
    allowTools: checkTools(input.allowTools ?? [], '--allow-tool'),
    denyTools: checkTools(input.denyTools ?? [], '--deny-tool'),
  };
};

const globToRegExp = (glob: string): RegExp =>
  new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&').replace(/\*/g, '.*')}$`);

/**
 * Whether the proxy lets agents see and call `tool`: not denied, and allowed when an allow list is
 * given (`*` matches any run of characters). Deny wins.
 */
export const toolPermitted = (
  config: Pick<ProxyConfig, 'allowTools' | 'denyTools'>,
  tool: string,
): boolean => {
  if (config.denyTools.some((glob) => globToRegExp(glob).test(tool))) return false;
  return config.allowTools.length === 0 || config.allowTools.some((glob) => globToRegExp(glob).test(tool));
};
