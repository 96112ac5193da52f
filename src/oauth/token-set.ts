/**
 * What the vault keeps of a token endpoint's answer, whatever the provider's shape. Secrets
 * (`accessToken`, `refreshToken`, `idToken`, `nested`) and non-secret facts (`extra`, expiries,
 * scopes) are kept apart so storage can encrypt the first and index the second.
 */

export interface TokenFields {
  accessToken: string;
  refreshToken?: string;
  /** Canonical casing: `Bearer`, `DPoP`, or the entry's fixed type. */
  tokenType: string;
  /** ISO-8601. Absent only for tokens of providers whose tokens do not expire. */
  expiresAt?: string;
  /** True when the provider gave no expiry and the catalog's assumed lifetime was used. */
  expiresAtAssumed: boolean;
  refreshTokenExpiresAt?: string;
  /** As granted, when the provider says; absent means "as requested" (RFC 6749 §5.1). */
  scopes?: string[];
}

export interface TokenSet extends TokenFields {
  idToken?: string;
  /** Non-secret values from the response (`instanceUrl`, `teamId`), by the catalog's names. */
  extra: Record<string, string | number | boolean>;
  /** Further tokens in the same response (Slack's user token next to the bot token), by key. */
  nested: Record<string, TokenFields>;
}

export type TokenFailureKind = 'reauth_required' | 'retryable' | 'fatal';

/**
 * A token endpoint that said no. `reauth_required`: the grant is gone, the user must connect again
 * (never retry). `retryable`: try later (honour `retryAfterSeconds`), the current token stays in use.
 * `fatal`: the app's configuration or the request is wrong; retrying will not help, reconnecting
 * neither — an operator must act.
 */
export interface TokenFailure {
  kind: TokenFailureKind;
  /** The provider's code (`invalid_grant`, Slack's `invalid_refresh_token`), or `http_503`, `invalid_response`, `network_error`. */
  code: string;
  /** The provider's description, for the log. */
  description?: string;
  /** 0 when no HTTP answer came. */
  status: number;
  retryAfterSeconds?: number;
}

export type TokenOutcome = { ok: true; token: TokenSet } | { ok: false; failure: TokenFailure };

const mergeFields = (stored: TokenFields, fresh: TokenFields): TokenFields => {
  const rotated = fresh.refreshToken !== undefined;
  const refreshToken = fresh.refreshToken ?? stored.refreshToken;
  const refreshTokenExpiresAt = rotated ? fresh.refreshTokenExpiresAt : stored.refreshTokenExpiresAt;
  const scopes = fresh.scopes ?? stored.scopes;
  return {
    accessToken: fresh.accessToken,
    tokenType: fresh.tokenType,
    expiresAtAssumed: fresh.expiresAtAssumed,
    ...(fresh.expiresAt !== undefined ? { expiresAt: fresh.expiresAt } : {}),
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(refreshTokenExpiresAt !== undefined ? { refreshTokenExpiresAt } : {}),
    ...(scopes !== undefined ? { scopes } : {}),
  };
};

/**
 * The token set to store after a refresh. A response without a refresh token keeps the stored one
 * (most providers only send it when it rotates; erasing it would kill the connection); likewise the
 * ID token, the granted scopes, extras and nested tokens the refresh response leaves out (Slack's
 * bot-token refresh says nothing of the user token).
 *
 * `nestedKey` names the nested token that was refreshed (Slack's `userToken`, refreshed with its own
 * refresh token): the answer's token then replaces that one, and the primary token stays as it was.
 */
export const mergeRefreshed = (stored: TokenSet, fresh: TokenSet, nestedKey?: string): TokenSet => {
  const extra = { ...stored.extra, ...fresh.extra };
  if (nestedKey !== undefined) {
    const before = stored.nested[nestedKey];
    // Merging the answer with itself keeps only its token fields.
    const token = before ? mergeFields(before, fresh) : mergeFields(fresh, fresh);
    return { ...stored, extra, nested: { ...stored.nested, [nestedKey]: token } };
  }
  const idToken = fresh.idToken ?? stored.idToken;
  const nested: Record<string, TokenFields> = { ...stored.nested };
  for (const [key, token] of Object.entries(fresh.nested)) {
    const before = stored.nested[key];
    nested[key] = before ? mergeFields(before, token) : token;
  }
  return {
    ...mergeFields(stored, fresh),
    ...(idToken !== undefined ? { idToken } : {}),
    extra,
    nested,
  };
};
