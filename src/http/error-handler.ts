import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, errorRegistry } from '../errors/error-registry.js';
import { isVaultError } from '../errors/vault-error.js';
import { isStoreBusy, translateStoreError } from '../store/store-errors.js';
import type { Metrics } from './metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The stable code this request failed with, left by the error handler for the audit hook. */
    errorCode?: ErrorCode;
    /**
     * Set when the failure was not a VaultError: nothing on the request's path recorded it, so the
     * audit hook records it (as `internal_error`) for a route that declares an event.
     */
    failedUnexpectedly?: boolean;
  }
}

/** Fields an error may carry for the caller to act on (never a secret): `authorization_required`'s link. */
export interface ErrorActionFields {
  connect_url?: string;
  /** `browser` or `device`: which consent flow the link starts. */
  flow?: string;
  user_code?: string;
  verification_uri?: string;
  verification_uri_complete?: string;
  /** Device flow: seconds between the vault's polls (the agent may ask again at this pace). */
  interval?: number;
  expires_at?: string;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; request_id: string } & ErrorActionFields;
}

/** Fastify's own errors that a client caused, mapped onto our codes. */
const fastifyCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_VALIDATION: 'invalid_request',
};

const messageFor = (code: ErrorCode, error: FastifyError, limit: number): string => {
  switch (code) {
    case 'invalid_json':
      return 'The request body is not valid JSON; check for a trailing comma or an unquoted key.';
    case 'body_too_large':
      return `The request body is larger than ${limit} bytes, the most this server accepts.`;
    case 'invalid_request':
      return error.validation ? `Invalid request: ${error.message}.` : errorRegistry[code].message;
    default:
      return errorRegistry[code].message;
  }
};

/**
 * Replaces Fastify's default handler, which would send `error.message` even on a 500. A VaultError
 * speaks for itself; a client mistake Fastify detected gets its stable code; anything else is
 * `internal_error`, with the details in the log only.
 */
export const installErrorHandler = (
  app: FastifyInstance,
  { metrics, bodyLimit }: { metrics: Metrics; bodyLimit: number },
) => {
  const send = (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    code: ErrorCode,
    message: string,
    action?: ErrorActionFields,
  ) => {
    metrics.errors.inc({ code });
    request.errorCode = code;
    const body: ErrorBody = { error: { code, message, request_id: request.id, ...action } };
    return reply.status(status).type('application/json; charset=utf-8').send(body);
  };

  app.setErrorHandler((thrown: FastifyError, request, reply) => {
    // A bounded database wait that ran out is `store_busy`, whichever route met it.
    const error = (translateStoreError(thrown) as FastifyError | undefined) ?? thrown;
    if (isVaultError(error)) {
      if (isStoreBusy(error.cause)) metrics.storeLockTimeouts.inc({ code: error.code });
      if (error.status >= 500)
        request.log.error({ err: error.cause ?? error, code: error.code }, error.message);
      if (error.code === 'too_many_auth_failures' && error.details?.retryAfter) {
        reply.header('retry-after', String(error.details.retryAfter));
      }
      // A policy's rate limit or usage cap says when its window resets (agent-request.ts).
      if (
        (error.code === 'rate_limited' || error.code === 'usage_cap_exhausted') &&
        error.details?.retryAfter
      ) {
        reply.header('retry-after', String(error.details.retryAfter));
      }
      // A parked request (docs/approvals.md): 202, when to ask again, and the approval to wait on.
      if (error.code === 'approval_pending' && error.details?.approval) {
        const approval = error.details.approval as { retry_after: number };
        metrics.errors.inc({ code: error.code });
        request.errorCode = error.code;
        return reply
          .status(202)
          .header('retry-after', String(approval.retry_after))
          .type('application/json; charset=utf-8')
          .send({ error: { code: error.code, message: error.message, request_id: request.id }, approval });
      }
      // A server-side failure's own message names internals (a credential or data-key id, the key
      // webhook's URL). Only an authenticated admin reads it; agents and anonymous callers get the
      // registry's message, and the specific one is in the log under the request id.
      const message =
        error.status >= 500 && !request.admin ? errorRegistry[error.code].message : error.message;
      return send(
        request,
        reply,
        error.status,
        error.code,
        message,
        error.details?.action as ErrorActionFields,
      );
    }
    const mapped = error.code ? fastifyCodes[error.code] : undefined;
    if (mapped) {
      return send(request, reply, errorRegistry[mapped].status, mapped, messageFor(mapped, error, bodyLimit));
    }
    request.log.error({ err: error }, 'unhandled error');
    request.failedUnexpectedly = true;
    return send(request, reply, 500, 'internal_error', errorRegistry.internal_error.message);
  });

  app.setNotFoundHandler((request, reply) =>
    send(
      request,
      reply,
      404,
      'not_found',
      `No endpoint ${request.method} ${request.url.split('?')[0]}; see /docs.`,
    ),
  );
};
