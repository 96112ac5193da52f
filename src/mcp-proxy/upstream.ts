import type { Stream } from 'node:stream';
import {
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type Transport,
} from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { CredentialType, SecretFields } from '../credentials/credential-types.js';
import { credentialTypeDescriptors } from '../credentials/credential-types.js';
import { renderTemplate } from '../credentials/injection-template.js';
import { VaultError } from '../errors/vault-error.js';
import type { GuardedFetch } from '../net/outbound-guard.js';
import { assertHostAllowed } from '../proxy/upstream-target.js';
import type { McpProxy } from './proxy-repo.js';

/**
 * The vault's side of an upstream MCP server: a client transport the vault builds from the proxy's
 * configuration alone. Nothing of the agent's request reaches it: no header of the agent's is copied
 * (its proxy key, its Authorization, its cookies never leave), only the injected credential and the
 * transport's own MCP headers. A stdio child is the configured command, with a minimal environment
 * (the SDK's short list: HOME, PATH, USER, …) plus the injected variables, its stderr piped to be
 * redacted, and no descriptor but its three pipes.
 */

/** The injection rendered with the secret: header pairs (HTTP) or variables (stdio), and every value. */
export interface RenderedSecret {
  headers: [string, string][];
  env: Record<string, string>;
  /** Every secret-bearing value, for redaction: the fields, the derived ones and the rendered injections. */
  values: string[];
}

// eslint-disable-next-line no-control-regex -- matching control characters is the point
const unsafeHeaderValue = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export const renderSecret = (proxy: McpProxy, type: CredentialType, secret: SecretFields): RenderedSecret => {
  const values: Record<string, string> = { ...secret };
  for (const [name, derive] of Object.entries(credentialTypeDescriptors[type].derived))
    values[name] = derive(secret);
  const rendered: RenderedSecret = { headers: [], env: {}, values: [] };
  for (const injection of proxy.injections) {
    let value: string;
    try {
      value = renderTemplate(injection.template, values);
    } catch {
      throw new VaultError(
        'invalid_injection',
        `The proxy's template for ${injection.name} names a field the credential "${proxy.credential}" lacks; ask an admin to fix the proxy.`,
      );
    }
    if (injection.in === 'header') {
      if (unsafeHeaderValue.test(value)) {
        throw new VaultError(
          'invalid_injection',
          'The credential holds a control character a header cannot carry.',
        );
      }
      rendered.headers.push([injection.name, value]);
    } else {
      rendered.env[injection.name] = value;
    }
    rendered.values.push(value);
  }
  const basicUser = type === 'basic' ? secret.username : undefined;
  for (const [field, value] of Object.entries(values))
    if (field !== 'username' || value !== basicUser) rendered.values.push(value);
  return rendered;
};

export interface UpstreamOptions {
  proxy: McpProxy;
  /** The credential's allowed hosts: an HTTP upstream must be one of them (DESIGN invariant 6). */
  allowedHosts: readonly string[];
  /** The injection as of the newest decision; read at each HTTP request, so the secret is fresh. */
  current: () => RenderedSecret;
  fetch: GuardedFetch;
  /** Where a stdio child's stderr goes (redacted by the caller). */
  onStderr: (text: string) => void;
}

/** A connected-to-be transport to the proxy's upstream (call `start()`). */
export const upstreamTransport = ({
  proxy,
  allowedHosts,
  current,
  fetch,
  onStderr,
}: UpstreamOptions): Transport => {
  if (proxy.transport === 'stdio') {
    const transport = new StdioClientTransport({
      command: proxy.command as string,
      args: proxy.args,
      env: current().env,
      ...(proxy.cwd !== null ? { cwd: proxy.cwd } : {}),
      stderr: 'pipe',
    });
    (transport.stderr as Stream | null)?.on('data', (chunk: Buffer) => onStderr(chunk.toString('utf8')));
    return transport;
  }
  const url = new URL(proxy.url as string);
  assertHostAllowed(url, url.toString(), allowedHosts);
  const injecting = async (input: string | URL | Request, init?: RequestInit) => {
    const headers = new Headers(init?.headers);
    for (const [name, value] of current().headers) headers.set(name, value);
    return fetch(input instanceof Request ? input.url : input, { ...init, headers });
  };
  return proxy.transport === 'sse'
    ? new SSEClientTransport(url, { fetch: injecting })
    : new StreamableHTTPClientTransport(url, { fetch: injecting });
};

/**
 * What a failed send to the upstream means for the session:
 * - `unauthorized`: HTTP 401, the credential was refused (an OAuth one gets one refresh and one retry);
 * - `session_lost`: HTTP 404 on a request with the upstream's session id: the upstream restarted and
 *   forgot the session (the specification's signal to initialize again); nothing was processed;
 * - `unreachable`: the connection was refused: the upstream is down (or restarting); nothing was sent;
 * - `failed`: anything else (a dropped connection may have delivered the request: never resent).
 */
export type UpstreamFailure = 'unauthorized' | 'session_lost' | 'unreachable' | 'failed';

export const upstreamFailure = (error: unknown): UpstreamFailure => {
  const status = (error as { status?: unknown } | null)?.status;
  if (status === 401) return 'unauthorized';
  if (status === 404) return 'session_lost';
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  if (error instanceof TypeError && cause?.code === 'ECONNREFUSED') return 'unreachable';
  return 'failed';
};
