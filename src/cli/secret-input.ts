import { readFileSync } from 'node:fs';

/** Which secret field `--secret-stdin` / `--secret-file` fill for each type. */
const primaryField: Record<string, string | undefined> = {
  api_key: 'api_key',
  bearer: 'token',
  basic: 'password',
  oauth2: 'access_token',
  custom: undefined,
};

export class InputError extends Error {}

const readField = (raw: string): [string, string] => {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new InputError(`--field expects KEY=VALUE or KEY=@FILE, got "${raw.slice(0, 40)}"`);
  const key = raw.slice(0, eq);
  const value = raw.slice(eq + 1);
  return [key, value.startsWith('@') ? readFileSync(value.slice(1), 'utf8').replace(/\r?\n$/, '') : value];
};

/**
 * Builds the secret object from what the user gave: one value on stdin or in a file (the type's main
 * field), a JSON object of fields (`--secret-json`, and always for custom), and `--field` pairs.
 */
export const buildSecret = async (
  type: string,
  options: { secretStdin?: boolean; secretFile?: string; secretJson?: boolean; field?: string[] },
  readStdin: () => Promise<string>,
): Promise<Record<string, string> | undefined> => {
  if (options.secretStdin && options.secretFile)
    throw new InputError('use --secret-stdin or --secret-file, not both');
  let raw: string | undefined;
  if (options.secretStdin) raw = await readStdin();
  if (options.secretFile) raw = readFileSync(options.secretFile, 'utf8');
  const secret: Record<string, string> = {};

  if (raw !== undefined) {
    const value = raw.replace(/\r?\n$/, '');
    if (value === '') throw new InputError('the secret on standard input (or in the file) is empty');
    const field = primaryField[type];
    if (options.secretJson || field === undefined) {
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
