import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with associated data. A sealed box is `iv (12) | ciphertext | tag (16)`: the IV is random
 * per call (96 bits, the size GCM is designed for), so a key must not seal more than ~2^32 messages —
 * far beyond what one DEK or KEK ever sees here.
 */
export const aeadKeyLength = 32;
export const aeadIvLength = 12;
export const aeadTagLength = 16;

const algorithm = 'aes-256-gcm';

/** Thrown by `open` for every failure, so callers never see (or leak) node's own error text. */
export class AeadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AeadError';
  }
}

const checkKey = (key: Buffer): void => {
  if (!Buffer.isBuffer(key) || key.length !== aeadKeyLength) {
    throw new AeadError(`an AES-256-GCM key is ${aeadKeyLength} bytes`);
  }
};

export const seal = (key: Buffer, plaintext: Buffer, aad: Buffer): Buffer => {
  checkKey(key);
  const iv = randomBytes(aeadIvLength);
  const cipher = createCipheriv(algorithm, key, iv, { authTagLength: aeadTagLength });
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
};

export const open = (key: Buffer, sealed: Buffer, aad: Buffer): Buffer => {
  checkKey(key);
  if (sealed.length < aeadIvLength + aeadTagLength) throw new AeadError('sealed box is too short');
  const iv = sealed.subarray(0, aeadIvLength);
  const tag = sealed.subarray(sealed.length - aeadTagLength);
  const body = sealed.subarray(aeadIvLength, sealed.length - aeadTagLength);
  try {
    const decipher = createDecipheriv(algorithm, key, iv, { authTagLength: aeadTagLength });
    decipher.setAuthTag(tag);
    decipher.setAAD(aad);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new AeadError('authentication failed');
  }
};

/**
 * Strict decoders: `Buffer.from(s, 'base64')` silently skips bad characters and ignores unused trailing
 * bits, so two different strings could decode to the same bytes. Only the canonical encoding is accepted.
 */
export const decodeBase64Url = (value: string): Buffer | undefined => {
  const bytes = Buffer.from(value, 'base64url');
  return bytes.toString('base64url') === value ? bytes : undefined;
};

/** Standard base64 with `=` padding, as `Buffer#toString('base64')` writes it. */
export const decodeBase64 = (value: string): Buffer | undefined => {
  const bytes = Buffer.from(value, 'base64');
  return bytes.toString('base64') === value ? bytes : undefined;
};
