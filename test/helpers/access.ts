import type { AllowedDecision } from '../../src/access/access-types.js';
import { decide } from '../../src/access/decide.js';
import { testGrant } from './grants.js';

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
      testGrant({
        namespace,
        agentId: 'test-agent',
        credentialId,
        scopes: [],
        expiresAt: null,
        createdAt: now.toISOString(),
      }),
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
