import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { Config } from '../config/config-schema.js';

/** The certificate and key Fastify's `https` option takes. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads `TOKENVAULT_TLS_CERT_FILE` / `TOKENVAULT_TLS_KEY_FILE` at start, so a missing file, a file that is
 * not PEM or a key that does not match the certificate stops the vault with a sentence naming the
 * setting, before anything else opens, rather than failing every handshake later. The key's bytes are
 * never part of an error. Undefined: neither is set (loadConfig refuses one without the other).
 */
export const readTlsFiles = (config: Pick<Config, 'tlsCertFile' | 'tlsKeyFile'>): TlsFiles | undefined => {
  if (!config.tlsCertFile || !config.tlsKeyFile) return undefined;
  const read = (path: string, setting: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new Error(`${setting}: cannot read ${path} (${code})`);
    }
  };
  const files = {
    cert: read(config.tlsCertFile, 'TOKENVAULT_TLS_CERT_FILE'),
    key: read(config.tlsKeyFile, 'TOKENVAULT_TLS_KEY_FILE'),
  };
  try {
    createSecureContext(files);
  } catch (error) {
    // OpenSSL's reason (e.g. "key values mismatch", "no start line") names the problem, not the contents.
    const reason = error instanceof Error ? error.message.slice(0, 200) : 'not usable';
    throw new Error(
      `TOKENVAULT_TLS_CERT_FILE / TOKENVAULT_TLS_KEY_FILE: not a usable PEM certificate and matching key (${reason})`,
    );
  }
  return files;
};
