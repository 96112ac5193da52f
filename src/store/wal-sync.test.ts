import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createWalSync } from './wal-sync.js';

describe('WAL sync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenvault-walsync-'));
  afterEach(() => rmSync(join(dir, 'x-wal'), { force: true }));

  it('fsyncs once for a lone caller', async () => {
    writeFileSync(join(dir, 'x-wal'), 'frames');
    const wal = createWalSync(join(dir, 'x-wal'));
    await wal.durable();
    expect(wal.count()).toBe(1);
    // A caller that comes after the last fsync ended needs one of its own, and gets exactly one.
    await wal.durable();
    expect(wal.count()).toBe(2);
    await wal.close();
  });

  it('lets callers that arrive during an fsync share the next one (group commit)', async () => {
    writeFileSync(join(dir, 'x-wal'), 'frames');
    const wal = createWalSync(join(dir, 'x-wal'));
    await Promise.all(Array.from({ length: 50 }, () => wal.durable()));
    // The first caller's fsync, then one more for everyone who came while it ran.
    expect(wal.count()).toBeGreaterThanOrEqual(1);
    expect(wal.count()).toBeLessThanOrEqual(2);
    await wal.close();
  });

  it('has nothing to do before the WAL exists, and syncs once it does', async () => {
    const wal = createWalSync(join(dir, 'x-wal'));
    await wal.durable();
    expect(wal.count()).toBe(0);
    writeFileSync(join(dir, 'x-wal'), 'frames');
    await wal.durable();
    expect(wal.count()).toBe(1);
    await wal.close();
  });
});
