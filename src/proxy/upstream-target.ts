import { isIP } from 'node:net';
import { VaultError } from '../errors/vault-error.js';
import type { OutboundAllow } from '../net/outbound-guard.js';

/**
 * Where a proxied call goes, from plain values: the credential's base URL, the path and query the agent
 * sent (raw, as they came off the wire), and the credential's allowed hosts. Pure, so every refusal is
 * a unit test.
 *
 * The path is appended below the base URL's path, never resolved against it: a path that could mean
 * anything else is refused with `proxy_path_refused` rather than normalised, because what the vault
 * checked and what the upstream (or a proxy before it) understands must be the same path. Refused:
 * `.` and `..` segments (also percent-encoded), encoded slashes and backslashes, encoded control
 * characters, malformed percent-encoding, and a path that starts like a URL (`//host`, `https:`).
 */

/** Query parameters the vault reads itself and never forwards (`?user=` selects a per-user credential). */
export const reservedQueryParameters: readonly string[] = ['user'];

export interface UpstreamTarget {
  url: URL;
  /** The path as sent upstream, without the query (what the audit event records). */
  path: string;
}

const refusePath = (why: string): never => {
  throw new VaultError(
    'proxy_path_refused',
    `The path was refused: ${why}; send a plain path below the base URL.`,
  );
};

const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return refusePath('it has malformed percent-encoding');
  }
};

/** Checks the raw path (everything after `/v1/proxy/{service}`, before `?`). */
export const checkProxyPath = (rawPath: string): void => {
  if (rawPath === '') return;
  if (!rawPath.startsWith('/')) refusePath('it must start with /');
  if (rawPath.includes('\\') || /%5c/i.test(rawPath)) refusePath('it holds a backslash');
  if (/%2f/i.test(rawPath)) refusePath('it holds an encoded slash (%2F)');
  if (/%(?:[01][0-9a-f]|7f)/i.test(rawPath)) refusePath('it holds an encoded control character');
  if (rawPath.startsWith('//')) refusePath('it starts with //, as a URL naming another host does');
  const segments = rawPath.slice(1).split('/').map(decodeSegment);
  if (/^[a-z][a-z0-9+.-]*:/i.test(segments[0] ?? '')) refusePath('it starts with a URL scheme');
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    refusePath('it has a . or .. segment');
  }
};

const nameOf = (pair: string): string => {
  const name = pair.split('=', 1)[0] ?? '';
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
};

/**
 * The agent's query as it sent it, minus the parameters the vault reads (`user`) or injects (the
 * agent cannot choose the value of an injected parameter), plus the injected ones. Kept raw rather
 * than re-serialised, so the upstream sees the agent's own encoding.
 */
export const upstreamQuery = (rawQuery: string, injected: readonly [string, string][]): string => {
  const dropped = new Set([...reservedQueryParameters, ...injected.map(([name]) => name)]);
  const kept = rawQuery.split('&').filter((pair) => pair !== '' && !dropped.has(nameOf(pair)));
  const added = injected.map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return [...kept, ...added].join('&');
};

/** The upstream URL: base URL + path + query; throws `proxy_path_refused`. */
export const upstreamTarget = (
  baseUrl: string,
  rawPath: string,
  rawQuery: string,
  injectedQuery: readonly [string, string][] = [],
): UpstreamTarget => {
  checkProxyPath(rawPath);
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/+$/, '');
  const query = upstreamQuery(rawQuery, injectedQuery);
  const url = new URL(
    `${base.origin}${basePath}${rawPath || (basePath ? '' : '/')}${query ? `?${query}` : ''}`,
  );
  // What the URL parser made of it must still be below the base path, on the base origin.
  const below = basePath === '' || url.pathname === basePath || url.pathname.startsWith(`${basePath}/`);
  if (url.origin !== base.origin || !below) refusePath('it does not stay below the base URL');
  return { url, path: url.pathname };
};

/** `host` or `host:port` as an allowed-hosts entry gives it; `*.` allowed as the first label. */
const parseHostEntry = (entry: string) => {
  const match = /^(.*?)(?::(\d{1,5}))?$/.exec(entry.toLowerCase()) as RegExpExecArray;
  return { name: match[1] as string, port: match[2] ?? '' };
};

/**
 * Whether the credential may be sent to the URL's host. When the credential lists allowed hosts, that
 * list is the whole truth (DESIGN invariant 6): the host must match an entry exactly, with the port
 * when the entry names one and the scheme's default port when it does not (`*.example.com` matches
 * any name below example.com). With no list, only the base URL's own host is allowed.
 */
export const hostAllowed = (url: URL, baseUrl: string, allowedHosts: readonly string[]): boolean => {
  if (allowedHosts.length === 0) return url.host === new URL(baseUrl).host;
  const hostname = url.hostname.toLowerCase();
  return allowedHosts.some((entry) => {
    const { name, port } = parseHostEntry(entry);
    if (port !== url.port) return false;
    return name.startsWith('*.') ? hostname.endsWith(name.slice(1)) : hostname === name;
  });
};

export const assertHostAllowed = (url: URL, baseUrl: string, allowedHosts: readonly string[]): void => {
  if (!hostAllowed(url, baseUrl, allowedHosts)) {
    throw new VaultError(
      'proxy_host_not_allowed',
      `The credential's base URL host ${url.host} is not among its allowed hosts (${allowedHosts.join(', ')}); ask an admin to add it or change the base URL.`,
    );
  }
};

/**
 * What the outbound guard may connect to for this credential beyond the public internet: the hosts
 * and addresses its allowed hosts name explicitly (a wildcard never names a private address). An
 * unlisted loopback or private base URL stays refused.
 */
export const explicitlyAllowed = (allowedHosts: readonly string[]): OutboundAllow => {
  const allow: OutboundAllow = { hosts: [], cidrs: [] };
  for (const entry of allowedHosts) {
    const { name } = parseHostEntry(entry);
    if (name.startsWith('*.')) continue;
    const family = isIP(name);
    if (family === 0) allow.hosts.push(name);
    else allow.cidrs.push(`${name}/${family === 4 ? 32 : 128}`);
  }
  return allow;
};
