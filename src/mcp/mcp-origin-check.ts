/**
 * Origin validation for the vault's MCP endpoints (DNS rebinding, MCP security best practices). Pure.
 *
 * A page on an attacker's name that resolves to the vault's address can send requests to it from the
 * victim's browser; the browser names the page in `Origin`, and that is what is checked. Allowed:
 *
 * - no `Origin` at all: not a browser (MCP clients, the CLI, SDKs send none);
 * - the vault's own public origin (`--audience`, default `http://<host>:<port>`);
 * - a loopback origin (`localhost`, `127.0.0.1`, `[::1]`, any port): a page served by this machine,
 *   which a rebinding attacker cannot be — its origin is its own host name.
 *
 * The `Host` header is not what is checked: under DNS rebinding it names the attacker's host too, and
 * matches the attacker's `Origin`.
 */

const loopbackHosts = new Set(['localhost', '127.0.0.1', '[::1]']);

export const originAllowed = (origin: string | undefined, publicOrigins: readonly string[]): boolean => {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  return loopbackHosts.has(url.hostname) || publicOrigins.includes(url.origin);
};

/** The origins a public URL allows (its own), or none when it is not a URL. */
export const publicOriginsOf = (publicUrl: string): string[] => {
  try {
    return [new URL(publicUrl).origin];
  } catch {
    return [];
  }
};
