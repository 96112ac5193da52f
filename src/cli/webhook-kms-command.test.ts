import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWebhookKeyProvider } from '../crypto/webhook-key-provider.js';
import { systemClock } from '../lib/clock.js';
import { defaultKeyId, registerWebhookKmsCommand, resolveKmsServeOptions } from './webhook-kms-command.js';

const key = randomBytes(32);
const secret = randomBytes(32).toString('hex');
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tv-kms-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const flags = { host: '127.0.0.1', port: '0' };

describe('webhook-kms serve options', () => {
  it('takes the key and secret from the environment', () => {
    const options = resolveKmsServeOptions(flags, {
      TOKENVAULT_KMS_KEY: key.toString('base64'),
      TOKENVAULT_KMS_SECRET: secret,
    });
    expect(options).toMatchObject({ activeKeyId: defaultKeyId(key), secret, host: '127.0.0.1', port: 0 });
    expect(options.keys).toEqual([{ id: defaultKeyId(key), key }]);
    expect(defaultKeyId(key)).toMatch(/^kms-[0-9a-f]{12}$/);
  });

  it('takes them from 0600 files, and refuses readable ones', () => {
    const keyFile = join(dir, 'kms.key');
    const secretFile = join(dir, 'kms.secret');
    writeFileSync(keyFile, `${key.toString('hex')}\n`, { mode: 0o600 });
    writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
    const options = resolveKmsServeOptions({ ...flags, keyFile, secretFile, keyId: 'kms-a' }, {});
    expect(options).toMatchObject({ activeKeyId: 'kms-a', secret, keys: [{ id: 'kms-a', key }] });

    if (process.platform !== 'win32') {
      writeFileSync(join(dir, 'open.key'), key.toString('hex'), { mode: 0o644 });
      expect(() =>
        resolveKmsServeOptions({ ...flags, keyFile: join(dir, 'open.key'), secretFile }, {}),
      ).toThrow(/chmod 600/);
    }
  });

  it('keeps retired keys for unwrap under ids derived from them', () => {
    const old = randomBytes(32);
    const oldFile = join(dir, 'old.key');
    writeFileSync(oldFile, old.toString('base64'), { mode: 0o600 });
    const env = { TOKENVAULT_KMS_KEY: key.toString('hex'), TOKENVAULT_KMS_SECRET: secret };
    const options = resolveKmsServeOptions({ ...flags, retiredKeyFile: [oldFile] }, env);
    expect(options.keys).toEqual([
      { id: defaultKeyId(key), key },
      { id: defaultKeyId(old), key: old },
    ]);
    expect(options.activeKeyId).toBe(defaultKeyId(key));
    const sameFile = join(dir, 'same.key');
    writeFileSync(sameFile, key.toString('base64'), { mode: 0o600 });
    expect(() => resolveKmsServeOptions({ ...flags, retiredKeyFile: [sameFile] }, env)).toThrow(/repeats/);
  });

  it.each([
    ['no key', {}, /TOKENVAULT_KMS_KEY/],
    [
      'a bad key',
      { TOKENVAULT_KMS_KEY: 'nope', TOKENVAULT_KMS_SECRET: secret },
      /TOKENVAULT_KMS_KEY must be/,
    ],
    ['no secret', { TOKENVAULT_KMS_KEY: key.toString('hex') }, /TOKENVAULT_KMS_SECRET/],
    [
      'a short secret',
      { TOKENVAULT_KMS_KEY: key.toString('hex'), TOKENVAULT_KMS_SECRET: 'short' },
      /32 characters/,
    ],
  ])('refuses %s with a message that names what to set', (_, env, message) => {
    expect(() => resolveKmsServeOptions(flags, env)).toThrow(message);
  });

  it('refuses a bad port or key id, and a key given twice', () => {
    const env = { TOKENVAULT_KMS_KEY: key.toString('hex'), TOKENVAULT_KMS_SECRET: secret };
    expect(() => resolveKmsServeOptions({ ...flags, port: '70000' }, env)).toThrow(/--port/);
    expect(() => resolveKmsServeOptions({ ...flags, keyId: 'a b' }, env)).toThrow(/--key-id/);
    expect(() => resolveKmsServeOptions({ ...flags, keyFile: join(dir, 'x') }, env)).toThrow(/not both/);
  });
});

describe('webhook-kms serve', () => {
  it('prints its URL as JSON, serves the vault, and stops on the shutdown signal', async () => {
    const lines: string[] = [];
    const logs: string[] = [];
    let stop = () => {};
    const program = new Command().exitOverride();
    registerWebhookKmsCommand(program, {
      env: { TOKENVAULT_KMS_KEY: key.toString('base64url'), TOKENVAULT_KMS_SECRET: secret },
      stdout: (line) => lines.push(line),
      stderr: (line) => logs.push(line),
      shutdownSignal: () => new Promise<void>((resolve) => (stop = resolve)),
    });
    const running = program.parseAsync(['webhook-kms', 'serve', '--port', '0', '--json'], { from: 'user' });
    await expect.poll(() => lines.length).toBe(1);
    const { url, key_id } = JSON.parse(lines[0]!) as { url: string; key_id: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(key_id).toBe(defaultKeyId(key));

    const keys = createWebhookKeyProvider({ url, secret, clock: systemClock });
    await keys.check();
    expect(logs.join('\n')).not.toContain(key.toString('base64'));

    stop();
    await running;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
