import type { SecretFields } from '../../credentials/credential-types.js';
import type { TokenSet } from '../token-set.js';

/**
 * An `oauth2` credential's secret fields as a token set and back. Only what the credential type
 * stores (access, refresh and ID tokens, and the token type) travels; expiries live in the refresh
 * state, and nested tokens are not stored by this type.
 */
export const secretToTokenSet = (secret: SecretFields): TokenSet => ({
  accessToken: secret.access_token ?? '',
  tokenType: secret.token_type || 'Bearer',
  expiresAtAssumed: false,
  ...(secret.refresh_token ? { refreshToken: secret.refresh_token } : {}),
  ...(secret.id_token ? { idToken: secret.id_token } : {}),
  extra: {},
  nested: {},
});

export const tokenSetToSecret = (token: TokenSet): SecretFields => ({
  access_token: token.accessToken,
  token_type: token.tokenType,
  ...(token.refreshToken ? { refresh_token: token.refreshToken } : {}),
  ...(token.idToken ? { id_token: token.idToken } : {}),
});
