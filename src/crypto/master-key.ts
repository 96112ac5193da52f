import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createFileDurably, ensurePrivateDirectory } from '../lib/durable-file.js';
import { aeadKeyLength } from './aead.js';

/**
 * The platform root key: it wraps the KEK versions in `kek_versions`, so whoever holds it and the
 * database holds every secret. It comes from `TOKENVAULT_MASTER_KEY`, or from `<dataDir>/master.key`,
 * which the first start creates with mode 0600.
 */
export const masterKeyFileName = 'master.key';

export interface LoadRootKeyOptions {
  /** The value of TOKENVAULT_MASTER_KEY; `undefined` means unset. */
  masterKey?: string | undefined;
  dataDir: string;
  /** Create the key file when there is no env key and no file (first start of `serve`). */
  create: boolean;
}

export interface RootKey {
  key: Buffer;
  source: 'env' | 'file';
  path?: string;
  created: boolean;
}

const acceptedFormats =
  'exactly 32 bytes written as base64 (44 characters), base64url (43 characters) or hex (64 characters); ' +
  'generate one with `openssl rand -base64 32`';

/**
 * Parses a 32-byte key written as base64, base64url or hex. `label` names where the value came from
 * (an environment variable or a file) because the error must never echo the value itself.
 */
export const parseKeyMaterial = (value: string, label: string): Buffer => {
  const text = value.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(text)) key = Buffer.from(text, 'base64');
  else if (/^[A-Za-z0-9_-]{43}$/.test(text) || /^[A-Za-z0-9+/]{43}$/.test(text)) {
    key = Buffer.from(text.replaceAll('+', '-').replaceAll('/', '_'), 'base64url');
  }
  if (key?.length !== aeadKeyLength) throw new Error(`${label} must be ${acceptedFormats}.`);
  return key;
};

export const rootKeyPath = (dataDir: string): string => join(dataDir, masterKeyFileName);

export const loadRootKey = (options: LoadRootKeyOptions): RootKey => {
  // An empty variable is an error rather than "unset": it usually means a secret was not injected, and
  // falling back to a key file would silently start (or create) a vault under a different key.
  if (options.masterKey !== undefined) {
    return {
      key: parseKeyMaterial(options.masterKey, 'TOKENVAULT_MASTER_KEY'),
      source: 'env',
      created: false,
    };
  }
  const path = rootKeyPath(options.dataDir);
  const existing = readKeyFile(path, 'master key');
  if (existing) return { key: existing, source: 'file', path, created: false };
  if (!options.create) {
    throw new Error(
      `No master key: set TOKENVAULT_MASTER_KEY, or start \`tokenvault serve\` once to create ${path}.`,
    );
  }
  ensurePrivateDirectory(options.dataDir);
  const key = randomBytes(aeadKeyLength);
  try {
    // On disk (file and directory entry) before the keyring it wraps is committed: a crash right after
    // that commit must not leave a store whose key is lost. Never half-written, never over a key.
    createFileDurably(path, `${key.toString('base64')}\n`, { mode: 0o600 });
  } catch (error) {
    // Another process created it between our read and write: use theirs, never overwrite a key.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = readKeyFile(path, 'master key');
      if (raced) return { key: raced, source: 'file', path, created: false };
    }
    throw error;
  }
  return { key, source: 'file', path, created: true };
};

/**
 * Reads a file that holds a secret, refusing one that group or others may read: such a key has
 * probably been exposed already. Returns `undefined` when the file does not exist.
 */
export const readPrivateFile = (path: string, what: string): string | undefined => {
  let mode: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new Error(`The ${what} path ${path} is not a regular file.`);
    mode = stat.mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  // Windows has no POSIX permission bits to check.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new Error(
      `The ${what} file ${path} can be read by other users (mode ${(mode & 0o777).toString(8)}); ` +
        `run \`chmod 600 ${path}\` and start again.`,
    );
  }
  return readFileSync(path, 'utf8');
};

/** A 32-byte key from a private file (base64, base64url or hex, trailing newline allowed). */
export const readKeyFile = (path: string, what = 'key'): Buffer | undefined => {
  const text = readPrivateFile(path, what);
  return text === undefined ? undefined : parseKeyMaterial(text, `The ${what} file ${path}`);
};

/** Deletes the key file after a switch to webhook mode; returns whether there was one. */
export const removeRootKeyFile = (dataDir: string): boolean => {
  const path = rootKeyPath(dataDir);
  try {
    statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  rmSync(path);
  return true;
};
