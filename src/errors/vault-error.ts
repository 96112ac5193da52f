import { type ErrorCode, errorRegistry } from './error-registry.js';

/**
 * An error a client may see. `message` is safe to send; `cause` and `details` stay in the log.
 * Anything that is not a VaultError becomes `internal_error` at the edge.
 */
export class VaultError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super(
      message ?? errorRegistry[code].message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'VaultError';
    this.code = code;
    this.status = errorRegistry[code].status;
    this.details = options?.details;
  }
}

export const isVaultError = (error: unknown): error is VaultError => error instanceof VaultError;

export const vaultError = (
  code: ErrorCode,
  message?: string,
  options?: ConstructorParameters<typeof VaultError>[2],
) => new VaultError(code, message, options);
