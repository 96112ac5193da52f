import type { ErrorCode } from '../errors/error-registry.js';

/** Codes the vault sends (docs/errors.md), and the client's own for failures with no vault answer. */
export type VaultClientErrorCode =
  ErrorCode | 'network_error' | 'timeout' | 'bad_response' | 'http_error' | 'invalid_options';

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

  constructor(
    code: VaultClientErrorCode,
    message: string,
    options: { status?: number; requestId?: string | null; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status ?? 0;
    this.requestId = options.requestId ?? null;
    this.retryable = options.retryable ?? false;
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
    },
  );
};
