import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load-config.js';
import { readTlsFiles } from '../../src/http/tls-options.js';
import { cleanEnv, runCli, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { createSelfSignedCertificate, fetchTrusting, type TestCertificate } from '../helpers/tls-cert.js';
import { startTestVault } from '../helpers/vault.js';

const problemsOf = (run: () => unknown): string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

/** A plain-HTTP request to a TLS port: the server must not answer it as HTTP. */
const plainHttpStatus = (url: string) =>
  new Promise<number | string>((resolve) => {
    const request = httpRequest(url.replace('https://', 'http://'), (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    request.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    request.setTimeout(5000, () => request.destroy(new Error('timeout')));
    request.end();
  });

/**
 * `TOKENVAULT_TLS_CERT_FILE` / `TOKENVAULT_TLS_KEY_FILE` (and `serve --tls-cert-file/--tls-key-file`):
 * the vault serves HTTPS itself, with the certificate given, and refuses to start half-configured.
 */
describe('native TLS serving', () => {
  let cert: TestCertificate;
  let other: TestCertificate;
  const dirs: TempDataDir[] = [];

  beforeAll(() => {
    cert = createSelfSignedCertificate();
    other = createSelfSignedCertificate();
  });
  afterAll(async () => {
    cert?.remove();
    other?.remove();
    for (const dir of dirs) await dir.cleanup();
  });

  it('needs both files or neither, said before anything starts', () => {
    const both =
      'TOKENVAULT_TLS_CERT_FILE and TOKENVAULT_TLS_KEY_FILE (--tls-cert-file, --tls-key-file) go together: set both or neither';
    expect(problemsOf(() => loadConfig({ tlsCertFile: cert.certFile }, {}))).toEqual([both]);
    expect(problemsOf(() => loadConfig({}, { TOKENVAULT_TLS_KEY_FILE: cert.keyFile }))).toEqual([both]);
    const config = loadConfig({ tlsCertFile: cert.certFile }, { TOKENVAULT_TLS_KEY_FILE: cert.keyFile });
    expect(config).toMatchObject({ tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile });
  });

  it('names the setting when a file is missing or the key is not the certificate’s, never the key', () => {
    expect(() => readTlsFiles({ tlsCertFile: '/nonexistent/cert.pem', tlsKeyFile: cert.keyFile })).toThrow(
      'TOKENVAULT_TLS_CERT_FILE: cannot read /nonexistent/cert.pem (ENOENT)',
    );
    let failure: unknown;
    try {
      readTlsFiles({ tlsCertFile: cert.certFile, tlsKeyFile: other.keyFile });
    } catch (error) {
      failure = error;
    }
    expect(String(failure)).toMatch(/not a usable PEM certificate and matching key \(.*mismatch/);
    expect(String(failure)).not.toContain('PRIVATE KEY');
    expect(readTlsFiles({ tlsCertFile: undefined, tlsKeyFile: undefined })).toBeUndefined();
  });

  it('serves HTTPS with the configured certificate, and nothing over plain HTTP', async () => {
    const t = await startTestVault({
      settings: { tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile, host: '127.0.0.1' },
    });
    try {
      const url = await t.vault.listen();
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetchTrusting(cert.cert)(`${url}/healthz`);
      expect(health.status).toBe(200);
      // The certificate served is the one configured: a client trusting another one refuses it.
      await expect(fetchTrusting(other.cert)(`${url}/healthz`)).rejects.toThrow(/self.signed|certificate/i);
      expect(await plainHttpStatus(url)).not.toBe(200);
    } finally {
      await t.stop();
    }
  });

  it('`serve --tls-cert-file --tls-key-file` listens on https; one without the other does not start', async () => {
    const dir = await createTempDataDir();
    dirs.push(dir);
    const server = await startServer(
      ['--data-dir', dir.dir, '--tls-cert-file', cert.certFile, '--tls-key-file', cert.keyFile],
      { cwd: dir.dir, env: cleanEnv() },
    );
    try {
      expect(server.url).toMatch(/^https:\/\//);
      expect((await fetchTrusting(cert.cert)(`${server.url}/healthz`)).status).toBe(200);
    } finally {
      await server.stop();
    }
    const half = await runCli(['serve', '--port', '0', '--data-dir', dir.dir], {
      cwd: dir.dir,
      env: cleanEnv({ TOKENVAULT_TLS_CERT_FILE: cert.certFile }),
    });
    expect(half.code).not.toBe(0);
    expect(half.stderr).toContain('set both or neither');
  });
});
