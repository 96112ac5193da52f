import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccessClient } from '../access/access-types.js';
import { clientAddress, parseTrustedProxies } from '../policy/client-address.js';
import type { CountryLookup } from '../policy/country-lookup.js';

/**
 * Who the client is, once per request: `clientIpOf(request)` is the address every part of the vault
 * uses (audit `client.ip`, the auth-failure limiter, the decision's `client.ip`). The socket peer is
 * the client unless it is one of `TOKENVAULT_TRUSTED_PROXIES`; then `X-Forwarded-For` is read from the
 * right, skipping trusted hops (src/policy/client-address.ts). Fastify's own `trustProxy` stays off,
 * so `X-Forwarded-Host` and `-Proto` never change what the vault thinks its own URL is, and
 * `request.ip` (the socket peer) is read nowhere else (a lint rule says so).
 */
export const installClientInfo = (
  app: FastifyInstance,
  deps: { trustedProxies: readonly string[]; countries: CountryLookup },
): void => {
  const { matcher } = parseTrustedProxies(deps.trustedProxies);
  const anyTrusted = deps.trustedProxies.length > 0;
  app.decorateRequest('clientIp', undefined);
  app.decorate('countries', deps.countries);
  app.addHook('onRequest', async (request) => {
    // eslint-disable-next-line no-restricted-syntax -- the one place the socket peer is read
    const peer = request.ip;
    request.clientIp = anyTrusted
      ? clientAddress({
          socketAddress: peer,
          forwardedFor: request.headers['x-forwarded-for'],
          trustedProxies: matcher,
        })
      : peer;
  });
};

/**
 * The client address of a request: what the hook above computed, or the socket peer in an app built
 * without it (a test's minimal app around one hook trusts no proxy, which is what the peer means).
 */
export const clientIpOf = (request: FastifyRequest): string =>
  // eslint-disable-next-line no-restricted-syntax -- the fallback is the socket peer itself
  request.clientIp ?? request.ip;

/**
 * The client as the decision sees it. `country` is looked up the first time something reads it (a
 * geo rule), not for every request: most requests pass no geo rule.
 */
export const accessClientOf = (request: FastifyRequest): AccessClient => {
  const ip = clientIpOf(request);
  const countries = request.server.countries;
  let country: string | null | undefined;
  return {
    ip,
    userAgent: request.headers['user-agent'] ?? null,
    get country() {
      if (country === undefined) country = countries?.countryOf(ip) ?? null;
      return country;
    },
  };
};

declare module 'fastify' {
  interface FastifyRequest {
    /** The client address after trusted-proxy handling: read it with `clientIpOf` (client-info.ts). */
    clientIp?: string;
  }
  interface FastifyInstance {
    /** The IP-to-country lookup (`TOKENVAULT_GEOIP_DATABASE` or the bundled database). */
    countries?: CountryLookup;
  }
}
