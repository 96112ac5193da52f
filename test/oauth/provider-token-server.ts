import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for a provider's token endpoint: a real `node:http` server that answers each
 * request with whatever the test's handler returns, in that provider's documented shape, and records
 * every request so the test can check what the client sent.
 *
 * The client under test keeps the catalog's real https URLs; `fetch` below routes them here, keeping
 * the original host and path (`/login.microsoftonline.com/acme/oauth2/v2.0/token`), so a test also
 * proves which endpoint the catalog entry resolved to.
 */

export interface TokenRequest {
  /** The URL the client meant to reach. */
  url: string;
  method: string;
  headers: IncomingHttpHeaders;
  form: URLSearchParams;
}

export interface TokenAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string as it is. */
  body: unknown;
  /** Hold the answer this long (to test timeouts). */
  delayMs?: number;
}

export type TokenHandler = (request: TokenRequest) => TokenAnswer;

export interface TokenServer {
  requests: TokenRequest[];
  /** Replaces the handler for the next requests. */
  answer(handler: TokenHandler): void;
  /** A fetch that sends https://host/path to this server as /host/path. */
  fetch: typeof fetch;
  close(): Promise<void>;
}

export const startTokenServer = async (): Promise<TokenServer> => {
  const requests: TokenRequest[] = [];
  let handler: TokenHandler = () => ({ status: 500, body: { error: 'no handler' } });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: TokenRequest = {
        url: `https:/${req.url ?? '/'}`,
        method: req.method ?? 'GET',
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      };
      requests.push(request);
      const answer = handler(request);
      const send = () => {
        const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status ?? 200, {
          'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json',
          ...answer.headers,
        });
        res.end(text);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const routed: typeof fetch = (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (url.protocol !== 'https:') throw new Error(`the client tried a non-https URL: ${url.href}`);
    return fetch(`${base}/${url.host}${url.pathname}${url.search}`, init);
  };

  return {
    requests,
    answer(next) {
      handler = next;
    },
    fetch: routed,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
};
