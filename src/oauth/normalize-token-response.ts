import type { ProviderEntry, ProviderErrorRule } from './provider-schema.js';
import type { TokenFailure, TokenFailureKind, TokenFields, TokenOutcome, TokenSet } from './token-set.js';

/**
 * Turns what a token endpoint answered into a `TokenSet` or a classified failure, driven only by the
 * provider's catalog entry. Pure: the HTTP exchange happens elsewhere (token-client.ts) and hands in
 * the status, the parsed body and the `Retry-After` header.
 */

export interface RawTokenResponse {
  status: number;
  /** The parsed body (JSON, or a form-encoded body as an object); anything else as a string. */
  body: unknown;
  retryAfter?: string | null;
}

type Entry = Pick<ProviderEntry, 'scopes' | 'tokenResponse' | 'errors' | 'refresh'>;
type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const at = (body: Json, path: string): unknown =>
  path.split('.').reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), body);

const nonEmptyString = (value: unknown): string | undefined =>
  typeof value === 'string' && value !== '' ? value : undefined;

/** Numbers, and numbers sent as strings (`"3599"`, Microsoft's v1 endpoint and others). */
const positiveNumber = (value: unknown): number | undefined => {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
};

const plusSeconds = (now: Date, seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();

const canonicalTokenTypes: Record<string, string> = { bearer: 'Bearer', dpop: 'DPoP', mac: 'MAC' };

/** Standard codes (RFC 6749 §5.2, OpenID Connect Core §3.1.2.6), used after the entry's own rules. */
const defaultRules: Record<TokenFailureKind, string[]> = {
  reauth_required: [
    'invalid_grant',
    'interaction_required',
    'login_required',
    'consent_required',
    'account_selection_required',
  ],
  retryable: ['temporarily_unavailable', 'server_error'],
  fatal: [],
};

const ruleMatches = (rule: ProviderErrorRule, code: string, description: string | undefined): boolean =>
  typeof rule === 'string'
    ? rule === code
    : rule.code === code && new RegExp(rule.descriptionPattern).test(description ?? '');

const kinds: TokenFailureKind[] = ['reauth_required', 'retryable', 'fatal'];
/** The entry's field holding each kind's rules. */
const kindField = {
  reauth_required: 'reauthRequired',
  retryable: 'retryable',
  fatal: 'fatal',
} as const;

/** The entry's rules first (they may refine a standard code by its description), then the standard ones. */
export const classifyError = (
  entry: Pick<ProviderEntry, 'errors'>,
  code: string,
  description?: string,
): TokenFailureKind =>
  kinds.find((kind) =>
    (entry.errors?.[kindField[kind]] ?? []).some((r) => ruleMatches(r, code, description)),
  ) ??
  kinds.find((kind) => defaultRules[kind].includes(code)) ??
  'fatal';

/** `Retry-After` as seconds: a delay, or an HTTP date relative to now. */
export const retryAfterSeconds = (header: string | null | undefined, now: Date): number | undefined => {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now.getTime()) / 1000));
};

const retryableStatus = (status: number) => status === 408 || status === 429 || status >= 500;

const failure = (
  kind: TokenFailureKind,
  code: string,
  raw: RawTokenResponse,
  now: Date,
  description?: string,
): { ok: false; failure: TokenFailure } => {
  const retryAfter = kind === 'retryable' ? retryAfterSeconds(raw.retryAfter, now) : undefined;
  return {
    ok: false,
    failure: {
      kind,
      code,
      status: raw.status,
      ...(description !== undefined ? { description } : {}),
      ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
    },
  };
};

const scopesOf = (entry: Entry, value: unknown): string[] | undefined => {
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string' && s !== '');
  if (typeof value !== 'string') return undefined;
  const separator = entry.tokenResponse.scopeSeparator ?? entry.scopes.separator;
  return value
    .split(separator)
    .map((s) => s.trim())
    .filter((s) => s !== '');
};

/** The token fields of one object: the top level, or a nested token such as Slack's `authed_user`. */
const fieldsOf = (entry: Entry, node: Json, now: Date): TokenFields | undefined => {
  const accessToken = nonEmptyString(node.access_token);
  if (accessToken === undefined) return undefined;
  const rules = entry.tokenResponse;
  const rawType = nonEmptyString(node.token_type);
  const tokenType =
    rules.tokenType ?? (rawType ? (canonicalTokenTypes[rawType.toLowerCase()] ?? rawType) : 'Bearer');

  const lifetime = positiveNumber(at(node, rules.expiresIn ?? 'expires_in'));
  const epoch = rules.expiresAtEpoch ? positiveNumber(at(node, rules.expiresAtEpoch)) : undefined;
  let expiresAt: string | undefined;
  let expiresAtAssumed = false;
  if (epoch !== undefined) expiresAt = new Date(epoch * 1000).toISOString();
  else if (lifetime !== undefined) expiresAt = plusSeconds(now, lifetime);
  else if (entry.refresh.expires && rules.assumedLifetimeSeconds !== undefined) {
    // No expiry in the answer: assume one, so the token is refreshed or checked rather than trusted forever.
    expiresAt = plusSeconds(now, rules.assumedLifetimeSeconds);
    expiresAtAssumed = true;
  }

  const refreshToken = nonEmptyString(node.refresh_token);
  const refreshLifetime = positiveNumber(node.refresh_token_expires_in);
  const scopes = scopesOf(entry, node.scope);
  return {
    accessToken,
    tokenType,
    expiresAtAssumed,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(refreshToken !== undefined && refreshLifetime !== undefined
      ? { refreshTokenExpiresAt: plusSeconds(now, refreshLifetime) }
      : {}),
    ...(scopes !== undefined ? { scopes } : {}),
  };
};

const errorOf = (entry: Entry, body: Json): { code?: string; description?: string } => {
  const code = nonEmptyString(at(body, entry.errors?.codeField ?? 'error'));
  const description = nonEmptyString(at(body, entry.errors?.descriptionField ?? 'error_description'));
  return {
    ...(code !== undefined ? { code } : {}),
    ...(description !== undefined ? { description } : {}),
  };
};

/** The refusal an answer carries, if any: by status, by error code (at any status), by success flag. */
const refusalOf = (entry: Entry, raw: RawTokenResponse, body: Json | undefined, now: Date) => {
  const { code, description } = body ? errorOf(entry, body) : {};
  if (retryableStatus(raw.status)) {
    return failure('retryable', code ?? `http_${raw.status}`, raw, now, description);
  }
  const success = raw.status >= 200 && raw.status < 300;
  const flag = entry.tokenResponse.successFlag;
  const flagged = flag !== undefined && at(body ?? {}, flag) !== true;
  if (code !== undefined) {
    return failure(classifyError(entry, code, description), code, raw, now, description);
  }
  if (!success) return failure('fatal', `http_${raw.status}`, raw, now);
  if (flagged) return failure('fatal', 'invalid_response', raw, now);
  if (!body) {
    return failure(
      'fatal',
      'invalid_response',
      raw,
      now,
      'the token endpoint answered without a JSON object',
    );
  }
  return undefined;
};

/** The top-level token, else the first nested one allowed to stand in for it (a Slack user-only install). */
const primaryOf = (entry: Entry, body: Json, now: Date): { token?: TokenFields; path?: string } => {
  const top = fieldsOf(entry, body, now);
  if (top) return { token: top };
  for (const nested of entry.tokenResponse.nestedTokens ?? []) {
    const node = at(body, nested.path);
    const token =
      nested.primaryWhenTopLevelMissing && isObject(node) ? fieldsOf(entry, node, now) : undefined;
    if (token) return { token, path: nested.path };
  }
  return {};
};

/**
 * Normalises a token endpoint answer (code exchange or refresh), in steps: refused? (a status that
 * says "later", an error code at any status — GitHub and Slack answer errors with 200 —, a success
 * flag that is not true) → classified failure; else the primary token, the nested tokens, the extras.
 */
export const normalizeTokenResponse = (entry: Entry, raw: RawTokenResponse, now: Date): TokenOutcome => {
  const body = isObject(raw.body) ? raw.body : undefined;
  const refusal = refusalOf(entry, raw, body, now);
  if (refusal) return refusal;
  const json = body as Json; // refusalOf lets no answer without a JSON object through

  const primary = primaryOf(entry, json, now);
  if (!primary.token) {
    return failure(
      'fatal',
      'invalid_response',
      raw,
      now,
      'the token endpoint answered without an access_token',
    );
  }

  const nested: Record<string, TokenFields> = {};
  for (const spec of entry.tokenResponse.nestedTokens ?? []) {
    const node = at(json, spec.path);
    const fields = spec.path !== primary.path && isObject(node) ? fieldsOf(entry, node, now) : undefined;
    if (fields) nested[spec.key] = fields;
  }

  const extra: TokenSet['extra'] = {};
  for (const [key, path] of Object.entries(entry.tokenResponse.extraFields ?? {})) {
    const value = at(json, path);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      extra[key] = value;
  }

  const idToken = nonEmptyString(json.id_token);
  return { ok: true, token: { ...primary.token, ...(idToken ? { idToken } : {}), extra, nested } };
};
