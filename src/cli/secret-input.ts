import { readFileSync } from 'node:fs';
import { credentialTypes, isCredentialType } from '../credentials/credential-types.js';

/** Which secret field `--secret-stdin` / `--secret-file` fill for each type. */
const primaryField: Record<string, string | undefined> = {
  api_key: 'api_key',
  bearer: 'token',
  basic: 'password',
  oauth2: 'access_token',
  custom: undefined,
};

export class InputError extends Error {}

/** A typo in `--type` is named first, before any secret is read or any other message can mislead. */
export const assertTypeKnown = (type: string): void => {
  if (!isCredentialType(type)) {
    throw new InputError(`unknown --type "${type.slice(0, 40)}"; use one of ${credentialTypes.join(', ')}`);
  }
};

/** A file the user named, or an error that says which one and why, not a raw ENOENT. */
const readUserFile = (path: string, what: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (code ?? (error as Error).message);
    throw new InputError(`cannot read ${what} "${path}": ${why}`);
  }
};

/** A JSON object of fields, or undefined when the text is not one (a plain token, a number, …). */
const jsonObject = (text: string): Record<string, unknown> | undefined => {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
};

/** The non-secret parts of an OAuth token response (RFC 6749 §5.1): when it expires, what it may do. */
export interface TokenResponseHints {
  expiresInSeconds?: number;
  scopes?: string[];
}

/** Takes `expires_in` and `scope` out of a token response into `hints`; the rest is the secret. */
const splitTokenResponse = (response: Record<string, unknown>, hints: TokenResponseHints) => {
  const { expires_in: expiresIn, scope, ...fields } = response;
  const seconds = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn;
  if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0)
    hints.expiresInSeconds = seconds;
  if (typeof scope === 'string') hints.scopes = scope.split(/[\s,]+/).filter(Boolean);
  return fields;
};

const readField = (raw: string): [string, string] => {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new InputError(`--field expects KEY=VALUE or KEY=@FILE, got "${raw.slice(0, 40)}"`);
  const key = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  return [
    key,
    value.startsWith('@') ? readUserFile(value.slice(1), `--field ${key}`).replace(/\r?\n$/, '') : value,
  ];
};

/**
 * Builds the secret object from what the user gave: one value on stdin or in a file (the type's main
 * field), a JSON object of fields (`--secret-json`, and always for custom), and `--field` pairs.
 * An oauth2 value that is a JSON object is a token response, taken field by field even without
 * `--secret-json`: stored whole as the access token, its refresh token would reach every agent. Its
 * `expires_in` and `scope` are not secrets: they go into `hints` for the credential's metadata.
 */
export const buildSecret = async (
  type: string,
  options: { secretStdin?: boolean; secretFile?: string; secretJson?: boolean; field?: string[] },
  readStdin: () => Promise<string>,
  hints: TokenResponseHints = {},
): Promise<Record<string, string> | undefined> => {
  if (options.secretStdin && options.secretFile)
    throw new InputError('use --secret-stdin or --secret-file, not both');
  let raw: string | undefined;
  if (options.secretStdin) raw = await readStdin();
  if (options.secretFile) raw = readUserFile(options.secretFile, '--secret-file');
  const secret: Record<string, string> = {};

  if (raw !== undefined) {
    const value = raw.replace(/\r?\n$/, '');
    if (value === '') throw new InputError('the secret on standard input (or in the file) is empty');
    const field = primaryField[type];
    const tokenResponse = type === 'oauth2' ? jsonObject(value) : undefined;
    if (tokenResponse) {
      Object.assign(secret, splitTokenResponse(tokenResponse, hints));
    } else if (options.secretJson || field === undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch {
        throw new InputError(
          type === 'custom'
            ? 'a custom secret is a JSON object of fields, e.g. {"client_id":"…","client_secret":"…"}'
            : 'with --secret-json the secret must be a JSON object of fields',
        );
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new InputError('the secret must be a JSON object of string fields');
      }
      Object.assign(secret, parsed);
    } else {
      secret[field] = value;
    }
  }
  for (const pair of options.field ?? []) {
    const [key, value] = readField(pair);
    secret[key] = value;
  }
  return Object.keys(secret).length === 0 ? undefined : secret;
};
