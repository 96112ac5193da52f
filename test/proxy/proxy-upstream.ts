import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

/** What the local upstream saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  bytes: number;
}

/**
 * A small real upstream API on 127.0.0.1 for the proxy tests: `/api/echo` answers with what it
 * received as JSON (so a secret sent to it comes back), `/api/redirect?to=URL` sends the caller
 * elsewhere, `/api/slow?ms=N` answers late,
 * `/api/limited` answers 429, `/api/download?bytes=N` streams N bytes, `/api/upload` counts the body.
 */
export const startUpstream = async () => {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bytes,
      };
      seen.push(entry);
      const path = (req.url ?? '').split('?')[0];
      if (path?.endsWith('/echo')) {
        res.setHeader('x-echo-authorization', String(req.headers.authorization ?? ''));
        res.setHeader('set-cookie', 'session=upstream');
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(entry));
      } else if (path?.endsWith('/redirect')) {
        const to = new URL(req.url ?? '', 'http://x').searchParams.get('to');
        res.writeHead(302, { location: to ?? 'http://other.invalid/next' }).end();
      } else if (path?.endsWith('/slow')) {
        // Answers only after `ms` (or never, until the server closes): for the proxy's timeout.
        const ms = Number(new URL(req.url ?? '', 'http://x').searchParams.get('ms') ?? 60_000);
        const timer = setTimeout(() => res.end('late'), ms);
        res.on('close', () => clearTimeout(timer));
      } else if (path?.endsWith('/limited')) {
        res.writeHead(429, { 'retry-after': '7', 'content-type': 'text/plain' }).end('slow down');
      } else if (path?.endsWith('/download')) {
        const total = Number(new URL(req.url ?? '', 'http://x').searchParams.get('bytes'));
        const chunk = Buffer.alloc(64 * 1024, 0x61);
        let sent = 0;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
        Readable.from(
          (function* () {
            while (sent < total) {
              const n = Math.min(chunk.length, total - sent);
              sent += n;
              yield n === chunk.length ? chunk : chunk.subarray(0, n);
            }
          })(),
        ).pipe(res);
      } else {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ bytes }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};

export interface CallResult {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  bytes: number;
}

/**
 * An HTTP request to the listening vault with the path sent exactly as given (no client-side
 * normalisation of `..` or `%2e`), optionally streaming a body; the answer's body is counted, and kept
 * as text when `keep` is set.
 */
export const call = (
  base: URL,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Readable | string; keep?: boolean } = {},
): Promise<CallResult> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: base.hostname, port: base.port, method, path, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (options.keep !== false) chunks.push(chunk);
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
            bytes,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (options.body instanceof Readable) options.body.pipe(req);
    else req.end(options.body);
  });

/** Raw bytes on a socket, for what a well-behaved client cannot send (two Host headers, a bare CR). */
export const rawCall = (base: URL, text: string): Promise<string> =>
  new Promise((resolve, reject) => {
    // Written, not ended: a half-closed socket may be closed by the server before it answers.
    const socket = connect(Number(base.port), base.hostname, () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', reject);
  });

/** `size` bytes of `a`, streamed in 64 KiB chunks (never held whole). */
export const streamOf = (size: number): Readable => {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  let left = size;
  return Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(chunk.length, left);
        left -= n;
        yield n === chunk.length ? chunk : chunk.subarray(0, n);
      }
    })(),
  );
};
