import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFileDurably, ensurePrivateDirectory, writeFileDurably } from './durable-file.js';

describe('durable files', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tokenvault-durable-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a file whole, with the mode asked, leaving no temporary file behind', () => {
    const dir = tempDir();
    const path = join(dir, 'admin-token');
    writeFileSync(path, 'old\n', { mode: 0o644 });
    writeFileDurably(path, 'new\n', { mode: 0o600 });
    expect(readFileSync(path, 'utf8')).toBe('new\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['admin-token']);
  });

  it('creates a file but never over an existing one', () => {
    const dir = tempDir();
    const path = join(dir, 'master.key');
    createFileDurably(path, 'first\n', { mode: 0o600 });
    expect(() => createFileDurably(path, 'second\n', { mode: 0o600 })).toThrow(
      expect.objectContaining({ code: 'EEXIST' }),
    );
    expect(readFileSync(path, 'utf8')).toBe('first\n');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['master.key']);
  });

  it('creates missing directories with mode 0700', () => {
    const dir = join(tempDir(), 'a', 'b');
    ensurePrivateDirectory(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    ensurePrivateDirectory(dir);
  });
});
