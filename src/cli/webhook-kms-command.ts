import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { parseKeyMaterial, readKeyFile, readPrivateFile } from '../crypto/master-key.js';
import { createWebhookKmsServer, type WebhookKmsServerOptions } from '../crypto/webhook-kms-server.js';
import { minWebhookSecretLength, webhookKeyIdPattern } from '../crypto/webhook-signature.js';
import { systemClock } from '../lib/clock.js';

/**
 * `tokenvault webhook-kms serve`: runs the reference key webhook (src/crypto/webhook-kms-server.ts) for
 * a vault in webhook mode. The key and the HMAC secret come from the environment or from private files,
 * never from flags, so they do not show up in `ps` or shell history.
 */
export interface WebhookKmsCommandIo {
  env: NodeJS.ProcessEnv;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Resolves when the server should stop (SIGINT/SIGTERM in the real CLI). */
  shutdownSignal: () => Promise<void>;
}

export interface KmsServeFlags {
  host: string;
  port: string;
  keyFile?: string;
  keyId?: string;
  retiredKeyFile?: string[];
  secretFile?: string;
  json?: boolean;
}

const processIo: WebhookKmsCommandIo = {
  env: process.env,
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  shutdownSignal: () =>
    new Promise((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    }),
};

/**
 * A key id derived from the key, so a new key gets a new id without the operator naming one, and a
 * ciphertext is never sent to a key that cannot open it. 48 bits of a SHA-256 reveal nothing usable.
 */
export const defaultKeyId = (key: Buffer): string =>
  `kms-${createHash('sha256').update('tokenvault-kms-key-id\0').update(key).digest('hex').slice(0, 12)}`;

export const resolveKmsServeOptions = (
  flags: KmsServeFlags,
  env: NodeJS.ProcessEnv,
): WebhookKmsServerOptions => {
  const port = Number(flags.port);
  if (!/^[0-9]{1,5}$/.test(flags.port) || port > 65_535) {
    throw new Error('--port must be a port number (0-65535).');
  }

  const envKey = env.TOKENVAULT_KMS_KEY;
  if (envKey !== undefined && flags.keyFile) {
    throw new Error('Set TOKENVAULT_KMS_KEY or --key-file, not both.');
  }
  let key: Buffer;
  if (flags.keyFile) {
    const fromFile = readKeyFile(flags.keyFile, 'KMS key');
    if (!fromFile) throw new Error(`The KMS key file ${flags.keyFile} does not exist.`);
    key = fromFile;
  } else if (envKey !== undefined) {
    key = parseKeyMaterial(envKey, 'TOKENVAULT_KMS_KEY');
  } else {
    throw new Error(
      'No KMS key: set TOKENVAULT_KMS_KEY or pass --key-file (32 bytes as base64 or hex; `openssl rand -base64 32`).',
    );
  }

  const envSecret = env.TOKENVAULT_KMS_SECRET;
  if (envSecret !== undefined && flags.secretFile) {
    throw new Error('Set TOKENVAULT_KMS_SECRET or --secret-file, not both.');
  }
  let secret: string;
  if (flags.secretFile) {
    const text = readPrivateFile(flags.secretFile, 'KMS secret');
    if (text === undefined) throw new Error(`The KMS secret file ${flags.secretFile} does not exist.`);
    secret = text.replace(/\r?\n$/, '');
  } else if (envSecret !== undefined) {
    secret = envSecret;
  } else {
    throw new Error(
      'No HMAC secret: set TOKENVAULT_KMS_SECRET or pass --secret-file (the same secret the vault uses).',
    );
  }
  if (secret.length < minWebhookSecretLength) {
    throw new Error(
      `The HMAC secret must be at least ${minWebhookSecretLength} characters (\`openssl rand -hex 32\`).`,
    );
  }

  const keyId = flags.keyId ?? defaultKeyId(key);
  if (!webhookKeyIdPattern.test(keyId)) {
    throw new Error('--key-id must be 1-64 characters of [A-Za-z0-9._-].');
  }
  // Earlier keys stay available for unwrap, so DEKs wrapped before a key change keep opening.
  const retired = (flags.retiredKeyFile ?? []).map((path) => {
    const old = readKeyFile(path, 'retired KMS key');
    if (!old) throw new Error(`The retired KMS key file ${path} does not exist.`);
    return { id: defaultKeyId(old), key: old };
  });
  const keys = [{ id: keyId, key }, ...retired];
  if (new Set(keys.map((k) => k.id)).size !== keys.length) {
    throw new Error('A retired key repeats the active key or another retired key.');
  }
  return { keys, activeKeyId: keyId, secret, host: flags.host, port };
};

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

export const registerWebhookKmsCommand = (program: Command, io: WebhookKmsCommandIo = processIo): void => {
  const kms = program
    .command('webhook-kms')
    .description('the reference key webhook for webhook mode (see docs/webhook-kms.md)');

  kms
    .command('serve')
    .description('Serve /wrap, /unwrap and /healthz with a key from TOKENVAULT_KMS_KEY or --key-file.')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', '8300')
    .option('--key-file <path>', 'file holding the 32-byte key (mode 0600), instead of TOKENVAULT_KMS_KEY')
    .option('--key-id <id>', 'key id reported to the vault (default: derived from the key)')
    .option(
      '--retired-key-file <path>',
      'an earlier key, kept for unwrap only; repeat for several (ids derived from each key)',
      (path: string, previous: string[] = []) => [...previous, path],
    )
    .option(
      '--secret-file <path>',
      'file holding the HMAC secret (mode 0600), instead of TOKENVAULT_KMS_SECRET',
    )
    .option('--json', 'print the listening address as one JSON line')
    .action(async (_flags: KmsServeFlags, command: Command) => {
      const flags = command.optsWithGlobals<KmsServeFlags>();
      const options = resolveKmsServeOptions(flags, io.env);
      const server = createWebhookKmsServer({
        ...options,
        clock: systemClock,
        // Request facts only; the server never hands keys or plaintexts to its log.
        log: (entry) => io.stderr(JSON.stringify({ time: new Date().toISOString(), ...entry })),
      });
      const { url } = await server.start();
      const shutdown = io.shutdownSignal();
      if (!isLoopback(options.host ?? '')) {
        io.stderr(
          'warning: serving plain HTTP off loopback; put a TLS-terminating proxy in front (the vault only ' +
            'accepts https:// webhook URLs that are not loopback).',
        );
      }
      io.stdout(
        flags.json
          ? JSON.stringify({ url, key_id: options.activeKeyId })
          : `webhook KMS listening on ${url} (key id ${options.activeKeyId})`,
      );
      await shutdown;
      await server.stop();
    });
};
