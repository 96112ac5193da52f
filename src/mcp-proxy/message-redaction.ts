import { redactionMarker } from '../proxy/redaction.js';

/**
 * Taking injected secrets back out of everything an upstream MCP server sends (results, errors,
 * notifications, log messages, its stderr). Pure.
 *
 * A message is searched as the JSON text it travels as, for each secret value in every common
 * encoding a server could echo it in: as it is, JSON-escaped (once or twice), base64, base64url and URL-encoded (and
 * the JSON escaping of each). Values shorter than `minLength` are not searched for: replacing a
 * three-letter string everywhere would corrupt answers and protect little.
 */

export const minSecretLength = 6;

/** Every form of each value to search for, longest first (so a form containing another goes whole). */
export const secretForms = (values: Iterable<string>): string[] => {
  const forms = new Set<string>();
  for (const value of values) {
    if (value.length < minSecretLength) continue;
    const bytes = Buffer.from(value, 'utf8');
    for (const form of [
      value,
      bytes.toString('base64'),
      bytes.toString('base64').replace(/=+$/, ''),
      bytes.toString('base64url'),
      encodeURIComponent(value),
    ]) {
      // As it is, and escaped once or twice: a tool's text may itself hold JSON that quotes it.
      const escaped = JSON.stringify(form).slice(1, -1);
      forms.add(form);
      forms.add(escaped);
      forms.add(JSON.stringify(escaped).slice(1, -1));
    }
  }
  return [...forms].filter((f) => f.length >= minSecretLength).sort((a, b) => b.length - a.length);
};

export interface TextRedactor {
  /** The text with every form of every secret replaced by `[REDACTED]`, and how many were. */
  (text: string): { text: string; count: number };
}

export const createTextRedactor = (values: Iterable<string>): TextRedactor => {
  const forms = secretForms(values);
  return (text) => {
    let out = text;
    let count = 0;
    for (const form of forms) {
      if (!out.includes(form)) continue;
      const parts = out.split(form);
      count += parts.length - 1;
      out = parts.join(redactionMarker);
    }
    return { text: out, count };
  };
};

/**
 * A JSON-RPC message with every secret replaced, and the count. A message that is no longer JSON
 * once redacted (a secret straddling the JSON syntax) is replaced whole by `fallback`.
 */
export const redactMessage = <T>(redact: TextRedactor, message: T, fallback: (count: number) => T) => {
  const { text, count } = redact(JSON.stringify(message));
  if (count === 0) return { message, count };
  try {
    return { message: JSON.parse(text) as T, count };
  } catch {
    return { message: fallback(count), count };
  }
};
