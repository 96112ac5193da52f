import { importJWK, type JWK } from 'jose';
import { VaultError } from '../errors/vault-error.js';

/**
 * Signature algorithms an agent may sign its assertions with. Never `none`, never HMAC (`HS*`): the
 * vault holds only public keys, so a shared secret has no place here.
 */
export const assertionAlgorithms = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'] as const;

/** Workload issuers choose their own asymmetric algorithm (GitHub Actions signs with RS256). */
export const issuerAlgorithms = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
  'Ed25519',
] as const;

export type PublicJwk = Pick<JWK, 'kty' | 'kid' | 'alg' | 'use' | 'crv' | 'x' | 'y' | 'n' | 'e'>;
export interface PublicJwks {
  keys: PublicJwk[];
}

const maxKeys = 10;
/** Members that only a private or symmetric key has (RFC 7517/7518/8037, and `priv` of newer key types). */
const privateMembers = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv', 'seed'];
const publicMembers = ['kty', 'kid', 'alg', 'use', 'crv', 'x', 'y', 'n', 'e'] as const;

const invalid = (message: string) => new VaultError('invalid_request', message);

/** The algorithm a key is used with: its own `alg`, or the one its type and curve imply. */
const algorithmFor = (jwk: PublicJwk, label: string): string => {
  switch (jwk.kty) {
    case 'EC':
      if (jwk.crv !== 'P-256') throw invalid(`${label}: an EC key must be on curve P-256 (ES256).`);
      if (jwk.alg !== undefined && jwk.alg !== 'ES256')
        throw invalid(`${label}: an EC P-256 key signs ES256.`);
      return 'ES256';
    case 'OKP':
      if (jwk.crv !== 'Ed25519') throw invalid(`${label}: an OKP key must be on curve Ed25519 (EdDSA).`);
      if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519')
        throw invalid(`${label}: an Ed25519 key signs EdDSA.`);
      return jwk.alg ?? 'EdDSA';
    case 'RSA': {
      if (jwk.alg !== undefined && jwk.alg !== 'RS256' && jwk.alg !== 'PS256')
        throw invalid(`${label}: an RSA key signs RS256 or PS256.`);
      // base64url: 4 characters per 3 bytes; 2048-bit moduli are 342 characters.
      if (typeof jwk.n !== 'string' || jwk.n.length < 342)
        throw invalid(`${label}: an RSA key needs a modulus of at least 2048 bits.`);
      return jwk.alg ?? 'RS256';
    }
    default:
      throw invalid(
        `${label}: key type "${String(jwk.kty).slice(0, 20)}" is not accepted; register an EC P-256, Ed25519 or RSA public key.`,
      );
  }
};

/**
 * Validates a public JWK or JWK set and returns it reduced to its public members. Refuses private
 * or symmetric key material outright, so a mistake does not leave a private key in the database.
 */
export const validatePublicJwks = async (input: unknown): Promise<PublicJwks> => {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('jwks must be a JWK set ({"keys":[…]}) or a single public JWK.');
  }
  const record = input as Record<string, unknown>;
  const keys = 'keys' in record ? record.keys : [record];
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > maxKeys) {
    throw invalid(`A JWK set holds 1 to ${maxKeys} keys.`);
  }
  const kids = new Set<string>();
  const result: PublicJwk[] = [];
  for (const [index, key] of keys.entries()) {
    if (typeof key !== 'object' || key === null || Array.isArray(key))
      throw invalid(`Key #${index + 1} is not an object.`);
    const jwk = key as Record<string, unknown>;
    const label = `Key #${index + 1}${typeof jwk.kid === 'string' ? ` (kid "${jwk.kid.slice(0, 64)}")` : ''}`;
    const found = privateMembers.filter((member) => member in jwk);
    if (found.length > 0) {
      throw invalid(
        `${label} contains private or symmetric key material (${found.map((m) => `"${m}"`).join(', ')}); register only the public key. Nothing was stored.`,
      );
    }
    for (const member of publicMembers) {
      if (member in jwk && typeof jwk[member] !== 'string')
        throw invalid(`${label}: "${member}" must be a string.`);
    }
    if (jwk.use !== undefined && jwk.use !== 'sig') throw invalid(`${label}: "use" must be "sig".`);
    if (typeof jwk.kid === 'string') {
      if (jwk.kid.length === 0 || jwk.kid.length > 256)
        throw invalid(`${label}: kid is 1 to 256 characters.`);
      if (kids.has(jwk.kid)) throw invalid(`${label}: two keys have the same kid.`);
      kids.add(jwk.kid);
    }
    const reduced = Object.fromEntries(
      publicMembers.filter((member) => member in jwk).map((member) => [member, jwk[member]]),
    ) as PublicJwk;
    const alg = algorithmFor(reduced, label);
    try {
      await importJWK(reduced, alg);
    } catch {
      throw invalid(`${label} is not a valid ${reduced.kty} public key.`);
    }
    result.push(reduced);
  }
  return { keys: result };
};
