import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore, sqliteFileName } from '../../src/store/database.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Issue 10 finding 8: the database files are the vault's user's alone. */
describe.skipIf(process.platform === 'win32')('data dir and database file modes', () => {
  let dir: TempDataDir | undefined;
  afterEach(async () => {
    await dir?.cleanup();
    dir = undefined;
  });

  it('creates the database and its WAL 0600 whatever the umask', async () => {
    dir = await createTempDataDir();
    const umask = process.umask(0o022);
    try {
      const store = await openStore({ dataDir: dir.dir });
      await store.db.selectFrom('audit_events').select('seq').execute();
      const db = join(dir.dir, sqliteFileName);
      expect(modeOf(db).toString(8)).toBe('600');
      expect(modeOf(`${db}-wal`).toString(8)).toBe('600');
      await store.close();
    } finally {
      process.umask(umask);
    }
  });

  it('narrows a data dir and database file that others can read, and warns', async () => {
    dir = await createTempDataDir();
    const db = join(dir.dir, sqliteFileName);
    writeFileSync(db, '');
    chmodSync(db, 0o644);
    chmodSync(dir.dir, 0o755);
    const warnings: string[] = [];
    const store = await openStore({ dataDir: dir.dir, onWarning: (message) => warnings.push(message) });
    await store.close();
    expect(modeOf(dir.dir).toString(8)).toBe('700');
    expect(modeOf(db).toString(8)).toBe('600');
    expect(warnings.join('\n')).toMatch(/was open to group or others \(mode 755\); it is now 700/);
  });
});
