import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadRootKey, masterKeyFileName, parseKeyMaterial, removeRootKeyFile } from './master-key.js';

let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'tv-master-key-'));
});
afterEach(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

const posix = process.platform !== 'win32';

describe('parseKeyMaterial', () => {
  const key = randomBytes(32);

  it.each([
    ['base64', key.toString('base64')],
    ['base64 without padding', key.toString('base64').replace(/=$/, '')],
    ['base64url', key.toString('base64url')],
    ['hex', key.toString('hex')],
    ['upper-case hex', key.toString('hex').toUpperCase()],
    ['with a trailing newline', `${key.toString('base64')}\n`],
  ])('accepts %s', (_, text) => {
    expect(parseKeyMaterial(text, 'X')).toEqual(key);
  });

  it.each([
    ['empty', ''],
    ['too short', randomBytes(16).toString('base64')],
    ['too long', randomBytes(48).toString('base64')],
    ['hex of 31 bytes', randomBytes(31).toString('hex')],
    ['a passphrase', 'correct horse battery staple correct horse!!'],
    ['mixed alphabets', `${key.toString('base64url').slice(0, 41)}+_`],
  ])('rejects %s, naming the variable and the formats but not the value', (_, text) => {
    let message = '';
    try {
      parseKeyMaterial(text, 'TOKENVAULT_MASTER_KEY');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('TOKENVAULT_MASTER_KEY');
    expect(message).toMatch(/base64.*base64url.*hex/);
    if (text) expect(message).not.toContain(text.trim());
  });
});

describe('loadRootKey', () => {
  it('prefers TOKENVAULT_MASTER_KEY and creates no file', () => {
    const key = randomBytes(32);
    const root = loadRootKey({ masterKey: key.toString('hex'), dataDir, create: true });
    expect(root).toEqual({ key, source: 'env', created: false });
    expect(() => statSync(join(dataDir, masterKeyFileName))).toThrow();
  });

  it('treats an empty TOKENVAULT_MASTER_KEY as an error, not as unset', () => {
    expect(() => loadRootKey({ masterKey: '', dataDir, create: true })).toThrow(/TOKENVAULT_MASTER_KEY/);
  });

  it('creates a 0600 key file on first start and reads the same key afterwards', () => {
    const nested = join(dataDir, 'nested');
    const first = loadRootKey({ dataDir: nested, create: true });
    const path = join(nested, masterKeyFileName);
    expect(first).toMatchObject({ source: 'file', path, created: true });
    expect(first.key.length).toBe(32);
    expect(readFileSync(path, 'utf8')).toBe(`${first.key.toString('base64')}\n`);
    if (posix) expect(statSync(path).mode & 0o777).toBe(0o600);

    const second = loadRootKey({ dataDir: nested, create: true });
    expect(second).toEqual({ key: first.key, source: 'file', path, created: false });
  });

  it('does not create a key when create is false', () => {
    expect(() => loadRootKey({ dataDir, create: false })).toThrow(/No master key.*TOKENVAULT_MASTER_KEY/);
    expect(() => statSync(join(dataDir, masterKeyFileName))).toThrow();
  });

  it.runIf(posix)('refuses a key file that group or others can read, and says to chmod 600', () => {
    loadRootKey({ dataDir, create: true });
    const path = join(dataDir, masterKeyFileName);
    chmodSync(path, 0o640);
    expect(() => loadRootKey({ dataDir, create: false })).toThrow(`chmod 600 ${path}`);
    chmodSync(path, 0o604);
    expect(() => loadRootKey({ dataDir, create: false })).toThrow(/chmod 600/);
    chmodSync(path, 0o600);
    expect(loadRootKey({ dataDir, create: false }).created).toBe(false);
  });

  it('refuses a key file with bad contents without echoing them', () => {
    const path = join(dataDir, masterKeyFileName);
    writeFileSync(path, 'not-a-key\n', { mode: 0o600 });
    let message = '';
    try {
      loadRootKey({ dataDir, create: true });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(path);
    expect(message).not.toContain('not-a-key');
  });

  it('removeRootKeyFile deletes the file once', () => {
    loadRootKey({ dataDir, create: true });
    expect(removeRootKeyFile(dataDir)).toBe(true);
    expect(removeRootKeyFile(dataDir)).toBe(false);
    expect(() => statSync(join(dataDir, masterKeyFileName))).toThrow();
  });
});
