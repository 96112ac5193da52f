import { describe } from 'vitest';
import { createTestDatabase, describePostgres } from './postgres.js';

/**
 * The title of the block that runs a contract on PostgreSQL. `scripts/check-test-report.mjs` reads it
 * (with `*.pg.test.ts` file names) to find the PostgreSQL tests, so that CI fails a run where they
 * were skipped: change both together.
 */
export const onPostgresTitle = 'on PostgreSQL';

/** A fresh, empty database for one vault: its URL on PostgreSQL, nothing on SQLite (the data dir). */
export interface FreshDatabase {
  readonly databaseUrl?: string;
  cleanup(): Promise<void>;
}

/** The store a contract is running on. */
export interface EveryStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Call once per vault (usually in `beforeAll`/`beforeEach`); each call is a new database. */
  fresh(): Promise<FreshDatabase>;
}

const sqlite: EveryStore = {
  dialect: 'sqlite',
  // The vault's own temporary data dir holds the SQLite file, and the vault removes it.
  fresh: async () => ({ cleanup: async () => {} }),
};

const postgres: EveryStore = {
  dialect: 'postgres',
  async fresh() {
    const database = await createTestDatabase();
    return { databaseUrl: database.url, cleanup: () => database.drop() };
  },
};

/**
 * Runs `contract` once on SQLite and once on PostgreSQL, under `name`. The PostgreSQL half follows
 * `describePostgres`: it runs when `TOKENVAULT_TEST_DATABASE_URL` is set, fails when
 * `TOKENVAULT_REQUIRE_POSTGRES=1` and it is not, and is skipped otherwise.
 */
export const describeOnEveryStore = (name: string, contract: (store: EveryStore) => void): void => {
  describe(name, () => {
    describe('on SQLite', () => contract(sqlite));
    describePostgres(onPostgresTitle, () => contract(postgres));
  });
};
