import type { SecretFields } from '../../credentials/credential-types.js';
import type { ProviderEntry } from '../provider-schema.js';
import type { TokenFields, TokenSet } from '../token-set.js';

/**
 * An `oauth2` credential's secret fields as a token set and back. Only tokens travel (access, refresh
 * and ID tokens, and the token type); expiries live in the refresh state.
 *
 * A nested token (Slack's user token next to the bot token, catalog `tokenResponse.nestedTokens`) is
 * stored beside the primary one under its own fields, named from its catalog key: `userToken` →
 * `user_access_token`, `user_refresh_token`, `user_token_type`. Flat fields rather than one JSON
 * field, so each is encrypted on its own like any secret field and a proxy injection can name the
 * nested access token (`{{user_access_token}}`).
 */

/** `userToken` → `user`, `teamUserToken` → `team_user`. */
export const nestedFieldPrefix = (key: string): string =>
  key.replace(/Token$/, '').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

const nestedFields = (key: string) => {
  const prefix = nestedFieldPrefix(key);
  return {
    accessToken: `${prefix}_access_token`,
    refreshToken: `${prefix}_refresh_token`,
    tokenType: `${prefix}_token_type`,
  };
};

/** The nested token keys a provider's answers may carry (none for most). */
export const nestedKeysOf = (provider: Pick<ProviderEntry, 'tokenResponse'> | undefined): string[] =>
  (provider?.tokenResponse.nestedTokens ?? []).map((nested) => nested.key);

export const secretToTokenSet = (secret: SecretFields, nestedKeys: readonly string[] = []): TokenSet => {
  const nested: Record<string, TokenFields> = {};
  for (const key of nestedKeys) {
    const fields = nestedFields(key);
    const accessToken = secret[fields.accessToken];
    if (!accessToken) continue;
    const refreshToken = secret[fields.refreshToken];
    nested[key] = {
      accessToken,
      tokenType: secret[fields.tokenType] || 'Bearer',
      expiresAtAssumed: false,
      ...(refreshToken ? { refreshToken } : {}),
    };
  }
  return {
    accessToken: secret.access_token ?? '',
    tokenType: secret.token_type || 'Bearer',
    expiresAtAssumed: false,
    ...(secret.refresh_token ? { refreshToken: secret.refresh_token } : {}),
    ...(secret.id_token ? { idToken: secret.id_token } : {}),
    extra: {},
    nested,
  };
};

export const tokenSetToSecret = (
  token: Pick<TokenSet, keyof TokenFields | 'idToken' | 'nested'>,
): SecretFields => {
  const secret: SecretFields = {
    access_token: token.accessToken,
    token_type: token.tokenType,
    ...(token.refreshToken ? { refresh_token: token.refreshToken } : {}),
    ...(token.idToken ? { id_token: token.idToken } : {}),
  };
  for (const [key, nested] of Object.entries(token.nested)) {
    const fields = nestedFields(key);
    secret[fields.accessToken] = nested.accessToken;
    secret[fields.tokenType] = nested.tokenType;
    if (nested.refreshToken) secret[fields.refreshToken] = nested.refreshToken;
  }
  return secret;
};

/**
 * The earliest expiry of the tokens a set holds that a refresh renews (ISO-8601), so the refresh
 * that keeps all of them valid is scheduled by the first to run out; undefined when none expires.
 */
export const earliestExpiry = (token: Pick<TokenSet, 'expiresAt' | 'nested'>): string | undefined =>
  [
    token.expiresAt,
    ...Object.values(token.nested)
      .filter((nested) => nested.refreshToken !== undefined)
      .map((nested) => nested.expiresAt),
  ]
    .filter((at): at is string => at !== undefined)
    .sort()[0];
