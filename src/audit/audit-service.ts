import { type ExpressionBuilder, type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import { VaultError } from '../errors/vault-error.js';
import type { Dialect } from '../store/database.js';
import type { Database } from '../store/schema.js';
import { csvHeader, csvLine, type ExportFormat, jsonLine, toAuditEvent } from './audit-format.js';
import { subjectKeys } from './audit-subjects.js';
import type { AuditEvent, Decision } from './audit-types.js';
import type { AuditChainKey } from './audit-keys.js';
import { verifyChain, type VerifyResult } from './audit-verify.js';
import { exportOffThread, verifyOffThread } from './sqlite-audit-reader.js';

export interface AuditFilters {
  namespace?: string | undefined;
  /** An agent id or name: events it acted in, events about it, and events whose details name it. */
  agent?: string | undefined;
  /** A credential name or id: events about it, and events whose details name it. */
  credential?: string | undefined;
  /** An exact action (`credential.create`), or every action under a prefix (`credential.*`). */
  action?: string | undefined;
  decision?: Decision | undefined;
  /** ISO-8601 instants; both ends included. */
  since?: string | undefined;
  until?: string | undefined;
}

export interface ListOptions extends AuditFilters {
  limit: number;
  /** Keyset cursor: the `seq` of the last event of the previous page. */
  afterSeq?: number | undefined;
  /** `asc` (oldest first, the default) or `desc` (newest first; the cursor then goes backwards). */
  order?: 'asc' | 'desc' | undefined;
}

export interface AuditServiceDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  /**
   * The SQLite file, when verify and export should run on a thread of their own (the server's case):
   * better-sqlite3 reads synchronously, and a verify over a big log would stall every other request.
   */
  sqlitePath?: string | undefined;
  /** The audit chain key (audit-keys.ts): needed to verify a log that has switched to the keyed chain. */
  chainKey?: AuditChainKey | undefined;
}

export const maxListLimit = 1000;
const exportPageSize = 1000;

type EventQuery = SelectQueryBuilder<Database, 'audit_events', object>;
type EventExpressions = ExpressionBuilder<Database, 'audit_events'>;

const parseInstant = (name: string, value: string | undefined): string | undefined => {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(time)) {
    throw new VaultError(
      'invalid_request',
      `${name} must be an ISO-8601 date or date-time such as 2026-06-01T12:00:00Z.`,
    );
  }
  return new Date(time).toISOString();
};

const actionPrefixPattern = /^[a-z][a-z0-9_.]*\.\*$/;

/** Reading, exporting and verifying the audit log. Nothing here writes to it. */
export const createAuditService = ({ db, dialect, sqlitePath, chainKey }: AuditServiceDeps) => {
  /**
   * Everything `value` may be recorded as: itself, and the id and name of the agent or credential it
   * names (by id or by name), so `--agent agent-42` finds events that record only the agent's id and
   * `--credential <id>` those filed against the credential's name.
   */
  const aliasesOf = async (
    table: 'agents' | 'credentials',
    value: string,
    namespace: string | undefined,
  ): Promise<string[]> => {
    const rows = await db
      .selectFrom(table)
      .select(['id', 'name'])
      .where((eb) => eb.or([eb('id', '=', value), eb('name', '=', value)]))
      .$if(namespace !== undefined, (qb) => qb.where('namespace', '=', namespace as string))
      .execute();
    return [...new Set([value, ...rows.flatMap((r) => [r.id, r.name])])];
  };

  /** `"key":"value"` inside the sorted-key details text: an exact substring test, no LIKE escaping. */
  const detailsName = (eb: EventExpressions, key: string, value: string) => {
    const needle = `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    return dialect === 'postgres'
      ? eb(sql<number>`strpos(${eb.ref('details')}, ${needle})`, '>', 0)
      : eb(sql<number>`instr(${eb.ref('details')}, ${needle})`, '>', 0);
  };

  /** Validates the filters once and returns a function that applies them to a query. */
  const compileFilters = async (filters: AuditFilters) => {
    const since = parseInstant('since', filters.since);
    const until = parseInstant('until', filters.until);
    const { namespace, action, decision } = filters;
    if (action !== undefined && action.includes('*') && !actionPrefixPattern.test(action)) {
      throw new VaultError('invalid_request', 'action is an exact action, or a prefix ending in `.*`.');
    }
    const agentIds =
      filters.agent === undefined ? undefined : await aliasesOf('agents', filters.agent, namespace);
    const credentialIds =
      filters.credential === undefined
        ? undefined
        : await aliasesOf('credentials', filters.credential, namespace);

    return (qb: EventQuery): EventQuery => {
      let q = qb;
      if (namespace !== undefined) q = q.where('namespace', '=', namespace);
      if (decision !== undefined) q = q.where('decision', '=', decision);
      if (since !== undefined) q = q.where('time', '>=', since);
      if (until !== undefined) q = q.where('time', '<=', until);
      if (action !== undefined) {
        if (action.endsWith('.*')) {
          const prefix = action.slice(0, -1);
          q = q.where(sql<string>`substr(action, 1, ${prefix.length})`, '=', prefix);
        } else {
          q = q.where('action', '=', action);
        }
      }
      if (agentIds) {
        q = q.where((eb) =>
          eb.or([
            eb.and([eb('actor_type', '=', 'agent'), eb('actor_id', 'in', agentIds)]),
            eb.and([eb('target_type', '=', 'agent'), eb('target_id', 'in', agentIds)]),
            ...agentIds.flatMap((v) => subjectKeys.agent.map((key) => detailsName(eb, key, v))),
          ]),
        );
      }
      if (credentialIds) {
        q = q.where((eb) =>
          eb.or([
            eb.and([eb('target_type', '=', 'credential'), eb('target_id', 'in', credentialIds)]),
            ...credentialIds.flatMap((v) => subjectKeys.credential.map((key) => detailsName(eb, key, v))),
          ]),
        );
      }
      return q;
    };
  };

  const page = (
    apply: (qb: EventQuery) => EventQuery,
    { limit, afterSeq, order = 'asc' }: Pick<ListOptions, 'limit' | 'afterSeq' | 'order'>,
  ) =>
    apply(db.selectFrom('audit_events'))
      .selectAll()
      .$if(afterSeq !== undefined, (qb) => qb.where('seq', order === 'asc' ? '>' : '<', afterSeq as number))
      .orderBy('seq', order)
      .limit(limit)
      .execute();

  return {
    /** One page of events in seq order; `nextSeq` is the cursor for the next page (null on the last). */
    async list(options: ListOptions): Promise<{ items: AuditEvent[]; nextSeq: number | null }> {
      if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > maxListLimit) {
        throw new VaultError('invalid_request', `limit must be a whole number from 1 to ${maxListLimit}.`);
      }
      const rows = await page(await compileFilters(options), options);
      const items = rows.map(toAuditEvent);
      const last = items.at(-1);
      return { items, nextSeq: items.length === options.limit && last ? last.seq : null };
    },

    /**
     * The matching events as JSONL or CSV text, oldest first, read a page at a time: memory stays flat
     * however many millions of rows there are. Filters are checked before the first chunk is produced.
     */
    async export(format: ExportFormat, filters: AuditFilters = {}): Promise<AsyncIterable<string>> {
      if (sqlitePath) return exportOffThread(sqlitePath, format, filters);
      const apply = await compileFilters(filters);
      const line = format === 'csv' ? csvLine : jsonLine;
      return (async function* () {
        if (format === 'csv') yield csvHeader;
        let afterSeq: number | undefined;
        for (;;) {
          const rows = await page(apply, { limit: exportPageSize, afterSeq });
          if (rows.length === 0) return;
          let chunk = '';
          for (const row of rows) chunk += line(row);
          yield chunk;
          if (rows.length < exportPageSize) return;
          afterSeq = Number(rows[rows.length - 1]!.seq);
        }
      })();
    },

    /** Re-hashes the whole chain; see `verifyChain`. */
    verify(options: { pageSize?: number | undefined } = {}): Promise<VerifyResult> {
      if (sqlitePath) return verifyOffThread(sqlitePath, options.pageSize, chainKey);
      return verifyChain(db, dialect, { ...options, key: chainKey });
    },
  };
};

export type AuditService = ReturnType<typeof createAuditService>;
