import type { AllowedDecision } from '../../src/access/access-types.js';
import { decide } from '../../src/access/decide.js';

/**
 * The decision an agent holding a live reveal grant on the credential gets, made by the real
 * `decide()`: what a test needs to read a secret the way the agent request path does.
 */
export const allowedUseOf = (namespace: string, credentialId: string): AllowedDecision => {
  const now = new Date();
  const decision = decide({
    namespace,
    agent: {
      agentId: 'test-agent',
      agentName: 'test-agent',
      namespace,
      method: 'api_key',
      credentialRef: null,
    },
    service: 'test',
    credential: { id: credentialId, status: 'active', expiresAt: null },
    grants: [
      {
        id: 'test-grant',
        namespace,
        agentId: 'test-agent',
        credentialId,
        scopes: [],
        reveal: true,
        expiresAt: null,
        createdAt: now.toISOString(),
        createdBy: 'system:-',
        revokedAt: null,
        revokedReason: null,
      },
    ],
    requestedScopes: [],
    channel: 'reveal',
    client: { ip: null, userAgent: null },
    now,
    attributes: {},
    policies: [],
  });
  if (decision.outcome !== 'allow') throw new Error(`expected an allow, got ${decision.outcome}`);
  return decision;
};
