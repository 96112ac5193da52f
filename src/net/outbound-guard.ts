import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { type IncomingMessage, request as httpRequest, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { embeddedIpv4, nonPublicRange } from './ip-ranges.js';

/** A request failed on a kept-alive connection the server had closed: nothing reached the server. */
class StaleConnection extends Error {
  code = 'ECONNRESET';
  constructor() {
    super('socket hang up (a kept-alive connection the server had closed)');
  }
}

/**
 * The one way the vault makes an HTTP request to a URL someone else chose: an issuer's discovery
 * document and key set today; OAuth endpoints, proxied upstreams and event webhooks later. The
 * address is checked after DNS resolution, by the very lookup the connection uses, so a name cannot
 * resolve to a public address for the check and to a private one for the connection (DNS rebinding).
 * Private, loopback, link-local (cloud metadata), CGNAT, unique-local and translated forms of them
 * are refused unless the operator's allowlist (`TOKENVAULT_OUTBOUND_ALLOW`) names the host or the
 * address. Each redirect hop, when the caller follows any, goes through the same check.
 */

/** Raised when the guard refuses a URL or an address; nothing was sent. */
export class OutboundRefusedError extends Error {
  readonly code = 'EOUTBOUND_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'OutboundRefusedError';
  }
}

/** What the operator allows beyond the public internet: host names (exact) and addresses or CIDRs. */
export interface OutboundAllow {
  hosts: string[];
  cidrs: string[];
}

const hostPattern =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/;

/**
 * Parses `TOKENVAULT_OUTBOUND_ALLOW`: a comma-separated list of host names (`issuer.internal`,
 * `localhost`), addresses (`127.0.0.1`, `::1`) and CIDRs (`10.20.0.0/16`, `fd00::/8`).
 */
export const parseOutboundAllow = (raw: string): OutboundAllow => {
  const allow: OutboundAllow = { hosts: [], cidrs: [] };
  for (const entry of raw
    .split(',')
    .map((e) => e.trim().toLowerCase())
    .filter(Boolean)) {
    const [address, prefix, extra] = entry.replace(/^\[(.*)\]$/, '$1').split('/');
    const family = isIP(address ?? '');
    if (family !== 0) {
      const max = family === 4 ? 32 : 128;
      if (
        extra !== undefined ||
        (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= max))
      )
        throw new Error(`"${entry}" is not an address or a CIDR (prefix 0 to ${max})`);
      allow.cidrs.push(prefix === undefined ? `${address}/${max}` : `${address}/${prefix}`);
    } else if (prefix === undefined && hostPattern.test(entry)) {
      allow.hosts.push(entry.replace(/\.$/, ''));
    } else {
      throw new Error(`"${entry}" is not a host name, an address or a CIDR`);
    }
  }
  return allow;
};

export interface GuardedFetchOptions {
  /** Redirects to follow, each re-checked (default 0: a 3xx is returned to the caller as it is). */
  redirects?: number;
}

/** A fetch-shaped function: what jose's `customFetch`, and any caller written for `fetch`, accept. */
export type GuardedFetch = (
  input: string | URL,
  init?: RequestInit,
  options?: GuardedFetchOptions,
) => Promise<Response>;

export interface OutboundGuardDeps {
  allow?: OutboundAllow;
  /** DNS resolution (node's by default); the seam for tests of names that resolve to odd places. */
  lookup?: typeof dnsLookup;
}

const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const nullBodyStatuses = new Set([204, 205, 304]);

const toHeaders = (response: IncomingMessage): Headers => {
  const headers = new Headers();
  for (let i = 0; i + 1 < response.rawHeaders.length; i += 2)
    headers.append(response.rawHeaders[i]!, response.rawHeaders[i + 1]!);
  return headers;
};

const bodyOf = (body: RequestInit['body']): Buffer | Readable | undefined => {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string' || body instanceof URLSearchParams) return Buffer.from(String(body));
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (body instanceof ReadableStream) return Readable.fromWeb(body as NodeReadableStream);
  throw new TypeError('guardedFetch sends a string, bytes, URLSearchParams or a ReadableStream body');
};

/** An allowlist as the guard checks it: exact host names, and addresses in a block list. */
interface CompiledAllow {
  hosts: ReadonlySet<string>;
  addresses: BlockList;
}

const compileAllow = (allow: OutboundAllow): CompiledAllow => {
  const addresses = new BlockList();
  for (const cidr of allow.cidrs) {
    const [network, prefix] = cidr.split('/') as [string, string];
    addresses.addSubnet(network, Number(prefix), isIP(network) === 4 ? 'ipv4' : 'ipv6');
  }
  return { hosts: new Set(allow.hosts), addresses };
};

export const createOutboundGuard = ({
  allow = { hosts: [], cidrs: [] },
  lookup = dnsLookup,
}: OutboundGuardDeps = {}) => {
  const operator = compileAllow(allow);
  const none: CompiledAllow = compileAllow({ hosts: [], cidrs: [] });

  const addressAllowed = (address: string, extra: CompiledAllow): boolean => {
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    const inner = type === 'ipv6' ? embeddedIpv4(address) : undefined;
    return [operator, extra].some(
      ({ addresses }) =>
        addresses.check(address, type) || (inner !== undefined && addresses.check(inner, 'ipv4')),
    );
  };

  /** Throws unless the address is public or allowed. */
  const checkAddress = (host: string, address: string, extra: CompiledAllow): void => {
    const range = nonPublicRange(address);
    if (range !== undefined && !addressAllowed(address, extra)) {
      throw new OutboundRefusedError(
        `${host === address ? address : `${host} (${address})`} is a ${range} address; the vault does not connect to it unless TOKENVAULT_OUTBOUND_ALLOW names it`,
      );
    }
  };

  /** The lookup the connection itself uses: what it connects to is what was checked. */
  const pinnedLookup =
    (host: string, extra: CompiledAllow): LookupFunction =>
    (hostname, options, callback) => {
      lookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints }, (error, found) => {
        if (error) return callback(error, '', 0);
        const addresses = found as LookupAddress[];
        try {
          if (addresses.length === 0) throw new OutboundRefusedError(`${host} has no address`);
          // Every answer is checked, not only the first: the connection may try each of them.
          for (const { address } of addresses) checkAddress(host, address, extra);
        } catch (refusal) {
          return callback(refusal as NodeJS.ErrnoException, '', 0);
        }
        if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        else callback(null, addresses[0]!.address, addresses[0]!.family);
      });
    };

  /** The URL parts the guard insists on, and the host whose address will be checked (or not). */
  const checkUrl = (url: URL, extra: CompiledAllow = none): { host: string; checked: boolean } => {
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new OutboundRefusedError(`${url.protocol} URLs are not fetched`);
    if (url.username || url.password)
      throw new OutboundRefusedError('a URL with a user name or password is not fetched');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (operator.hosts.has(host) || extra.hosts.has(host)) return { host, checked: false };
    if (isIP(host) !== 0) checkAddress(host, host, extra);
    return { host, checked: true };
  };

  const once = (url: URL, init: RequestInit, body: Buffer | Readable | undefined): Promise<Response> => {
    const { host, checked } = checkUrl(url);
    const headers = new Headers(init.headers);
    // No compressed answer: the body is handed on as received.
    headers.set('accept-encoding', 'identity');
    const options: RequestOptions = {
      method: init.method ?? 'GET',
      headers: Object.fromEntries(headers),
      signal: init.signal ?? undefined,
      ...(checked ? { lookup: pinnedLookup(host, none) } : {}),
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      const request = send(url, options, (response) => {
        const status = response.statusCode ?? 502;
        const stream = nullBodyStatuses.has(status)
          ? null
          : (Readable.toWeb(response) as ReadableStream<Uint8Array>);
        if (stream === null) response.resume();
        resolve(
          new Response(stream, { status, statusText: response.statusMessage, headers: toHeaders(response) }),
        );
      });
      request.on('error', (error) => {
        // As fetch does: a refused address or a failed connection is a TypeError whose cause says why.
        if (error.name === 'AbortError' || error.name === 'TimeoutError') reject(error);
        else if (request.reusedSocket && (error as NodeJS.ErrnoException).code === 'ECONNRESET')
          reject(new StaleConnection());
        else reject(new TypeError('fetch failed', { cause: error }));
      });
      if (body instanceof Readable) body.pipe(request);
      else request.end(body);
    });
  };

  /**
   * A kept-alive connection the server closed (it restarted, or timed it out) fails the request
   * sent on it before the server read it: sent again, on another connection, as Node's documentation
   * advises. Never a streamed body (it is spent).
   */
  const onFreshConnection = async (url: URL, init: RequestInit, body: Buffer | Readable | undefined) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await once(url, init, body);
      } catch (error) {
        if (!(error instanceof StaleConnection)) throw error;
        if (body instanceof Readable || attempt >= 3) throw new TypeError('fetch failed', { cause: error });
      }
    }
  };

  const guardedFetch: GuardedFetch = async (input, init = {}, { redirects = 0 } = {}) => {
    let url = new URL(String(input));
    let current = { ...init };
    let body = bodyOf(init.body);
    for (let hop = 0; ; hop += 1) {
      const response = await onFreshConnection(url, current, body);
      const location = response.headers.get('location');
      if (!redirectStatuses.has(response.status) || !location || hop >= redirects) return response;
      await response.body?.cancel();
      if (body instanceof Readable)
        throw new OutboundRefusedError('a streamed request body cannot follow a redirect');
      const next = new URL(location, url);
      const headers = new Headers(current.headers);
      // Credentials meant for one origin never go to another.
      if (next.origin !== url.origin)
        for (const name of ['authorization', 'cookie', 'proxy-authorization']) headers.delete(name);
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && current.method === 'POST')
      ) {
        current = { ...current, method: 'GET' };
        body = undefined;
        headers.delete('content-type');
        headers.delete('content-length');
      }
      current = { ...current, headers };
      url = next;
    }
  };

  return {
    fetch: guardedFetch,
    /**
     * Refuses now, before any request, a URL whose host is an address the guard would refuse (for
     * settings checked when they are saved). A host name is only checked when it is fetched.
     */
    checkUrl: (raw: string): void => void checkUrl(new URL(raw)),
    /**
     * For a caller that makes its own `node:http` request (the HTTP proxy, which streams both ways):
     * checks the URL as `fetch` does, with `extra` allowed for this call only on top of the operator's
     * allowlist (a credential's own hosts), and returns the lookup the connection must use, so what it
     * connects to is what was checked. Throws OutboundRefusedError; redirects are the caller's.
     */
    connectOptions: (url: URL, extra: OutboundAllow): Pick<RequestOptions, 'lookup'> => {
      const compiled = compileAllow(extra);
      const { host, checked } = checkUrl(url, compiled);
      return checked ? { lookup: pinnedLookup(host, compiled) } : {};
    },
  };
};

export type OutboundGuard = ReturnType<typeof createOutboundGuard>;

/** Whether an error (or its cause) is a refusal of the guard, and so not worth retrying. */
export const outboundRefusal = (error: unknown): OutboundRefusedError | undefined => {
  if (error instanceof OutboundRefusedError) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return cause instanceof OutboundRefusedError ? cause : undefined;
};
