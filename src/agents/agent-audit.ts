import type { AuditEventInput, AuditRecorder } from '../audit/audit-types.js';
import { isVaultError, VaultError } from '../errors/vault-error.js';

/** Who asks for a change, and from where: the audit record's actor and client. */
export type ChangeContext = Pick<AuditEventInput, 'actor' | 'client' | 'requestId'>;

/**
 * Runs an admin change whose success the service records in its own transaction; when the change is
 * refused (a VaultError: not found, exists, invalid, …) the refusal is recorded as a deny event before
 * the error goes on, since the HTTP audit hook leaves `recordedBy: 'service'` routes to the service.
 * If that record cannot be written, the request fails with `audit_unavailable` (fail closed).
 */
export const auditedChange = async <T>(
  audit: Pick<AuditRecorder, 'record'>,
  refusal: Omit<AuditEventInput, 'decision' | 'reason'>,
  run: () => Promise<T>,
): Promise<T> => {
  try {
    return await run();
  } catch (error) {
    if (!isVaultError(error) || error.code === 'audit_unavailable') throw error;
    try {
      await audit.record({ ...refusal, decision: 'deny', reason: error.code });
    } catch (auditError) {
      if (isVaultError(auditError) && auditError.code === 'audit_unavailable') throw auditError;
      throw new VaultError('audit_unavailable', undefined, { cause: auditError });
    }
    throw error;
  }
};
