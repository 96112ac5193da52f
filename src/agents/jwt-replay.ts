import type { Kysely } from 'kysely';
import type { Clock } from '../lib/clock.js';
import { hashToken } from '../lib/token-hash.js';
import type { Database } from '../store/schema.js';

/**
 * Single use of JWT ids, across every replica: the `jti` (scoped to the agent) goes into `jwt_replay`,
 * whose primary key lets exactly one insert win. Rows are kept until the token could no longer be
 * accepted anyway, then swept now and then.
 */
export const createReplayGuard = ({
  db,
  clock,
  sweepEveryMs = 60_000,
}: {
  db: Kysely<Database>;
  clock: Clock;
  sweepEveryMs?: number;
}) => {
  let lastSweep = Number.NEGATIVE_INFINITY;

  const sweep = async (now: Date) => {
    lastSweep = now.getTime();
    await db.deleteFrom('jwt_replay').where('expires_at', '<', now.toISOString()).execute();
  };

  return {
    /** True the first time `jti` is seen for `scope`; false on every later attempt. */
    async consume(scope: string, jti: string, keepUntil: Date): Promise<boolean> {
      const now = clock.now();
      if (now.getTime() - lastSweep >= sweepEveryMs) await sweep(now);
      const result = await db
        .insertInto('jwt_replay')
        .values({ jti_hash: hashToken(`${scope}\n${jti}`), expires_at: keepUntil.toISOString() })
        .onConflict((oc) => oc.column('jti_hash').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
    },
  };
};

export type ReplayGuard = ReturnType<typeof createReplayGuard>;
