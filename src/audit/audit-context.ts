import type { Kysely, Transaction } from 'kysely';
import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { Database } from '../store/schema.js';
import { translateStoreError } from '../store/store-errors.js';
import type {
  AuditAction,
  AuditDetails,
  AuditEventInput,
  AuditRecorder,
  AuditTarget,
} from './audit-types.js';

/**
 * The one way the vault records an outcome. A change and its `allow` event commit in one transaction;
 * a refusal (a VaultError) is recorded as a `deny` with the error's code, durably, before it is
 * rethrown; a store that stayed busy past its bounded wait is `store_busy`; anything else is recorded
 * as `internal_error`. When the record cannot be written the caller gets `audit_unavailable` (DESIGN
 * invariant 2: fail closed).
 */

/** Who asks, from where: what every audit event of a request carries besides its own facts. */
export interface AuditContext {
  actor: AuditEventInput['actor'];
  client?: { ip: string | null; userAgent: string | null } | undefined;
  requestId?: string | null | undefined;
}

/** In-process callers without a request (tests, tooling, bootstrap) act as the system. */
export const systemContext: AuditContext = { actor: { type: 'system', id: null } };

/** What is being done, by whom, to what: the event every outcome of the operation is filed under. */
export interface AuditSpec {
  ctx: AuditContext;
  namespace: string;
  action: AuditAction;
  /** The target as the caller named it; a refusal is filed against it. */
  target?: AuditTarget | undefined;
  /**
   * Facts recorded with every outcome, allowed or refused. Read when the outcome is recorded, so a
   * request path may add to the object as it learns more (the grant it found, the scopes asked for).
   */
  details?: AuditDetails | undefined;
  /** For a refusal whose own details say more than the spec (who tried, in which namespace). */
  refusal?:
    ((error: VaultError) => Partial<Pick<AuditSpec, 'ctx' | 'namespace' | 'target' | 'details'>>) | undefined;
}

/** One event's facts beyond the spec: another target, more details, or a related action. */
export interface EventFacts {
  action?: AuditAction | undefined;
  target?: AuditTarget | undefined;
  details?: AuditDetails | undefined;
}

/**
 * Records `allow` events of the operation: none given, one event with the spec's facts; an array, one
 * event per element in a single append (a bulk revoke locks the chain once, not once per grant).
 */
export type RecordAllowed = (facts?: EventFacts | readonly EventFacts[]) => Promise<void>;

/** Where a change is made and recorded. */
export interface AuditedStore {
  db: Kysely<Database>;
  audit: Pick<AuditRecorder, 'record' | 'recordInTransaction' | 'recordManyInTransaction'>;
}

const eventOf = (
  spec: AuditSpec,
  facts: EventFacts | undefined,
  decision: 'allow' | 'deny',
  reason: string,
) => {
  const event: AuditEventInput = {
    namespace: spec.namespace,
    actor: spec.ctx.actor,
    action: facts?.action ?? spec.action,
    target: facts?.target ?? spec.target,
    decision,
    reason,
    client: spec.ctx.client,
    requestId: spec.ctx.requestId ?? null,
    details: { ...spec.details, ...facts?.details },
  };
  return event;
};

const allowed = (
  spec: AuditSpec,
  facts: EventFacts | readonly EventFacts[] | undefined,
): AuditEventInput[] =>
  Array.isArray(facts)
    ? facts.map((f: EventFacts) => eventOf(spec, f, 'allow', 'ok'))
    : [eventOf(spec, facts as EventFacts | undefined, 'allow', 'ok')];

const unavailable = (error: unknown) =>
  isVaultError(error) && error.code === 'audit_unavailable'
    ? error
    : new VaultError('audit_unavailable', undefined, { cause: error });

/** Appends durably (resolves once committed); any failure is `audit_unavailable`. */
const appendDurably = async (audit: Pick<AuditRecorder, 'record'>, events: AuditEventInput[]) => {
  try {
    for (const event of events) await audit.record(event);
  } catch (error) {
    throw unavailable(error);
  }
};

/**
 * Records the failure of an operation as a `deny` and returns what to throw: the refusal itself, or,
 * for an error that is not a VaultError, `internal_error` (its cause for the log only). An
 * `audit_unavailable` is never recorded (it is the record that failed).
 */
const recordFailure = async (
  audit: Pick<AuditRecorder, 'record'>,
  spec: AuditSpec,
  error: unknown,
): Promise<unknown> => {
  if (isVaultError(error) && error.code === 'audit_unavailable') return error;
  const refusal = isVaultError(error)
    ? error
    : (translateStoreError(error) ?? new VaultError('internal_error', undefined, { cause: error }));
  const filed = { ...spec, ...spec.refusal?.(refusal) };
  try {
    await appendDurably(audit, [eventOf(filed, undefined, 'deny', refusal.code)]);
  } catch (auditError) {
    // A store too busy for the operation is usually too busy for its refusal's record as well. Nothing
    // was changed and no secret left, so the caller gets what it can act on (try again), not the
    // audit failure that followed from the same cause.
    if (refusal.code === 'store_busy') return refusal;
    throw auditError;
  }
  return refusal;
};

/**
 * A change: `change(trx, record)` runs in one transaction and calls `record()` for its `allow`
 * event(s), which commit with it or not at all. `prepare` runs first, outside the transaction, for
 * what must not hold the database (a key provider's network call, a discovery fetch): its refusals
 * are recorded the same way.
 */
export const auditedChange = async <T, P = undefined>(
  { db, audit }: AuditedStore,
  spec: AuditSpec & { prepare?: () => Promise<P> },
  change: (trx: Transaction<Database>, record: RecordAllowed, prepared: P) => Promise<T>,
): Promise<T> => {
  try {
    const prepared = (spec.prepare ? await spec.prepare() : undefined) as P;
    return await db.transaction().execute((trx) => {
      const record: RecordAllowed = async (facts) => {
        const events = allowed(spec, facts);
        if (events.length === 1) await audit.recordInTransaction(trx, events[0] as AuditEventInput);
        else if (events.length > 1) await audit.recordManyInTransaction(trx, events);
      };
      return change(trx, record, prepared);
    });
  } catch (error) {
    throw await recordFailure(audit, spec, error);
  }
};

/**
 * A use that changes nothing in the store (an agent retrieving a credential, authenticating): `run`
 * calls `record()` for its `allow` event, which is durable (group commit) before it resolves; a
 * refusal thrown by `run` is recorded durably before it is rethrown. An operation whose success is
 * recorded elsewhere (authentication: the action that follows records it) simply never calls
 * `record`. Once an allow is recorded, a later failure is not recorded again.
 */
export const auditedUse = async <T>(
  audit: Pick<AuditRecorder, 'record'>,
  spec: AuditSpec,
  run: (record: RecordAllowed) => Promise<T>,
): Promise<T> => {
  let recorded = false;
  try {
    return await run(async (facts) => {
      await appendDurably(audit, allowed(spec, facts));
      recorded = true;
    });
  } catch (error) {
    if (recorded) throw error;
    throw await recordFailure(audit, spec, error);
  }
};
