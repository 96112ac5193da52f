/**
 * The one registry of error codes. Every error a client can see has a stable snake_case code here, an
 * HTTP status and a default message a person can act on. `docs/errors.md` lists the same codes; a test
 * keeps the two in step.
 */
export const errorRegistry = {
  // request shape
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_request: {
    status: 400,
    message: 'The request is missing a field or has a field of the wrong type.',
  },
  unsupported_media_type: { status: 415, message: 'Send the request body as application/json.' },
  body_too_large: { status: 413, message: 'The request body is larger than the server accepts.' },
  not_found: { status: 404, message: 'No such endpoint.' },

  // admin authentication
  unauthenticated: { status: 401, message: 'Send an admin token as `Authorization: Bearer tv_admin_…`.' },
  admin_token_invalid: { status: 401, message: 'The admin token is not valid.' },
  admin_token_expired: { status: 401, message: 'The admin token has expired; create a new one.' },
  admin_token_revoked: { status: 401, message: 'The admin token has been revoked; create a new one.' },
  admin_token_not_found: { status: 404, message: 'No admin token has that id.' },
  too_many_auth_failures: {
    status: 429,
    message: 'Too many failed authentication attempts from this address; wait and try again.',
  },

  // credentials
  invalid_name: {
    status: 400,
    message:
      'A name is 1 to 64 characters: lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit.',
  },
  unknown_credential_type: {
    status: 400,
    message: 'The credential type must be one of api_key, bearer, basic, oauth2, custom.',
  },
  invalid_secret: { status: 400, message: 'The secret does not have the fields its credential type needs.' },
  invalid_injection: { status: 400, message: 'The injection settings are not valid.' },
  invalid_namespace: {
    status: 400,
    message: 'A namespace is 1 to 64 characters: lowercase letters, digits, `-` and `_`.',
  },
  credential_exists: {
    status: 409,
    message: 'A credential with that name already exists in this namespace.',
  },
  credential_not_found: { status: 404, message: 'No credential has that name in this namespace.' },
  credential_version_not_found: { status: 404, message: 'The credential has no such version.' },

  // keys and encryption
  key_provider_unavailable: {
    status: 503,
    message: 'The key provider cannot be reached, so no secret can be read or written. Nothing was changed.',
  },
  key_provider_not_configured: {
    status: 400,
    message: 'That vault mode is not configured on this server; set its options and restart.',
  },
  master_key_mismatch: {
    status: 500,
    message:
      'The master key does not open this vault’s keyring; start with the key the vault was created with.',
  },
  decryption_failed: {
    status: 500,
    message:
      'A stored ciphertext failed its integrity check: it was altered, or moved from another row. The secret was not returned.',
  },
  rewrap_in_progress: {
    status: 409,
    message: 'A key re-wrap is already running; watch it with `tokenvault keys status --watch`.',
  },
  mode_unchanged: { status: 409, message: 'The vault is already in that mode.' },
  rotation_requires_platform_mode: {
    status: 409,
    message: 'Key rotation is for platform mode; in webhook mode the webhook owns and rotates the key.',
  },

  // operations
  internal_error: {
    status: 500,
    message: 'Something went wrong on the server; the request id is in the log.',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorRegistry;

export const errorCodes = Object.keys(errorRegistry) as ErrorCode[];
