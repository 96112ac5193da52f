import { randomBytes } from 'node:crypto';
import { VaultError } from '../errors/vault-error.js';
import { aeadKeyLength, decodeBase64Url, open, seal } from './aead.js';

/**
 * Field encryption under a credential's data key (DEK).
 *
 * A ciphertext is `tv1.<dekId>.<base64url(iv | ciphertext | tag)>`: the format version, then the id of
 * the DEK that sealed it, so a reader knows which key to fetch and a future format can coexist. Neither
 * dek ids (UUIDs) nor base64url contain a `.`, so the three parts split unambiguously.
 *
 * The AAD binds the format version, the dek id and where the value lives (namespace, credential id,
 * credential version, field). It is a JSON array, so `{ns:'a|b', id:'c'}` and `{ns:'a', id:'b|c'}`
 * cannot encode to the same bytes. A ciphertext copied to another row or field fails to open.
 */
export interface FieldAad {
  namespace: string;
  credentialId: string;
  version: number;
  field: string;
}

export const fieldFormat = 'tv1';

const dekIdPattern = /^[A-Za-z0-9_-]{1,128}$/;

export const newDataKey = (): Buffer => randomBytes(aeadKeyLength);

const aadBytes = (dekId: string, aad: FieldAad): Buffer =>
  Buffer.from(
    JSON.stringify([fieldFormat, dekId, aad.namespace, aad.credentialId, aad.version, aad.field]),
    'utf8',
  );

const checkAad = (aad: FieldAad): void => {
  if (!Number.isSafeInteger(aad.version) || aad.version < 0) {
    throw new TypeError('FieldAad.version must be a non-negative integer');
  }
};

export const encryptField = (
  dek: Buffer,
  dekId: string,
  aad: FieldAad,
  plaintext: Buffer | string,
): string => {
  if (!dekIdPattern.test(dekId)) throw new TypeError('a data key id is 1-128 characters of [A-Za-z0-9_-]');
  checkAad(aad);
  const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
  const sealed = seal(dek, bytes, aadBytes(dekId, aad));
  return `${fieldFormat}.${dekId}.${sealed.toString('base64url')}`;
};

export const decryptField = (dek: Buffer, dekId: string, aad: FieldAad, ciphertext: string): Buffer => {
  // The message says where the value lives, never anything about the key or the plaintext.
  const fail = (why: string, cause?: unknown) =>
    new VaultError(
      'decryption_failed',
      `Field "${aad.field}" of credential ${aad.credentialId} (version ${aad.version}) in namespace ` +
        `"${aad.namespace}" cannot be decrypted: ${why}. The secret was not returned.`,
      cause === undefined ? undefined : { cause },
    );

  const parts = typeof ciphertext === 'string' ? ciphertext.split('.') : [];
  if (parts.length !== 3) throw fail('the stored value is not a field ciphertext');
  const [format, storedDekId, body] = parts as [string, string, string];
  if (format !== fieldFormat) throw fail(`unknown ciphertext format "${format.slice(0, 16)}"`);
  if (!dekIdPattern.test(storedDekId)) throw fail('the stored value is not a field ciphertext');
  if (storedDekId !== dekId) throw fail(`it was sealed by data key ${storedDekId}, not ${dekId}`);
  const sealed = decodeBase64Url(body);
  if (!sealed) throw fail('the ciphertext is not valid base64url');
  try {
    checkAad(aad);
    return open(dek, sealed, aadBytes(dekId, aad));
  } catch (error) {
    throw fail('it was altered, moved from another row, or sealed by another key', error);
  }
};
