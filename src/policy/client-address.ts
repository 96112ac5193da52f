import { addressMatcher, normaliseAddress, parseCidr, type AddressMatcher } from './ip-match.js';
import type { Cidr } from './policy-types.js';

/** `TOKENVAULT_TRUSTED_PROXIES`-style CIDR list into a matcher; the bad entries are returned by text. */
export const parseTrustedProxies = (
  entries: readonly string[],
): { matcher: AddressMatcher; invalid: string[] } => {
  const cidrs: Cidr[] = [];
  const invalid: string[] = [];
  for (const entry of entries) {
    const cidr = parseCidr(entry);
    if (cidr === undefined) invalid.push(entry);
    else cidrs.push(cidr);
  }
  return { matcher: addressMatcher(cidrs), invalid };
};

/**
 * The client's address. The socket peer is the client unless it is a trusted proxy; then
 * `X-Forwarded-For` is read from the right (the hop our own proxy appended) leftwards, skipping trusted
 * hops, and the first untrusted hop is the client. Anything left of it was written by the client and
 * is ignored, so a client cannot choose its address by sending the header itself, and a header from an
 * untrusted peer is never read. When every hop is trusted the leftmost is the client; when a hop is
 * not an address the walk stops at the last trusted hop before it, which is the best the vault knows.
 * Addresses come back normalised (IPv4-mapped IPv6 as IPv4, no zone).
 */
export const clientAddress = (input: {
  socketAddress: string;
  forwardedFor: string | readonly string[] | undefined;
  trustedProxies: AddressMatcher;
}): string => {
  const peer = normaliseAddress(input.socketAddress)?.address ?? input.socketAddress;
  if (!input.trustedProxies.matches(peer) || input.forwardedFor === undefined) return peer;
  const header = typeof input.forwardedFor === 'string' ? [input.forwardedFor] : input.forwardedFor;
  const hops = header
    .join(',')
    .split(',')
    .map((hop) => hop.trim())
    .filter((hop) => hop !== '');
  let client = peer;
  for (let index = hops.length - 1; index >= 0; index -= 1) {
    const hop = normaliseAddress(hops[index] as string);
    if (hop === undefined) return client;
    client = hop.address;
    if (!input.trustedProxies.matches(client)) return client;
  }
  return client;
};
