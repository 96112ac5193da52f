import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

/**
 * A self-signed certificate for 127.0.0.1 and localhost, made by the `openssl` CLI in a temp dir, for
 * tests of the vault serving TLS itself. `fetchTrusting(cert)` is a fetch that trusts it (and nothing
 * else), for a client in this process: a server's outbound fetch (oidc-provider's `fetch` hook) or the
 * test itself. A child process trusts it with NODE_EXTRA_CA_CERTS=certFile.
 */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  cert: string;
  remove(): void;
}

export const createSelfSignedCertificate = (): TestCertificate => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenvault-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return {
    certFile,
    keyFile,
    cert: readFileSync(certFile, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
};

/** A fetch over node's https with `ca` as the only trusted root (GET/POST with a string body). */
export const fetchTrusting =
  (ca: string) =>
  (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : input);
      const headers = Object.fromEntries(new Headers(init.headers));
      const request = httpsRequest(url, { method: init.method ?? 'GET', headers, ca }, (response) => {
        const out = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (typeof value === 'string') out.set(name, value);
          else if (Array.isArray(value)) for (const v of value) out.append(name, v);
        }
        const status = response.statusCode ?? 502;
        const body = [204, 304].includes(status) ? null : (Readable.toWeb(response) as ReadableStream);
        resolve(new Response(body, { status, headers: out }));
      });
      request.on('error', reject);
      init.signal?.addEventListener('abort', () => request.destroy(new Error('aborted')));
      request.end(typeof init.body === 'string' ? init.body : undefined);
    });
