import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/ids.js';
import type { Store } from '../store/database.js';
import { AuditInputError, toChainedFields } from './audit-event.js';
import { appendToChain } from './audit-chain.js';
import type { ChainedFields } from './audit-hash.js';
import type { AuditChainKey } from './audit-keys.js';
import type { AuditEventInput, AuditRecorder } from './audit-types.js';
import { startSqliteAuditAppender } from './sqlite-audit-appender.js';

export interface AuditLogger {
  error(object: Record<string, unknown>, message: string): void;
  /** For a token-shaped `details` value that was redacted (see audit-event.ts); `error` when absent. */
  warn?(object: Record<string, unknown>, message: string): void;
}

export interface AuditWriterDeps {
  /**
   * Where events go. PostgreSQL: a Kysely transaction (its commits are durable). SQLite: a thread of
   * the writer's own, which answers once the commit is fsynced (sqlite-audit-worker.ts).
   */
  store: Pick<Store, 'db' | 'dialect' | 'location'>;
  clock: Clock;
  logger: AuditLogger;
  /** Most events one group commit carries. */
  maxBatch?: number;
  /**
   * The audit chain key (audit-keys.ts), when already loaded; otherwise `useChainKey` once it is.
   * Without one, links are plain SHA-256 (a store that has not switched, or a test).
   */
  chainKey?: AuditChainKey | undefined;
  /** Told of every group commit made durable, with its number of events. For metrics. */
  onCommit?: (events: number) => void;
}

export interface AuditWriter extends AuditRecorder {
  /**
   * Links every event recorded from now on with the audit chain key. Called once at start, after the
   * key providers are up and before any service records (the writer starts before them).
   */
  useChainKey(key: AuditChainKey): void;
  /** Stops taking events and waits until every queued one is committed (or has failed). */
  close(): Promise<void>;
}

interface Pending {
  event: ChainedFields;
  resolve(): void;
  reject(error: unknown): void;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The audit log's only writer. `record` queues events and commits everything queued by the time the
 * database is free in one transaction (group commit): under load one durable commit carries many
 * requests' events, and each caller still resumes only after its own event is committed.
 */
export const createAuditWriter = ({
  store,
  clock,
  logger,
  maxBatch = 2000,
  onCommit = () => {},
  chainKey,
}: AuditWriterDeps) => {
  const { dialect } = store;
  // On SQLite group commits run on a thread of their own (and are durable when it answers).
  const appender = dialect === 'sqlite' ? startSqliteAuditAppender(store.location) : undefined;
  let hmacKey = chainKey?.hmacKey;
  if (hmacKey) appender?.useKey(hmacKey);
  const queue: Pending[] = [];
  let draining: Promise<void> | undefined;
  let closed = false;

  const unavailable = (cause: unknown) =>
    isVaultError(cause) && cause.code === 'audit_unavailable'
      ? cause
      : new VaultError('audit_unavailable', undefined, { cause });

  /** Validates and stamps an event now, so a bad event fails its own caller and no one else's. */
  const prepare = (input: AuditEventInput): ChainedFields => {
    try {
      return toChainedFields(input, { id: newId(), time: clock.now().toISOString() }, (key) =>
        (logger.warn ?? logger.error).call(
          logger,
          { action: input.action, key },
          'audit event detail looked like a token and was redacted',
        ),
      );
    } catch (error) {
      if (error instanceof AuditInputError) {
        logger.error({ err: error, action: input.action }, 'audit event refused');
      }
      throw unavailable(error);
    }
  };

  const commit = async (batch: Pending[]) => {
    const events = batch.map((p) => p.event);
    try {
      // Only a commit on disk counts: an event is durable before any caller answers its request.
      if (appender) await appender.append(events);
      // PostgreSQL: one statement, committed on its own (no transaction holds the chain's head).
      else await appendToChain(store.db, dialect, events, hmacKey);
    } catch (error) {
      logger.error({ err: error, events: batch.length }, 'audit events could not be written; failing closed');
      const failure = unavailable(error);
      for (const p of batch) p.reject(failure);
      return;
    }
    onCommit(batch.length);
    for (const p of batch) p.resolve();
  };

  // SQLite's writer thread queues the next batch while it commits the last one, in order; on
  // PostgreSQL a replica's batches go one after the other (each links after the head the last left).
  const inFlight = new Set<Promise<void>>();
  const drain = async () => {
    for (;;) {
      // One event-loop turn lets requests that arrived meanwhile join this commit.
      await nextTurn();
      if (queue.length === 0) {
        draining = undefined;
        return;
      }
      const committing = commit(queue.splice(0, maxBatch));
      if (!appender) {
        await committing;
        continue;
      }
      inFlight.add(committing);
      void committing.finally(() => inFlight.delete(committing));
    }
  };

  const writer: AuditWriter = {
    useChainKey(key) {
      hmacKey = key.hmacKey;
      appender?.useKey(key.hmacKey);
    },

    record(input) {
      if (closed) return Promise.reject(unavailable(new Error('the audit writer is closed')));
      let event: ChainedFields;
      try {
        event = prepare(input);
      } catch (error) {
        return Promise.reject(error);
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ event, resolve, reject });
        draining ??= drain();
      });
    },

    async recordInTransaction(trx, input) {
      await writer.recordManyInTransaction(trx, [input]);
    },

    async recordManyInTransaction(trx, inputs) {
      const events = inputs.map(prepare);
      try {
        await appendToChain(trx, dialect, events, hmacKey);
      } catch (error) {
        logger.error(
          { err: error, events: events.length },
          'audit events could not be written; failing closed',
        );
        throw unavailable(error);
      }
    },

    async close() {
      closed = true;
      while (draining) await draining;
      await Promise.all(inFlight);
      await appender?.close();
    },
  };
  return writer;
};
