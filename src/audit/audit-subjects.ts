import type { AuditDetails } from './audit-types.js';

/**
 * The canonical `details` keys of an event about an agent or a credential. Every event that concerns
 * one carries both its id and its name under these keys, whoever records it, so that `audit list
 * --agent` / `--credential` find it by either, even after the agent or credential is deleted (its
 * name can then no longer be resolved to its id). A reference that did not resolve (a refusal: no
 * such agent) is kept as the caller wrote it under the `_ref` key.
 */
export const subjectKeys = {
  agent: ['agent_id', 'agent_name', 'agent_ref'],
  credential: ['credential_id', 'credential_name', 'credential_ref'],
} as const;

export const agentSubject = (agent: { id: string; name: string }): AuditDetails => ({
  agent_id: agent.id,
  agent_name: agent.name,
});

export const credentialSubject = (credential: { id: string; name: string }): AuditDetails => ({
  credential_id: credential.id,
  credential_name: credential.name,
});
