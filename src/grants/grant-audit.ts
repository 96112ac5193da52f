import type { AuditEventInput, AuditRecorder } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';

/** Who asked, from where: what every audit event of a request carries besides its own facts. */
export interface AuditContext {
  actor: AuditEventInput['actor'];
  client?: { ip: string | null; userAgent: string | null } | undefined;
  requestId?: string | null | undefined;
}

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
 * Appends an event and waits for it to be durable. Anything but the recorder's own audit_unavailable
 * is turned into it too: when the record cannot be written the request fails closed.
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
 * Runs a change; when it is refused with a client error, records the refusal (decision deny, the
 * error's code as the reason) before the error goes on. Successful changes record their own events
 * inside their transaction.
 */
export const auditRefusal = async <T>(
  audit: Pick<AuditRecorder, 'record'>,
  refusal: () => AuditEventInput,
  run: () => Promise<T>,
): Promise<T> => {
  try {
    return await run();
  } catch (error) {
    if (isVaultError(error) && error.status < 500) {
      await recordDurably(audit, { ...refusal(), decision: 'deny', reason: error.code });
    }
    throw error;
  }
};
