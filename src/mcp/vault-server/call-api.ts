import { Readable } from 'node:stream';
import { VaultError } from '../../errors/vault-error.js';
import type { ProxyRequest, ProxyResponse } from '../../proxy/proxy-service.js';

/**
 * `call_api` as plain values: the tool's arguments become an HTTP proxy request, and the proxy's
 * answer becomes what the model reads. Pure apart from draining a body it will not return.
 *
 * What the agent gets back is only what the proxy has already redacted: the response headers
 * (always scanned) and a body the proxy read whole and scanned (text, not compressed, within its
 * redaction cap). A body the proxy streamed without scanning (binary, compressed, or too large) is
 * not returned over MCP at all — `body` is null and `body_omitted` says why — because the tool result
 * goes into a model's context, where an unscanned secret would be out for good. The returned text is
 * capped at `callApiBodyCap` bytes after redaction (`truncated` says so).
 */

export const callApiMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type CallApiMethod = (typeof callApiMethods)[number];

export interface CallApiInput {
  credential: string;
  method: CallApiMethod;
  /** Below the credential's base URL, with an optional `?query`. */
  path: string;
  headers?: Record<string, string> | undefined;
  body?: string | undefined;
  /** Selects a per-user credential (as `?user=` does on `/v1/proxy`). */
  user?: string | undefined;
}

export interface CallApiResult {
  status: number;
  headers: Record<string, string>;
  /** The response body as text (redacted); null when there is none or it is not returned. */
  body: string | null;
  /** True when `body` was cut at `callApiBodyCap` bytes. */
  truncated: boolean;
  /** Why the body is not returned, when it is not. */
  body_omitted?: string;
}

/** The largest body text returned to the model, in bytes (after redaction). */
export const callApiBodyCap = 128 * 1024;

/** An HTTP header name (RFC 9110 token). */
const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Any control character but tab: what would split a header in two on the wire.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const unsafeHeaderValue = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Headers the vault sets itself for the body it sends: the tool's own are not taken. */
const framing = new Set(['content-length', 'transfer-encoding']);

/**
 * The tool's headers as Node's flat [name, value, …] list. On `/v1/proxy` Node's parser has already
 * refused CR, LF and bad names; here the headers arrive as JSON strings, so the same is checked here.
 */
const rawHeadersOf = (headers: Record<string, string>, body: Buffer | undefined): string[] => {
  const raw: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (!headerName.test(name)) {
      throw new VaultError('proxy_header_refused', `The header name "${name.slice(0, 64)}" is not valid.`);
    }
    if (unsafeHeaderValue.test(value)) {
      throw new VaultError(
        'proxy_header_refused',
        `The value of header ${name} holds a control character (CR, LF, …); nothing was sent.`,
      );
    }
    if (framing.has(name.toLowerCase())) continue;
    raw.push(name, value);
  }
  if (body) raw.push('Content-Length', String(body.length));
  return raw;
};

/** The path and the query of `path`, as `/v1/proxy` splits its URL. */
const splitPath = (path: string): { rawPath: string; rawQuery: string } => {
  const q = path.indexOf('?');
  return q < 0 ? { rawPath: path, rawQuery: '' } : { rawPath: path.slice(0, q), rawQuery: path.slice(q + 1) };
};

export const callApiRequest = (
  input: CallApiInput,
): Pick<ProxyRequest, 'service' | 'method' | 'rawPath' | 'rawQuery' | 'endUser' | 'rawHeaders' | 'body'> => {
  const body = input.body === undefined ? undefined : Buffer.from(input.body, 'utf8');
  return {
    service: input.credential,
    method: input.method,
    ...splitPath(input.path),
    endUser: input.user,
    rawHeaders: rawHeadersOf(input.headers ?? {}, body),
    body: body === undefined ? undefined : Readable.from([body]),
  };
};

const flatHeaders = (headers: ProxyResponse['headers']): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : value]),
  );

const notScanned =
  'The body is binary, compressed or larger than the proxy scans for the secret, so it is not returned over MCP; call /v1/proxy directly for it.';

export const callApiAnswer = (answer: ProxyResponse): CallApiResult => {
  const headers = flatHeaders(answer.headers);
  if (answer.body === null) return { status: answer.status, headers, body: null, truncated: false };
  if (answer.body instanceof Readable) {
    answer.body.destroy();
    return { status: answer.status, headers, body: null, truncated: false, body_omitted: notScanned };
  }
  const truncated = answer.body.length > callApiBodyCap;
  const bytes = truncated ? answer.body.subarray(0, callApiBodyCap) : answer.body;
  return { status: answer.status, headers, body: bytes.toString('utf8'), truncated };
};
