import type { CredentialType } from '../credentials/credential-types.js';
import type { ProviderCatalog } from '../oauth/provider-catalog.js';
import { resolveApi } from '../oauth/provider-template.js';

/**
 * Where the proxy sends a credential that has no base URL of its own: the API of the OAuth provider it
 * was issued by, from the provider catalog (`api.baseUrl` in `src/oauth/providers/*.json`, filled
 * with the app's parameters, or the token's own `instanceUrl` where the catalog says so).
 *
 * The credential's own `base_url` always wins: this is only the fallback. And the destination is
 * checked exactly as an admin's base URL is (the credential's allowed hosts, else the base URL's own
 * host; the outbound guard): the catalog names public https APIs, so nothing here widens where a
 * secret may go.
 *
 * Which provider (and which app parameters) a credential belongs to is the OAuth apps' business (a
 * credential made by consent is linked to its app); `ProviderOf` is that seam, so the proxy does not
 * depend on how the link is stored.
 */

export interface ApiBaseQuery {
  namespace: string;
  credentialId: string;
  type: CredentialType;
}

/** The API base URL for a credential without one, or undefined (then `proxy_not_configured`). */
export type ApiBaseFallback = (credential: ApiBaseQuery) => Promise<string | undefined>;

/** The catalog provider a credential was issued by, with its app's parameters (e.g. a subdomain). */
export interface ProviderLink {
  provider: string;
  parameters?: Readonly<Record<string, string>> | undefined;
  /** Extra fields of the token response (Salesforce's `instanceUrl`). */
  tokenExtra?: Readonly<Record<string, string | number | boolean>> | undefined;
}

export type ProviderOf = (credential: ApiBaseQuery) => Promise<ProviderLink | undefined>;

/** The fallback for a deployment with OAuth apps: the linked provider's API base URL, if it has one. */
export const catalogApiBase =
  (catalog: Pick<ProviderCatalog, 'get'>, providerOf: ProviderOf): ApiBaseFallback =>
  async (credential) => {
    if (credential.type !== 'oauth2') return undefined;
    const link = await providerOf(credential);
    const entry = link && catalog.get(link.provider);
    if (!entry) return undefined;
    const token = link.tokenExtra ? { extra: link.tokenExtra } : undefined;
    return resolveApi(entry, link.parameters, token)?.baseUrl;
  };
