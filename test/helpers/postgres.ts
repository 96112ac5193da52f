import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, it } from 'vitest';

/**
 * Admin URL of a PostgreSQL server for integration tests: a role allowed to CREATE DATABASE,
 * connected to a maintenance database. `.ci/run` starts a throwaway server and sets it.
 */
export const postgresUrl = process.env.TOKENVAULT_TEST_DATABASE_URL || undefined;

/** Set by CI so that a missing server is a failure rather than a quietly skipped suite. */
const postgresRequired = process.env.TOKENVAULT_REQUIRE_POSTGRES === '1';

const missingUrlMessage =
  'TOKENVAULT_TEST_DATABASE_URL is not set but TOKENVAULT_REQUIRE_POSTGRES=1: the PostgreSQL suite cannot run. ' +
  'Set it to an admin URL such as postgres://user:password@127.0.0.1:5432/postgres (see .ci/run).';

const describeMissingPostgres = (name: string, _factory: () => void): void => {
  describe(name, () => {
    it('needs TOKENVAULT_TEST_DATABASE_URL', () => {
      throw new Error(missingUrlMessage);
    });
  });
};

/**
 * `describe` for suites that need PostgreSQL: runs when a server is configured, fails when CI requires
 * one and it is missing, and is skipped on a developer machine without one.
 */
export const describePostgres: (name: string, factory: () => void) => void = postgresUrl
  ? describe
  : postgresRequired
    ? describeMissingPostgres
    : describe.skip;

export interface TestDatabase {
  /** URL of the new, empty database, with the admin URL's credentials. */
  readonly url: string;
  /** Drops the database, ending any connection still open to it. Safe to call twice. */
  drop(): Promise<void>;
}

const withAdminClient = async <T>(run: (client: pg.Client) => Promise<T>): Promise<T> => {
  if (!postgresUrl) throw new Error(missingUrlMessage);
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
};

/** Creates a fresh, uniquely named database (`tv_test_<random>`) so tests never share state. */
export const createTestDatabase = async (): Promise<TestDatabase> => {
  // Hex only, so the name needs no escaping beyond the quotes.
  const name = `tv_test_${randomBytes(8).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(postgresUrl!);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      // FORCE (PostgreSQL 13+) terminates connections a test left open, e.g. after a failed close. It
      // refuses (42501) when a backend it may not signal is on the database, such as an autovacuum
      // worker for a role without pg_signal_backend (CI's): a plain DROP cancels autovacuum itself and
      // waits a few seconds for other backends, so fall back to it, a few times.
      await withAdminClient(async (client) => {
        try {
          await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        } catch (error) {
          if ((error as { code?: string }).code !== '42501') throw error;
          for (let attempt = 1; ; attempt += 1) {
            try {
              await client.query(`DROP DATABASE IF EXISTS "${name}"`);
              return;
            } catch (retryError) {
              if (attempt >= 5) throw retryError;
              await new Promise((resolve) => setTimeout(resolve, 500));
            }
          }
        }
      });
    },
  };
};
