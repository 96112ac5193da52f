import { VaultError } from '../errors/vault-error.js';
import { schemeOf, templateFields } from './injection-template.js';

export const credentialTypes = ['api_key', 'bearer', 'basic', 'oauth2', 'custom'] as const;
export type CredentialType = (typeof credentialTypes)[number];
export type CredentialStatus = 'active' | 'needs_reauth' | 'revoked';

export type SecretFields = Record<string, string>;

/** Where a proxy puts the secret on the way out. `template` uses `{{field}}` placeholders. */
export interface Injection {
  in: 'header' | 'query' | 'env';
  name: string;
  template: string;
}

/** What a reveal grant hands the agent, before it is shaped into the seed contract's JSON. */
export interface RevealedToken {
  accessToken: string;
  tokenType: string;
  /** Every field of a custom credential that has more than one; absent otherwise. */
  fields?: SecretFields;
}

/** What a refresh is told besides the secret it refreshes. */
export interface RefreshContext {
  namespace: string;
  credentialId: string;
  now: Date;
}

/**
 * Renews a credential's secret with its provider (an OAuth refresh-token grant), returning the fields
 * to store as its next version. TODO(oauth): set for `oauth2` once the provider catalog lands, because
 * the token endpoint and client credentials come from it.
 */
export type RefreshHook = (secret: SecretFields, context: RefreshContext) => Promise<SecretFields>;

/**
 * Everything the vault knows about one credential type, in one place: the secret fields it takes,
 * the template variables derived from them, how it is injected by default, how a reveal renders it,
 * and (OAuth) how it is refreshed.
 */
export interface CredentialTypeDescriptor {
  /** Fixed field names, or `any` (custom: the admin names them). */
  fields: { required: readonly string[]; optional: readonly string[] } | 'any';
  /** Extra template variables computed from the secret (never stored). */
  derived: Readonly<Record<string, (secret: SecretFields) => string>>;
  /** How the secret is injected when the admin does not say; `fields` are the secret's field names. */
  defaultInjection(fields: readonly string[]): Injection;
  /** The secret as `access_token` + `token_type` for a reveal grant. */
  reveal(secret: SecretFields, injection: Injection): RevealedToken;
  refresh?: RefreshHook | undefined;
}

const authorization = (template: string): Injection => ({ in: 'header', name: 'Authorization', template });

/**
 * The field a custom credential sends as the bearer when no injection is given: the first whose name
 * says it is a secret (`client_secret`, `token`, `api_key`, …), never an identifier such as
 * `client_id`, which is not a secret and would authenticate nothing.
 */
const secretLooking = /(secret|token|password|passwd|passphrase|key|pat|credential)$/i;
const customBearerField = (fields: readonly string[]): string => {
  const field = fields.find((f) => secretLooking.test(f)) ?? (fields.length === 1 ? fields[0] : undefined);
  if (field === undefined) {
    throw new VaultError(
      'invalid_injection',
      `No field of this custom credential (${fields.join(', ')}) is named like a secret (…secret, …token, …key, …password), so there is no default injection: say which field goes where (CLI \`--inject "header:Authorization:Bearer {{${fields[0] ?? 'field'}}}"\`, API \`injection\`).`,
    );
  }
  return field;
};

/** `Authorization: <Scheme> {{field}}` gives `<Scheme>`; any other injection gives undefined. */
const authorizationScheme = (injection: Injection, field: string): string | undefined => {
  if (injection.in !== 'header' || injection.name.toLowerCase() !== 'authorization') return undefined;
  const found = schemeOf(injection.template);
  return found?.field === field ? found.scheme : undefined;
};

const basicAuth = (secret: SecretFields) =>
  Buffer.from(`${secret.username ?? ''}:${secret.password ?? ''}`, 'utf8').toString('base64');

export const credentialTypeDescriptors: Readonly<Record<CredentialType, CredentialTypeDescriptor>> = {
  api_key: {
    fields: { required: ['api_key'], optional: [] },
    derived: {},
    defaultInjection: () => authorization('Bearer {{api_key}}'),
    // The key, with the scheme its `Authorization` injection uses (else `api_key`).
    reveal: (secret, injection) => ({
      accessToken: secret.api_key ?? '',
      tokenType: authorizationScheme(injection, 'api_key') ?? 'api_key',
    }),
  },
  bearer: {
    fields: { required: ['token'], optional: [] },
    derived: {},
    defaultInjection: () => authorization('Bearer {{token}}'),
    reveal: (secret) => ({ accessToken: secret.token ?? '', tokenType: 'Bearer' }),
  },
  basic: {
    fields: { required: ['username', 'password'], optional: [] },
    derived: { basic_auth: basicAuth },
    defaultInjection: () => authorization('Basic {{basic_auth}}'),
    reveal: (secret) => ({ accessToken: basicAuth(secret), tokenType: 'Basic' }),
  },
  oauth2: {
    fields: { required: ['access_token'], optional: ['refresh_token', 'token_type', 'id_token'] },
    derived: {},
    defaultInjection: () => authorization('Bearer {{access_token}}'),
    // Its own token_type (default `Bearer`); the refresh token never leaves.
    reveal: (secret) => ({
      accessToken: secret.access_token ?? '',
      tokenType: secret.token_type || 'Bearer',
    }),
  },
  custom: {
    fields: 'any',
    derived: {},
    defaultInjection: (fields) => authorization(`Bearer {{${customBearerField(fields)}}}`),
    // The field its injection names first (or its first field), every field when there are several.
    reveal: (secret, injection) => {
      const names = Object.keys(secret).sort();
      const main = templateFields(injection.template).find((name) => name in secret) ?? (names[0] as string);
      return {
        accessToken: secret[main] ?? '',
        tokenType: authorizationScheme(injection, main) ?? 'custom',
        ...(names.length > 1 ? { fields: { ...secret } } : {}),
      };
    },
  },
};

/** How a reveal grant hands over a credential of this type. */
export const revealToken = (
  type: CredentialType,
  secret: SecretFields,
  injection: Injection,
): RevealedToken => credentialTypeDescriptors[type].reveal(secret, injection);

const namePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const namespacePattern = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const fieldNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const maxSecretValueLength = 16_384;
const maxCustomFields = 50;

export const isCredentialType = (value: string): value is CredentialType =>
  (credentialTypes as readonly string[]).includes(value);

export const assertCredentialName = (name: string): void => {
  if (!namePattern.test(name)) {
    throw new VaultError(
      'invalid_name',
      `"${name.slice(0, 80)}" is not a valid credential name: use 1 to 64 lowercase letters, digits, \`-\`, \`_\` or \`.\`, starting with a letter or digit (for example \`google-calendar\`).`,
    );
  }
};

export const assertNamespace = (namespace: string): void => {
  if (!namespacePattern.test(namespace)) {
    throw new VaultError(
      'invalid_namespace',
      `"${namespace.slice(0, 80)}" is not a valid namespace: use 1 to 64 lowercase letters, digits, \`-\` or \`_\`.`,
    );
  }
};

export const parseCredentialType = (type: string): CredentialType => {
  if (!isCredentialType(type)) {
    throw new VaultError(
      'unknown_credential_type',
      `"${type.slice(0, 40)}" is not a credential type; use one of ${credentialTypes.join(', ')}.`,
    );
  }
  return type;
};

/** Checks a secret against its type and returns only the fields that type stores. */
export const validateSecret = (type: CredentialType, secret: unknown): SecretFields => {
  if (typeof secret !== 'object' || secret === null || Array.isArray(secret)) {
    throw new VaultError(
      'invalid_secret',
      `The secret of a ${type} credential must be an object of string fields.`,
    );
  }
  const entries = Object.entries(secret as Record<string, unknown>);
  for (const [field, value] of entries) {
    if (typeof value !== 'string' || value.length === 0) {
      throw new VaultError(
        'invalid_secret',
        `Secret field "${field.slice(0, 64)}" must be a non-empty string.`,
      );
    }
    if (value.length > maxSecretValueLength) {
      throw new VaultError(
        'invalid_secret',
        `Secret field "${field.slice(0, 64)}" is longer than ${maxSecretValueLength} characters.`,
      );
    }
  }
  const spec = credentialTypeDescriptors[type].fields;
  if (spec === 'any') return validateCustomSecret(entries as [string, string][]);

  const given = new Set(entries.map(([field]) => field));
  const missing = spec.required.filter((field) => !given.has(field));
  if (missing.length > 0) {
    throw new VaultError(
      'invalid_secret',
      `A ${type} credential needs secret field(s) ${missing.map((f) => `"${f}"`).join(', ')}.`,
    );
  }
  if (type === 'oauth2') assertNotTokenResponse(secret as SecretFields);
  const allowed = new Set([...spec.required, ...spec.optional]);
  const unknown = [...given].filter(
    (field) => !allowed.has(field) && !(type === 'oauth2' && nestedTokenField.test(field)),
  );
  if (unknown.length > 0) {
    throw new VaultError(
      'invalid_secret',
      `A ${type} credential has no secret field(s) ${unknown.map((f) => `"${f.slice(0, 64)}"`).join(', ')}; it takes ${[...allowed].join(', ')}.`,
    );
  }
  return Object.fromEntries(entries) as SecretFields;
};

/**
 * The fields of a further token an oauth2 credential holds beside its own (Slack's user token next to
 * the bot token: `user_access_token`, `user_refresh_token`, `user_token_type`; see
 * src/oauth/refresh/token-fields.ts), named by the provider catalog rather than listed here.
 */
const nestedTokenField = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:access_token|refresh_token|token_type)$/;

/**
 * A whole token response stored as the access token would hand its refresh token to every agent that
 * retrieves the credential: an access token that is a JSON object is refused.
 */
const assertNotTokenResponse = (secret: SecretFields): void => {
  const value = secret.access_token?.trim() ?? '';
  if (!value.startsWith('{')) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return;
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    throw new VaultError(
      'invalid_secret',
      'The access_token of an oauth2 credential is a JSON object (a whole token response?); send its fields as the secret instead: {"access_token":"…","refresh_token":"…"}.',
    );
  }
};

const validateCustomSecret = (entries: [string, string][]): SecretFields => {
  if (entries.length === 0)
    throw new VaultError('invalid_secret', 'A custom credential needs at least one field.');
  if (entries.length > maxCustomFields) {
    throw new VaultError('invalid_secret', `A custom credential has at most ${maxCustomFields} fields.`);
  }
  for (const [field] of entries) {
    if (!fieldNamePattern.test(field)) {
      throw new VaultError(
        'invalid_secret',
        `"${field.slice(0, 64)}" is not a valid field name: use letters, digits and \`_\`, starting with a letter or \`_\`.`,
      );
    }
  }
  return Object.fromEntries(entries);
};

export const defaultInjection = (type: CredentialType, fields: readonly string[]): Injection =>
  credentialTypeDescriptors[type].defaultInjection(fields);

const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const forbiddenHeaders = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade']);

/** An injection as a caller gives it (the admin API's body): `validateInjection` checks `in`. */
export type InjectionInput = Omit<Injection, 'in'> & { in: string };

const injectionPlaces: readonly string[] = ['header', 'query', 'env'] satisfies Injection['in'][];
const isInjectionPlace = (place: string): place is Injection['in'] => injectionPlaces.includes(place);

/** Validates how the secret is injected; placeholders must name fields the credential has. */
export const validateInjection = (
  injection: InjectionInput,
  type: CredentialType,
  fields: string[],
): Injection => {
  const fail = (message: string): never => {
    throw new VaultError('invalid_injection', message);
  };
  const place = injection.in;
  if (!isInjectionPlace(place)) return fail('injection.in must be one of header, query, env.');
  if (injection.in === 'header' && !headerNamePattern.test(injection.name)) {
    fail(`"${injection.name.slice(0, 64)}" is not a valid HTTP header name.`);
  }
  if (injection.in === 'header' && forbiddenHeaders.has(injection.name.toLowerCase())) {
    fail(`The secret cannot be injected into the "${injection.name}" header.`);
  }
  if (injection.in === 'env' && !envNamePattern.test(injection.name)) {
    fail(`"${injection.name.slice(0, 64)}" is not a valid environment variable name.`);
  }
  if (injection.in === 'query' && !/^[A-Za-z0-9._~-]{1,128}$/.test(injection.name)) {
    fail(`"${injection.name.slice(0, 64)}" is not a valid query parameter name.`);
  }
  // CR, LF and other control characters would allow header injection on the way out (invariant 6).
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(injection.template) || injection.template.length > 1024) {
    fail('injection.template must be at most 1024 characters with no control characters (no CR or LF).');
  }
  const known = new Set([...fields, ...Object.keys(credentialTypeDescriptors[type].derived)]);
  const used = templateFields(injection.template);
  if (used.length === 0) fail('injection.template must contain at least one {{field}} placeholder.');
  const unknown = used.filter((field) => !known.has(field));
  if (unknown.length > 0) {
    fail(
      `injection.template uses ${unknown.map((f) => `{{${f}}}`).join(', ')}, which this credential does not have; available: ${[...known].join(', ')}.`,
    );
  }
  return { in: place, name: injection.name, template: injection.template };
};

/** Upstream host names (optionally with a port); no schemes, paths or wildcards beyond a leading `*.`. */
export const validateAllowedHosts = (hosts: string[]): string[] => {
  const hostPattern =
    /^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:\d{1,5})?$/;
  const normalized = hosts.map((host) => host.trim().toLowerCase());
  for (const host of normalized) {
    if (!hostPattern.test(host)) {
      throw new VaultError(
        'invalid_request',
        `"${host.slice(0, 80)}" is not a valid allowed host: give a host name such as api.slack.com (no scheme or path).`,
      );
    }
  }
  return [...new Set(normalized)];
};

const maxBaseUrlLength = 2048;

/**
 * A credential's API base URL (the HTTP proxy forwards `{path…}` below it): an absolute https URL, or
 * http only for a host the credential's allowed hosts name exactly (a cleartext upstream is a choice
 * the operator writes down); no user name or password (the proxy injects credentials, a URL does
 * not carry them), no query and no fragment (the agent's path and query are appended to it). Empty
 * or null: none. Returns it normalised (WHATWG serialisation, no trailing slash).
 */
export const validateBaseUrl = (raw: string | null, allowedHosts: readonly string[]): string | null => {
  if (raw === null || raw.trim() === '') return null;
  const fail = (why: string): never => {
    throw new VaultError('invalid_base_url', `"${raw.slice(0, 120)}" is not a usable base URL: ${why}.`);
  };
  if (raw.length > maxBaseUrlLength) fail(`it is longer than ${maxBaseUrlLength} characters`);
  if (!URL.canParse(raw)) fail('give an absolute URL such as https://api.example.com/v1');
  const url = new URL(raw);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail('use https (or http)');
  if (url.protocol === 'http:' && !allowedHosts.includes(url.host)) {
    fail(`an http base URL needs its host (${url.host}) among the credential's allowed hosts`);
  }
  if (url.username || url.password) fail('a user name or password does not belong in it');
  if (url.search || raw.includes('?')) fail('a query does not belong in it');
  if (url.hash || raw.includes('#')) fail('a fragment does not belong in it');
  return url.href.replace(/\/+$/, '');
};

export const validateScopes = (scopes: string[]): string[] => {
  for (const scope of scopes) {
    if (scope.length === 0 || scope.length > 256 || /\s/.test(scope)) {
      throw new VaultError(
        'invalid_request',
        `"${scope.slice(0, 80)}" is not a valid scope: no spaces, 1 to 256 characters.`,
      );
    }
  }
  return [...new Set(scopes)];
};
