import { isVaultError, VaultError } from '../errors/vault-error.js';
import type { AuditEventInput, AuditRecorder } from './audit-types.js';

/** Who asks, from where: what every audit event of a request carries besides its own facts. */
export interface AuditContext {
  actor: AuditEventInput['actor'];
  client?: { ip: string | null; userAgent: string | null } | undefined;
  requestId?: string | null | undefined;
}

export type RefusalEvent = Omit<AuditEventInput, 'decision' | 'reason'>;

export const auditEvent = (
  ctx: AuditContext,
  event: Omit<AuditEventInput, 'actor' | 'client' | 'requestId'>,
): AuditEventInput => ({
  ...event,
  actor: ctx.actor,
  client: ctx.client,
  requestId: ctx.requestId ?? null,
});

/**
 * Appends an event and waits for it to be durable. Any failure becomes `audit_unavailable`: when the
 * record cannot be written the request fails closed.
 */
export const recordDurably = async (audit: Pick<AuditRecorder, 'record'>, event: AuditEventInput) => {
  try {
    await audit.record(event);
  } catch (error) {
    if (isVaultError(error) && error.code === 'audit_unavailable') throw error;
    throw new VaultError('audit_unavailable', undefined, { cause: error });
  }
};

/**
 * Runs a change whose success the service records inside its own transaction. When the change is
 * refused (any VaultError but audit_unavailable: not found, exists, invalid, key provider down, …) the
 * refusal is recorded as a deny event, with the error's code as the reason, before the error goes on.
 */
export const auditedChange = async <T>(
  audit: Pick<AuditRecorder, 'record'>,
  refusal: RefusalEvent | (() => RefusalEvent),
  run: () => Promise<T>,
): Promise<T> => {
  try {
    return await run();
  } catch (error) {
    if (!isVaultError(error) || error.code === 'audit_unavailable') throw error;
    const event = typeof refusal === 'function' ? refusal() : refusal;
    await recordDurably(audit, { ...event, decision: 'deny', reason: error.code });
    throw error;
  }
};
