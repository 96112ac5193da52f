import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import { VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { createOutboundGuard, outboundRefusal } from '../net/outbound-guard.js';

const loopbackHosts = new Set(['localhost', '[::1]']);
const isLoopback = (hostname: string) => loopbackHosts.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname);

/**
 * The shape of every URL the vault fetches keys from: https only (plain http only on loopback, for
 * local issuers and tests), no credentials in the URL, no fragment. `query: false` also refuses a
 * query (an OIDC issuer identifier has none). Admins set these URLs, or an issuer's discovery
 * document does; where they may lead is the outbound guard's to decide (src/net/outbound-guard.ts),
 * when they are fetched.
 */
export const checkFetchUrl = (raw: string, what: string, { query = true } = {}): string => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new VaultError('invalid_request', `The ${what} "${raw.slice(0, 200)}" is not a valid URL.`);
  }
  if (url.username || url.password) {
    throw new VaultError('invalid_request', `The ${what} must not carry a user name or password.`);
  }
  if (url.hash || raw.includes('#') || (!query && (url.search || raw.includes('?')))) {
    throw new VaultError(
      'invalid_request',
      `The ${what} must not have a fragment${query ? '' : ' or a query'}.`,
    );
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
    throw new VaultError(
      'invalid_request',
      `The ${what} must use https (plain http is allowed only on loopback): ${url.origin}`,
    );
  }
  return raw;
};

const describeFetchError = (error: unknown, timeoutMs: number): string => {
  const refusal = outboundRefusal(error);
  if (refusal) return `refused: ${refusal.message}`;
  const name = (error as Error | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const code = (error as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return typeof code === 'string' ? `cannot connect (${code})` : 'cannot connect';
};

/** Reads at most `maxBytes` of a body, so a hostile endpoint cannot make the vault buffer gigabytes. */
const readLimited = async (response: Response, maxBytes: number): Promise<string> => {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error(`the response is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
};

export interface RemoteKeySetsOptions {
  clock: Clock;
  /**
   * The fetch used for discovery documents and key sets: the outbound guard's, whose allowlist the
   * operator configures (by default one that refuses every non-public address).
   */
  fetch?: typeof fetch;
  /** Hosts a `jwks_uri` may name besides its issuer's own origin (TOKENVAULT_JWKS_HOSTS). */
  jwksHosts?: readonly string[];
  timeoutMs?: number;
  /** How long a discovery document is reused before it is fetched again. */
  discoveryTtlMs?: number;
}

export interface Discovery {
  issuer: string;
  jwksUri: string;
}

const maxCachedKeySets = 1000;
const maxDocumentBytes = 512 * 1024;

/**
 * Discovery documents and remote JWKS, cached per URL. jose's remote key set caches the keys and
 * refetches (at most every 30 s) when a token names a key id it has not seen, which is how an
 * issuer's key rotation reaches the vault without a restart.
 */
export const createRemoteKeySets = ({
  clock,
  fetch: fetchImpl = createOutboundGuard().fetch as typeof fetch,
  jwksHosts = [],
  timeoutMs = 5000,
  discoveryTtlMs = 3_600_000,
}: RemoteKeySetsOptions) => {
  const keySets = new Map<string, JWTVerifyGetKey>();
  const discoveries = new Map<string, { discovery: Discovery; at: number }>();

  const unreachable = (issuer: string, problem: string) =>
    new VaultError(
      'issuer_unreachable',
      `The discovery document of ${issuer.slice(0, 200)} could not be used: ${problem}.`,
    );

  const remember = <V>(map: Map<string, V>, key: string, value: V) => {
    if (map.size >= maxCachedKeySets && !map.has(key)) map.delete(map.keys().next().value as string);
    map.set(key, value);
  };

  const keySet = (url: string): JWTVerifyGetKey => {
    const cached = keySets.get(url);
    if (cached) return cached;
    const created = createRemoteJWKSet(new URL(url), {
      timeoutDuration: timeoutMs,
      [customFetch]: fetchImpl,
    });
    remember(keySets, url, created);
    return created;
  };

  const discover = async (issuer: string): Promise<Discovery> => {
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let response: Response;
    let text: string;
    try {
      // A redirect could point the vault anywhere; an issuer serves its own discovery document.
      response = await fetchImpl(url, {
        redirect: 'manual',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await readLimited(response, maxDocumentBytes);
    } catch (error) {
      throw unreachable(issuer, describeFetchError(error, timeoutMs));
    }
    if (response.status !== 200) throw unreachable(issuer, `${url} answered ${response.status}`);
    let document: { issuer?: unknown; jwks_uri?: unknown };
    try {
      document = JSON.parse(text) as typeof document;
    } catch {
      throw unreachable(issuer, `${url} is not JSON`);
    }
    // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer it was fetched for.
    if (document.issuer !== issuer) {
      throw unreachable(
        issuer,
        `it names issuer "${String(document.issuer).slice(0, 200)}", not "${issuer}"`,
      );
    }
    if (typeof document.jwks_uri !== 'string') throw unreachable(issuer, 'it has no jwks_uri');
    let jwksUri: string;
    try {
      jwksUri = checkFetchUrl(document.jwks_uri, 'jwks_uri of the issuer');
    } catch (error) {
      throw unreachable(issuer, (error as Error).message.replace(/\.$/, ''));
    }
    // An issuer publishes its own keys: a key set elsewhere is someone the operator did not trust
    // (or a URL chosen to make the vault fetch it), unless the operator names that host.
    const jwksUrl = new URL(jwksUri);
    if (jwksUrl.origin !== new URL(issuer).origin && !jwksHosts.includes(jwksUrl.hostname.toLowerCase())) {
      throw unreachable(
        issuer,
        `its jwks_uri ${jwksUrl.origin} is not on the issuer's origin; allow that host with TOKENVAULT_JWKS_HOSTS if it is right`,
      );
    }
    return { issuer, jwksUri };
  };

  return {
    /** Fetches and checks an issuer's discovery document now (used when an issuer is trusted). */
    discover,

    /** The issuer's key set, through its (cached) discovery document. */
    async issuerKeys(issuer: string): Promise<JWTVerifyGetKey> {
      const now = clock.now().getTime();
      const cached = discoveries.get(issuer);
      if (cached && now - cached.at < discoveryTtlMs) return keySet(cached.discovery.jwksUri);
      const discovery = await discover(issuer);
      remember(discoveries, issuer, { discovery, at: now });
      return keySet(discovery.jwksUri);
    },

    /** A key set published at a URL an admin registered for an agent. */
    urlKeys: (url: string): JWTVerifyGetKey => keySet(url),
  };
};

export type RemoteKeySets = ReturnType<typeof createRemoteKeySets>;
