import type { Compilable } from 'kysely';

/**
 * Queries on a hot path (an agent's retrieval runs a few per request) are built with Kysely once, at
 * first use, and from then on run by the driver directly: no query building, no compiling, no
 * connection hand-off per call. Parameters are named placeholders, bound by position on every call.
 *
 *   const byHash = store.prepare((p: Params<{ hash: string }>) =>
 *     db.selectFrom('agent_keys').selectAll().where('key_hash', '=', p('hash')));
 *   const rows = await byHash.all({ hash });
 *
 * On SQLite they run on a read-only connection of their own, so they see committed data only, never
 * a transaction still open on the writing connection (WAL gives each read a consistent snapshot). On
 * PostgreSQL they are named prepared statements, planned once per pooled connection.
 */
export type Params<P extends Record<string, unknown>> = <K extends keyof P & string>(name: K) => P[K];

export interface PreparedQuery<P extends Record<string, unknown>, R> {
  all(params: P): Promise<R[]>;
  first(params: P): Promise<R | undefined>;
}

/** Runs one compiled SQL text with positional parameters (the dialect's own driver). */
export type SqlRunner = (sql: string) => (parameters: unknown[]) => Promise<unknown[]>;

/** No value the vault binds starts with a NUL: these cannot be mistaken for a real parameter. */
const placeholderPrefix = '\u0000tokenvault-param:';

export interface CompiledWithPlaceholders<P> {
  sql: string;
  /** The positional parameters of one call. */
  bind(params: P): unknown[];
}

export const compileWithPlaceholders = <P extends Record<string, unknown>>(
  build: (p: Params<P>) => Compilable<unknown>,
): CompiledWithPlaceholders<P> => {
  const compiled = build((name) => `${placeholderPrefix}${name}` as never).compile();
  const constants = [...compiled.parameters];
  const slots = constants.map((value) =>
    typeof value === 'string' && value.startsWith(placeholderPrefix)
      ? (value.slice(placeholderPrefix.length) as keyof P & string)
      : undefined,
  );
  return {
    sql: compiled.sql,
    bind(params) {
      return slots.map((name, index) => {
        if (name === undefined) return constants[index];
        const value = params[name];
        if (value === undefined) throw new TypeError(`prepared query: no value for parameter "${name}"`);
        return value;
      });
    },
  };
};

/** Builds `store.prepare` from the dialect's runner. The SQL is compiled and prepared on first use. */
export const createPrepare =
  (runner: SqlRunner) =>
  <P extends Record<string, unknown>, R>(build: (p: Params<P>) => Compilable<R>): PreparedQuery<P, R> => {
    let prepared: {
      compiled: CompiledWithPlaceholders<P>;
      run: (parameters: unknown[]) => Promise<unknown[]>;
    };
    const ready = () => {
      if (!prepared) {
        const compiled = compileWithPlaceholders<P>(build);
        prepared = { compiled, run: runner(compiled.sql) };
      }
      return prepared;
    };
    const all = (params: P) => {
      const { compiled, run } = ready();
      return run(compiled.bind(params)) as Promise<R[]>;
    };
    return {
      all,
      first: async (params) => (await all(params))[0],
    };
  };
