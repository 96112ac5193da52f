import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { admin, audience, createAgent, newSigningKey, signAssertion } from '../agents/agent-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addCredential, errorOf, grant, onlyAuditEventOf, retrieve } from './retrieval-fixtures.js';

/**
 * Issue 10 item 5: authentication can wait seconds on a key set the agent serves itself. What the
 * agent may do is decided at an access view taken after authentication has finished, so a grant
 * revoked while it waited is refused, not honoured at a view taken before the revoke.
 */
describe('a grant revoked while the agent’s JWT verification waits on its remote key set', () => {
  let t: TestVault;
  let jwksServer: Server;
  let releaseJwks: () => void = () => {};
  let jwksRequested: Promise<void>;
  let jwksBody = '';

  beforeAll(async () => {
    t = await startTestVault({
      clock: fixedClock(new Date()),
      settings: { audience, outboundAllow: '127.0.0.1' },
    });
    // Answers only when the test says so: the first fetch is where authentication waits.
    let markRequested: () => void = () => {};
    jwksRequested = new Promise((resolve) => (markRequested = resolve));
    jwksServer = createServer((_request, response) => {
      markRequested();
      releaseJwks = () => {
        if (!response.headersSent) {
          response.writeHead(200, { 'content-type': 'application/json' }).end(jwksBody);
        }
      };
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    releaseJwks();
    jwksServer.closeAllConnections();
    await new Promise<void>((resolve) => jwksServer.close(() => resolve()));
    await t?.stop();
  });

  it('is refused with grant_revoked, and audited so', async () => {
    const key = await newSigningKey();
    jwksBody = JSON.stringify({ keys: [key.publicJwk] });
    const agent = await createAgent(t, 'slow-keys');
    const { port } = jwksServer.address() as AddressInfo;
    const set = await admin(t, 'PUT', '/v1/admin/agents/slow-keys/jwks', {
      jwks_url: `http://127.0.0.1:${port}/jwks.json`,
    });
    expect(set.status, set.text).toBe(200);
    await addCredential(t, { name: 'slack', type: 'api_key', secret: { api_key: 'xoxb-slow' } });
    const granted = await grant(t, { agent: agent.id, credential: 'slack', ttl: '1d', reveal: true });
    // Its API key reads the grant once, so the grant row is cached at the current access generation:
    // a decision at a view taken before the revoke would be answered from that cache.
    const warm = await retrieve(t, { apiKey: agent.api_key }, { agent: agent.name, service: 'slack' });
    expect(warm.status, warm.text).toBe(200);

    const assertion = await signAssertion(key, { agentId: agent.id, now: new Date() });
    const answer = retrieve(t, { token: assertion }, { agent: agent.name, service: 'slack' });

    // The request is in authentication, waiting on the key set: revoke the grant now.
    await jwksRequested;
    const revoked = await admin(t, 'DELETE', `/v1/admin/grants/${granted.id}`);
    expect(revoked.status, revoked.text).toBe(200);
    releaseJwks();

    const response = await answer;
    expect(response.status, response.text).toBe(403);
    expect(errorOf(response.body).code).toBe('grant_revoked');
    expect(response.text).not.toContain('xoxb-slow');
    expect(await onlyAuditEventOf(t, response)).toMatchObject({
      action: 'credential.retrieve',
      decision: 'deny',
      reason: 'grant_revoked',
      actor_id: agent.id,
      details: expect.objectContaining({ auth_method: 'jwt', grant_id: granted.id }),
    });
  });
});
