import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { type ErrorCode, errorRegistry } from '../errors/error-registry.js';

/**
 * Requests node's HTTP parser refuses before Fastify sees them (a control character in a header name
 * or value or in the path, a malformed request line, headers beyond the size limit) still get the
 * standard `{"error":{code,message,request_id}}` body with a stable code, instead of Fastify's own.
 * There is no request object yet, so the request id is made here. A request that timed out or a
 * connection the client reset gets no answer: no one is reading it.
 */
export const clientErrorHandler = (error: Error & { code?: string }, socket: Socket): void => {
  if (error.code === 'ECONNRESET' || error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || !socket.writable) {
    socket.destroy();
    return;
  }
  const code: ErrorCode = error.code === 'HPE_HEADER_OVERFLOW' ? 'headers_too_large' : 'malformed_http';
  const { status, message } = errorRegistry[code];
  const body = JSON.stringify({ error: { code, message, request_id: `req_${randomUUID()}` } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
};
