import {
  type CryptoKey,
  errors,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
  type JWTVerifyOptions,
} from 'jose';
import { isVaultError, VaultError } from '../errors/vault-error.js';

type VerifyOptions = JWTVerifyOptions & { algorithms: string[] };

/** What the audit record of a refusal may say about who tried (never the token). */
export type AuthFailureDetails = Record<string, string>;

export const authFailure = (
  code: ConstructorParameters<typeof VaultError>[0],
  message: string | undefined,
  details: AuthFailureDetails,
) => new VaultError(code, message, { details });

/**
 * Maps jose's verdicts onto our codes. Only a token whose signature verified can learn that it is
 * expired or for another audience: jose checks the signature before any claim.
 */
const mapJoseError = (error: unknown, details: AuthFailureDetails, what: string): unknown => {
  if (isVaultError(error)) return error;
  if (error instanceof errors.JWTExpired) {
    return authFailure('jwt_expired', `The ${what} expired (exp); sign a fresh one.`, details);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud') return authFailure('jwt_audience_invalid', undefined, details);
    if (error.reason === 'missing') {
      return authFailure(
        'jwt_invalid',
        `The ${what} has no "${error.claim}" claim, which is required.`,
        details,
      );
    }
    if (error.claim === 'nbf') {
      return authFailure('jwt_invalid', `The ${what} is not valid yet (nbf is in the future).`, details);
    }
    return authFailure('jwt_invalid', `The ${what}'s "${error.claim}" claim is not acceptable.`, details);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return authFailure('jwt_invalid', `The ${what}'s signature algorithm is not accepted.`, details);
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return authFailure(
      'jwt_invalid',
      `No registered key matches the ${what} (its kid and alg); was it signed with a key that is not registered?`,
      details,
    );
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return authFailure('jwt_invalid', `The ${what}'s signature does not verify.`, details);
  }
  if (error instanceof errors.JOSEError) {
    return authFailure('jwt_invalid', `The ${what} is malformed or uses an unsupported key.`, details);
  }
  return error;
};

/**
 * Wraps a remote key set so that failing to fetch keys is `issuer_unreachable`, not a bad token.
 * A key set that answers but lacks the key stays a token problem.
 */
export const remoteKeyGetter =
  (getKey: JWTVerifyGetKey, source: string): JWTVerifyGetKey =>
  async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (error) {
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        isVaultError(error)
      ) {
        throw error;
      }
      throw new VaultError(
        'issuer_unreachable',
        `The keys at ${source.slice(0, 200)} could not be fetched.`,
        {
          cause: error,
        },
      );
    }
  };

/**
 * `jwtVerify` against a key set, trying each candidate when several keys match (no `kid`), and
 * turning every refusal into a VaultError carrying `details` for the audit record.
 */
export const verifyJwt = async (
  token: string,
  getKey: JWTVerifyGetKey,
  options: VerifyOptions,
  details: AuthFailureDetails,
  what: string,
): Promise<JWTPayload> => {
  try {
    try {
      return (await jwtVerify(token, getKey, options)).payload;
    } catch (error) {
      if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
      for await (const key of error as unknown as AsyncIterable<CryptoKey>) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (inner) {
          if (!(inner instanceof errors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new errors.JWSSignatureVerificationFailed();
    }
  } catch (error) {
    throw mapJoseError(error, details, what);
  }
};
