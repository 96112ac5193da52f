import type { CredentialType, Injection, SecretFields } from '../credentials/credential-types.js';

/** What a reveal grant hands the agent, before it is shaped into the seed contract's JSON. */
export interface RevealedToken {
  accessToken: string;
  tokenType: string;
  /** Every field of a custom credential that has more than one; absent otherwise. */
  fields?: SecretFields;
}

const placeholder = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** `Authorization: <Scheme> {{field}}` gives `<Scheme>`; any other injection gives undefined. */
const authorizationScheme = (injection: Injection, field: string): string | undefined => {
  if (injection.in !== 'header' || injection.name.toLowerCase() !== 'authorization') return undefined;
  const match = /^(\S+) \{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(injection.template);
  return match && match[2] === field ? match[1] : undefined;
};

/**
 * Maps a credential's secret onto `access_token` + `token_type`, one rule per type:
 * api_key → the key (token_type from its `Authorization` injection, else `api_key`); bearer → the
 * token (`Bearer`); oauth2 → the access token and its own token_type (default `Bearer`); basic →
 * base64(`username:password`) (`Basic`); custom → the field its injection template names first (or its
 * only field), with every field under `fields` when there are several.
 */
export const revealToken = (
  type: CredentialType,
  secret: SecretFields,
  injection: Injection,
): RevealedToken => {
  switch (type) {
    case 'api_key':
      return {
        accessToken: secret.api_key ?? '',
        tokenType: authorizationScheme(injection, 'api_key') ?? 'api_key',
      };
    case 'bearer':
      return { accessToken: secret.token ?? '', tokenType: 'Bearer' };
    case 'oauth2':
      return { accessToken: secret.access_token ?? '', tokenType: secret.token_type || 'Bearer' };
    case 'basic':
      return {
        accessToken: Buffer.from(`${secret.username ?? ''}:${secret.password ?? ''}`, 'utf8').toString(
          'base64',
        ),
        tokenType: 'Basic',
      };
    case 'custom': {
      const names = Object.keys(secret).sort();
      const named = [...injection.template.matchAll(placeholder)]
        .map((m) => m[1] as string)
        .find((name) => name in secret);
      const main = named ?? (names[0] as string);
      return {
        accessToken: secret[main] ?? '',
        tokenType: authorizationScheme(injection, main) ?? 'custom',
        ...(names.length > 1 ? { fields: { ...secret } } : {}),
      };
    }
  }
};
