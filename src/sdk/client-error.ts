import type { ErrorCode } from '../errors/error-registry.js';

/** Codes the vault sends (docs/errors.md), and the client's own for failures with no vault answer. */
export type VaultClientErrorCode =
  ErrorCode | 'network_error' | 'timeout' | 'bad_response' | 'http_error' | 'invalid_options';

/**
 * What `authorization_required` asks the agent to show its user: a link (browser flow), or a code to
 * enter at the provider (device flow, RFC 8628). Once the user finishes, the same call succeeds.
 */
export interface AuthorizationRequired {
  flow: 'browser' | 'device';
  /** The link to show: the vault's consent page, or the provider's verification page. */
  connectUrl: string;
  /** When the link or the code stops working (ISO-8601). */
  expiresAt: string | null;
  /** Device flow: the code the user enters at `verificationUri`. */
  userCode?: string;
  verificationUri?: string;
  /** Device flow: the verification page with the code filled in, when the provider gives one. */
  verificationUriComplete?: string;
  /** Device flow: seconds between the vault's polls; asking again faster gains nothing. */
  interval?: number;
}

const authorizationOf = (error: Record<string, unknown> | undefined): AuthorizationRequired | null => {
  if (error?.code !== 'authorization_required' || typeof error.connect_url !== 'string') return null;
  const text = (key: string) => (typeof error[key] === 'string' ? (error[key] as string) : undefined);
  const userCode = text('user_code');
  const verificationUri = text('verification_uri');
  const verificationUriComplete = text('verification_uri_complete');
  return {
    flow: error.flow === 'device' || userCode !== undefined ? 'device' : 'browser',
    connectUrl: error.connect_url,
    expiresAt: text('expires_at') ?? null,
    ...(userCode === undefined ? {} : { userCode }),
    ...(verificationUri === undefined ? {} : { verificationUri }),
    ...(verificationUriComplete === undefined ? {} : { verificationUriComplete }),
    ...(typeof error.interval === 'number' ? { interval: error.interval } : {}),
  };
};

export class VaultClientError extends Error {
  override readonly name = 'VaultClientError';
  /** The vault's stable code (`credential_not_granted`, `grant_expired`, …) or the client's own. */
  readonly code: VaultClientErrorCode;
  /** The HTTP status; 0 when no answer came (network error, timeout). */
  readonly status: number;
  /** The vault's request id, to find the request in its log and audit trail. */
  readonly requestId: string | null;
  /** Whether the client retried (or would retry) this kind of failure. */
  readonly retryable: boolean;
  /** `authorization_required`: what to show the end user (a link, or a device code); null otherwise. */
  readonly authorization: AuthorizationRequired | null;

  constructor(
    code: VaultClientErrorCode,
    message: string,
    options: {
      status?: number;
      requestId?: string | null;
      retryable?: boolean;
      cause?: unknown;
      authorization?: AuthorizationRequired | null;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? 0;
    this.requestId = options.requestId ?? null;
    this.retryable = options.retryable ?? false;
    this.authorization = options.authorization ?? null;
  }
}

export const isVaultClientError = (error: unknown): error is VaultClientError =>
  error instanceof VaultClientError;

/**
 * The vault's own refusal (`{ error: { code, message, request_id } }`) as a typed error; `http_error`
 * when the body does not say. Retryable when the vault's trouble is passing (5xx).
 */
export const vaultRefusal = (
  status: number,
  body: unknown,
  headerId: string | null,
  retryable = status >= 500,
): VaultClientError => {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  return new VaultClientError(
    (typeof error?.code === 'string' ? error.code : 'http_error') as VaultClientErrorCode,
    typeof error?.message === 'string' ? error.message : `The vault answered ${status}.`,
    {
      status,
      requestId: typeof error?.request_id === 'string' ? error.request_id : headerId,
      retryable,
      authorization: authorizationOf(error),
    },
  );
};
