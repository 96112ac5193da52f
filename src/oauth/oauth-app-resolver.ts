import type { OAuthAppService } from './oauth-app-service.js';
import type { ProviderEntry } from './provider-schema.js';
import type { OAuthClientApp } from './token-client.js';

/** What a refresh of a credential needs of the OAuth app its tokens came from. */
export interface ResolvedOAuthApp {
  appId: string;
  provider: ProviderEntry;
  app: OAuthClientApp;
}

/** The app of a credential (by the credential's id), client secret opened; undefined when it has none. */
export type ResolveOAuthApp = (
  namespace: string,
  credentialId: string,
) => Promise<ResolvedOAuthApp | undefined>;

/** The resolver over the stored apps (`credentials.oauth_app_id` → `oauth_apps`). */
export const createOAuthAppResolver =
  (apps: Pick<OAuthAppService, 'openForCredential'>): ResolveOAuthApp =>
  async (namespace, credentialId) => {
    const opened = await apps.openForCredential(namespace, credentialId);
    if (!opened) return undefined;
    return { appId: opened.app.id, provider: opened.provider, app: opened.client };
  };
