import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  grant,
  onlyAuditEventOf,
  retrieve,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';

/**
 * Issue 10 finding 1: values a caller chooses (the agent named in the path, `?scope=`, a refused JWT's
 * `iss`) reach the audit event's details. A token-shaped one must be redacted, never a reason for the
 * writer to drop the event: each probe leaves exactly one `deny` event, and no token in it.
 */
describe('caller-supplied values in audit events', () => {
  let t: TestVault;
  let agent: TestAgent;
  const fakeAgentKey = `tv_agent_${'A'.repeat(12)}`;
  const jwtShaped = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';

  beforeAll(async () => {
    t = await startTestVault();
    agent = await addAgent(t, 'agent-42');
    await addAgent(t, 'other');
    await addCredential(t, {
      name: 'slack',
      type: 'bearer',
      secret: { token: 'xoxb-canary' },
      scopes: ['read'],
    });
    await grant(t, { agent: agent.id, credential: 'slack', scopes: ['read'], ttl: '1h' });
  });
  afterAll(() => t.stop());

  const expectOneRedactedDeny = async (
    response: Awaited<ReturnType<typeof retrieve>>,
    token: string,
  ): Promise<void> => {
    expect(response.status, response.text).toBeGreaterThanOrEqual(400);
    expect(response.status, response.text).toBeLessThan(500);
    const event = await onlyAuditEventOf(t, response);
    expect(event.decision).toBe('deny');
    expect(JSON.stringify(event)).not.toContain(token);
  };

  it('records an agent name that looks like a token, redacted', async () => {
    const response = await retrieve(t, agent, { agent: fakeAgentKey, service: 'slack' });
    expect(response.status, response.text).toBe(403);
    await expectOneRedactedDeny(response, fakeAgentKey);
  });

  it('records a ?scope= that looks like a token, redacted', async () => {
    const scope = `tv_admin_${'x'.repeat(12)}`;
    const response = await retrieve(t, agent, {
      agent: agent.id,
      service: 'slack',
      query: `?scope=${scope}`,
    });
    await expectOneRedactedDeny(response, scope);
  });

  it('records a refused JWT whose iss looks like a JWT, redacted', async () => {
    // An https `iss` makes it a workload token: its issuer goes into the refusal's details.
    const claims = {
      iss: `https://issuer.example/${jwtShaped}`,
      sub: 'x',
      aud: 'https://vault.test',
      exp: 4_102_444_800,
    };
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const token = `${part({ alg: 'ES256', typ: 'JWT', kid: 'k' })}.${part(claims)}.${'s'.repeat(86)}`;
    const response = await retrieve(t, { token }, { agent: agent.id, service: 'slack' });
    expect(response.status, response.text).toBe(401);
    await expectOneRedactedDeny(response, jwtShaped);
  });
});
