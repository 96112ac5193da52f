import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import {
  credentialTypeDescriptors,
  type CredentialType,
  type Injection,
  type SecretFields,
} from '../credentials/credential-types.js';
import { renderTemplate } from '../credentials/injection-template.js';
import { VaultError } from '../errors/vault-error.js';

/**
 * What crosses the proxy in headers, both ways. Pure: raw header pairs in, header objects out.
 *
 * On the way up the vault drops what describes the hop between the agent and the vault (hop-by-hop
 * headers and those `Connection` names, the agent's `Host`, forwarding headers), the agent's own
 * credentials (`Authorization`, `Cookie`, `Proxy-*`) and the vault's own `X-TokenVault-*`, then adds
 * the injection. Agent headers come from Node's parser, which refuses CR, LF and other invalid
 * characters before the vault sees them; the only header value the vault builds is the injection,
 * and that is checked here.
 */

export interface RenderedInjection {
  headers: [string, string][];
  query: [string, string][];
}

// Control characters other than tab cannot be in a header value; in a query they would be encoded,
// but a secret that holds them is a broken secret either way.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const unsafeValue = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** The credential's injections rendered with its secret (header or query; `env` has no HTTP form). */
export const renderInjections = (
  type: CredentialType,
  injections: readonly Injection[],
  secret: SecretFields,
): RenderedInjection => {
  const derived = credentialTypeDescriptors[type].derived;
  const values: Record<string, string> = { ...secret };
  for (const [name, derive] of Object.entries(derived)) values[name] = derive(secret);
  const rendered: RenderedInjection = { headers: [], query: [] };
  for (const injection of injections) {
    if (injection.in === 'env') {
      throw new VaultError('proxy_injection_unsupported');
    }
    const value = renderTemplate(injection.template, values);
    if (unsafeValue.test(value)) {
      throw new VaultError(
        'proxy_injection_unsupported',
        'The credential’s secret holds a control character (CR, LF, …) that an HTTP header or query cannot carry; an admin must store it again.',
      );
    }
    (injection.in === 'header' ? rendered.headers : rendered.query).push([injection.name, value]);
  }
  return rendered;
};

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the ones that only make sense between agent and vault. */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

/** Agent → vault only: its credentials, its view of the vault, and the vault's own headers. */
const agentOnly = new Set([
  'host',
  'authorization',
  'cookie',
  'forwarded',
  'x-real-ip',
  // The vault asks for an uncompressed answer, so that text can be scanned for the secret.
  'accept-encoding',
]);

const dropsOnTheWayUp = (name: string) =>
  hopByHop.has(name) ||
  agentOnly.has(name) ||
  name.startsWith('proxy-') ||
  name.startsWith('x-forwarded-') ||
  name.startsWith('x-tokenvault-');

/** The header names a `Connection` header lists: hop-by-hop too (RFC 9110 §7.6.1). */
const namedByConnection = (value: string | string[] | undefined): Set<string> =>
  new Set(
    [value ?? []]
      .flat()
      .flatMap((v) => v.split(','))
      .map((v) => v.trim().toLowerCase())
      .filter(Boolean),
  );

/**
 * The headers sent upstream. `rawHeaders` is Node's flat [name, value, …] list. More than one `Host`
 * is refused (RFC 9112 §3.2: it is how a request asks one hop for one host and the next for another).
 */
export const upstreamRequestHeaders = (
  rawHeaders: readonly string[],
  injected: readonly [string, string][],
  upstreamHost: string,
): OutgoingHttpHeaders => {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    pairs.push([(rawHeaders[i] as string).toLowerCase(), rawHeaders[i + 1] as string]);
  }
  if (pairs.filter(([name]) => name === 'host').length > 1) {
    throw new VaultError('proxy_header_refused', 'The request has more than one Host header; send one.');
  }
  const connectionNamed = namedByConnection(pairs.filter(([n]) => n === 'connection').map(([, v]) => v));
  const injectedNames = new Set(injected.map(([name]) => name.toLowerCase()));
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of pairs) {
    if (dropsOnTheWayUp(name) || connectionNamed.has(name) || injectedNames.has(name)) continue;
    const existing = headers[name];
    headers[name] = existing === undefined ? value : [existing, value].flat();
  }
  headers.host = upstreamHost;
  headers['accept-encoding'] = 'identity';
  for (const [name, value] of injected) headers[name.toLowerCase()] = value;
  return headers;
};

/** Upstream → agent: hop-by-hop headers go, and cookies the upstream sets (they would be the vault's). */
export const agentResponseHeaders = (
  headers: IncomingHttpHeaders,
  redact: (value: string) => string,
): Record<string, string | string[]> => {
  const connectionNamed = namedByConnection(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (hopByHop.has(name) || connectionNamed.has(name) || name.startsWith('proxy-')) continue;
    if (name === 'set-cookie') continue;
    out[name] = Array.isArray(value) ? value.map(redact) : redact(value);
  }
  return out;
};
