import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GrantView } from '../../src/http/schemas/response-types.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../helpers/postgres.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, grant, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { bulkDocument, bulkGrants, bulkImportContract, startBulkVault } from './grant-import-bulk.js';

const retrievalBudgetMs = 500;

describePostgres('a large grant import on PostgreSQL', () => {
  describe('on one replica', () => {
    bulkImportContract(
      async () => {
        const database = await createTestDatabase();
        return { databaseUrl: database.url, cleanup: () => database.drop() };
      },
      { healthzMs: 250 },
    );
  });

  /**
   * The import's batches hold the audit chain's head (and the access generation's row) for a few
   * milliseconds each: an agent retrieving through the other replica, whose every answer appends to
   * the same chain, never waits behind the import.
   */
  describe('with a second replica serving agents', () => {
    let database: TestDatabase;
    let importer: TestVault;
    let server: TestVault;
    let dir: TempDataDir;
    let reader: TestAgent;

    beforeAll(async () => {
      database = await createTestDatabase();
      const masterKey = randomBytes(32).toString('base64');
      ({ t: importer } = await startBulkVault({ databaseUrl: database.url, settings: { masterKey } }));
      dir = await createTempDataDir();
      // Only the first start writes the root token; the second replica's admin uses the same one.
      writeFileSync(join(dir.dir, 'admin-token'), importer.rootToken, { mode: 0o600 });
      server = await startTestVault({ dataDir: dir.dir, databaseUrl: database.url, settings: { masterKey } });
      reader = await addAgent(importer, 'reader');
      await grant(importer, { agent: 'reader', credential: 'bulk-cred-0', ttl: '1h', reveal: true });
      expect((await retrieve(server, reader, { agent: 'reader', service: 'bulk-cred-0' })).status).toBe(200);
    }, 120_000);

    afterAll(async () => {
      await server?.stop();
      await importer?.stop();
      await dir?.cleanup();
      await database?.drop();
    });

    it(`answers every retrieval on the other replica within ${retrievalBudgetMs} ms during a ${bulkGrants}-grant import`, async () => {
      let done = false;
      const imported = importer
        .request('POST', '/v1/admin/grants/import', { body: { document: bulkDocument(), ttl: '7d' } })
        .finally(() => {
          done = true;
        });
      let slowest = 0;
      let answers = 0;
      while (!done) {
        const started = performance.now();
        const answer = await retrieve(server, reader, { agent: 'reader', service: 'bulk-cred-0' });
        expect(answer.status, answer.text).toBe(200);
        slowest = Math.max(slowest, performance.now() - started);
        answers += 1;
      }
      const result = await imported;
      expect(result.status, result.text).toBe(201);
      expect((result.body as { items: GrantView[] }).items).toHaveLength(bulkGrants);
      expect(answers).toBeGreaterThan(10);
      expect(slowest).toBeLessThan(retrievalBudgetMs);
      const verify = await server.request('POST', '/v1/admin/audit/verify');
      expect((verify.body as { ok: boolean }).ok).toBe(true);
    }, 120_000);
  });
});
