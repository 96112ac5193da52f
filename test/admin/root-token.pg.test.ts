import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { createVault, type Vault } from '../../src/main.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/**
 * Replicas on PostgreSQL, where the data dir holds nothing but the root token: a fresh container's
 * missing data dir is created, and replicas starting together on an empty database make one root
 * token, not one each.
 */
describePostgres('root admin token on PostgreSQL', () => {
  const dirs: TempDataDir[] = [];
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const dir of dirs) await dir.cleanup();
    for (const database of databases) await database.drop();
  });

  const boot = (databaseUrl: string, dataDir: string, masterKey: string): Promise<Vault> =>
    createVault(loadConfig({ dataDir, databaseUrl, masterKey, port: '0', logLevel: 'silent' }, {}), {
      logDestination: { write: () => {} },
    });

  const fresh = async () => {
    const database = await createTestDatabase();
    databases.push(database);
    const dir = await createTempDataDir();
    dirs.push(dir);
    return { url: database.url, dir: dir.dir };
  };

  it('creates a missing data dir (0700) and writes the token file on the first start', async () => {
    const { url, dir } = await fresh();
    const dataDir = join(dir, 'fresh-container', 'data');
    const vault = await boot(url, dataDir, randomBytes(32).toString('base64'));
    try {
      expect(vault.adminTokenPath).toBe(join(dataDir, 'admin-token'));
      expect(statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(statSync(vault.adminTokenPath!).mode & 0o777).toBe(0o600);
      const token = readFileSync(vault.adminTokenPath!, 'utf8').trim();
      const answer = await vault.app.inject({
        url: '/v1/admin/tokens',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(answer.statusCode).toBe(200);
    } finally {
      await vault.stop();
    }
  });

  it('makes exactly one root token when two replicas start together on an empty database', async () => {
    for (let trial = 0; trial < 6; trial += 1) {
      const { url, dir } = await fresh();
      const masterKey = randomBytes(32).toString('base64');
      // Both data dirs exist, so that only the race on the database is under test.
      for (const name of ['a', 'b']) mkdirSync(join(dir, name), { mode: 0o700 });
      const replicas = await Promise.all([
        boot(url, join(dir, 'a'), masterKey),
        boot(url, join(dir, 'b'), masterKey),
      ]);
      try {
        const roots = await replicas[0]!.store.db
          .selectFrom('admin_tokens')
          .select('id')
          .where('is_root', '=', 1)
          .execute();
        expect(roots, `trial ${trial}`).toHaveLength(1);
        const written = replicas.map((vault) => vault.adminTokenPath).filter(Boolean);
        expect(written, `trial ${trial}`).toHaveLength(1);
        const token = readFileSync(written[0]!, 'utf8').trim();
        for (const vault of replicas) {
          const answer = await vault.app.inject({
            url: '/v1/admin/tokens',
            headers: { authorization: `Bearer ${token}` },
          });
          expect(answer.statusCode).toBe(200);
        }
      } finally {
        for (const vault of replicas) await vault.stop();
      }
    }
  });
});
