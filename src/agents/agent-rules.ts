import { VaultError } from '../errors/vault-error.js';

/** Same rules as credential names, so `{agentId}` in a path never needs escaping. */
const namePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const keyNamePattern = /^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}$/;
const claimNamePattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;

export const maxDescriptionLength = 1000;
export const maxLiveKeysPerAgent = 20;
export const minKeyTtlSeconds = 60;
export const maxKeyTtlSeconds = 5 * 366 * 86_400;
const maxClaims = 20;
const maxClaimValueLength = 1024;
/** Checked by the trust itself (`iss`, `aud`) or meaningless to bind on. */
const reservedClaims = new Set(['iss', 'aud', 'exp', 'iat', 'nbf', 'jti']);

export const isAgentId = (ref: string): boolean => uuidPattern.test(ref);

const invalidName = (what: string, name: string, example: string) =>
  new VaultError(
    'invalid_name',
    `"${name.slice(0, 80)}" is not a valid ${what} name: use 1 to 64 lowercase letters, digits, \`-\`, \`_\` or \`.\`, starting with a letter or digit (for example \`${example}\`).`,
  );

export const assertAgentName = (name: string): void => {
  if (!namePattern.test(name)) throw invalidName('agent', name, 'agent-42');
  // An agent is addressed by id or name; a name shaped like an id could shadow another agent.
  if (isAgentId(name)) {
    throw new VaultError('invalid_name', 'An agent name cannot have the shape of an agent id (a UUID).');
  }
};

export const assertIssuerName = (name: string): void => {
  if (!namePattern.test(name)) throw invalidName('issuer', name, 'github-actions');
};

export const assertDescription = (description: string): void => {
  if (description.length > maxDescriptionLength) {
    throw new VaultError('invalid_request', `description is at most ${maxDescriptionLength} characters.`);
  }
};

export const assertKeyName = (name: string): void => {
  if (!keyNamePattern.test(name)) {
    throw new VaultError(
      'invalid_request',
      'A key name is 1 to 64 letters, digits, spaces, `.`, `_`, `@` or `-`, starting with a letter or digit.',
    );
  }
};

export const assertKeyTtl = (ttlSeconds: number): void => {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < minKeyTtlSeconds || ttlSeconds > maxKeyTtlSeconds) {
    throw new VaultError(
      'invalid_request',
      'A key lifetime is from 1 minute to 5 years (for example `90d`); leave it out for a key that lasts until revoked.',
    );
  }
};

/** An audience is compared exactly with a token's `aud`; any non-blank string without spaces. */
export const assertAudience = (audience: string): void => {
  if (audience.length === 0 || audience.length > 512 || /\s/.test(audience)) {
    throw new VaultError(
      'invalid_request',
      'audience must be 1 to 512 characters with no spaces, for example https://vault.example.com.',
    );
  }
};

/** Binding claims: exact string values, compared with the token's claims of the same names. */
export const validateBindingClaims = (claims: unknown): Record<string, string> => {
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new VaultError('invalid_request', 'claims must be an object of claim names to exact values.');
  }
  const entries = Object.entries(claims as Record<string, unknown>);
  if (entries.length === 0 || entries.length > maxClaims) {
    throw new VaultError(
      'invalid_request',
      `A binding needs 1 to ${maxClaims} claims, for example {"sub":"repo:acme/app:ref:refs/heads/main"}.`,
    );
  }
  for (const [name, value] of entries) {
    if (!claimNamePattern.test(name)) {
      throw new VaultError('invalid_request', `"${name.slice(0, 64)}" is not a valid claim name.`);
    }
    if (reservedClaims.has(name)) {
      throw new VaultError(
        'invalid_request',
        `A binding cannot match on "${name}": the issuer and audience are checked by the trust itself; bind on claims such as sub or repository.`,
      );
    }
    if (typeof value !== 'string' || value.length === 0 || value.length > maxClaimValueLength) {
      throw new VaultError(
        'invalid_request',
        `Claim "${name}" must be a non-empty string of at most ${maxClaimValueLength} characters.`,
      );
    }
  }
  return Object.fromEntries(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as Record<
    string,
    string
  >;
};

/** True when every bound claim is present in the token with exactly the bound (string) value. */
export const claimsMatch = (bound: Record<string, string>, token: Record<string, unknown>): boolean =>
  Object.entries(bound).every(([name, value]) => Object.hasOwn(token, name) && token[name] === value);
