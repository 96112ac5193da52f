import type { IncomingHttpHeaders } from 'node:http';
import type { CredentialType, SecretFields } from '../credentials/credential-types.js';
import { credentialTypeDescriptors } from '../credentials/credential-types.js';

/**
 * Taking the injected secret back out of what the upstream answers (an API that echoes the request's
 * headers, an error page quoting the query string). Pure.
 *
 * What is redacted: every secret field value and every value derived from them (a Basic pair's
 * base64), and the base64 of each, as `[REDACTED]`. A basic credential's `username` is not a secret
 * and is left alone. Values shorter than `minLength` are not searched for: replacing a three-letter
 * string everywhere would corrupt answers and protect little.
 *
 * Where: every response header, and the body when it is text (text/*, JSON, XML, form data,
 * JavaScript), not compressed, and at most `maxBodyBytes` long. A larger or binary body streams
 * through unmodified (docs/proxy.md says so).
 */

export const redactionMarker = '[REDACTED]';
export const minRedactedLength = 6;
/** The largest body buffered to be scanned; also the default of the proxy's redaction cap. */
export const defaultRedactionCap = 1024 * 1024;

/** The strings to take out of responses, longest first (so a value containing another goes whole). */
export const secretsToRedact = (type: CredentialType, secret: SecretFields): string[] => {
  const values = new Set<string>();
  for (const [field, value] of Object.entries(secret)) {
    if (type === 'basic' && field === 'username') continue;
    values.add(value);
  }
  for (const derive of Object.values(credentialTypeDescriptors[type].derived)) values.add(derive(secret));
  for (const value of [...values]) values.add(Buffer.from(value, 'utf8').toString('base64'));
  return [...values].filter((v) => v.length >= minRedactedLength).sort((a, b) => b.length - a.length);
};

export interface Redactor {
  /** The text with every secret replaced. */
  (text: string): string;
  /** The same on bytes, so a body in any charset is scanned without decoding it. */
  bytes(body: Buffer): Buffer;
  /** How many replacements have been made so far. */
  count(): number;
}

const marker = Buffer.from(redactionMarker);

export const createRedactor = (secrets: readonly string[]): Redactor => {
  let count = 0;
  const needles = secrets.map((secret) => Buffer.from(secret, 'utf8'));
  const redact = ((text: string) => {
    let out = text;
    for (const secret of secrets) {
      if (!out.includes(secret)) continue;
      const parts = out.split(secret);
      count += parts.length - 1;
      out = parts.join(redactionMarker);
    }
    return out;
  }) as Redactor;
  redact.bytes = (body) => {
    let out = body;
    for (const needle of needles) {
      let at = out.indexOf(needle);
      if (at < 0) continue;
      const pieces: Buffer[] = [];
      let from = 0;
      while (at >= 0) {
        pieces.push(out.subarray(from, at), marker);
        count += 1;
        from = at + needle.length;
        at = out.indexOf(needle, from);
      }
      pieces.push(out.subarray(from));
      out = Buffer.concat(pieces);
    }
    return out;
  };
  redact.count = () => count;
  return redact;
};

const textType =
  /^(?:text\/[^;]+|application\/(?:[a-z0-9.+-]*\+)?(?:json|xml)|application\/(?:x-www-form-urlencoded|javascript|x-ndjson))\s*(?:;|$)/i;

/** Whether the body is worth scanning: text-like and not compressed. Its size is checked as it is read. */
export const scannableBody = (headers: IncomingHttpHeaders): boolean => {
  const encoding = (headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  return textType.test(headers['content-type'] ?? '') && (encoding === '' || encoding === 'identity');
};
