import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorRegistry } from '../../src/errors/error-registry.js';
import { newSigningKey, signAssertion } from '../agents/agent-fixtures.js';
import { startOidcIssuer, type TestIssuer } from '../agents/oidc-issuer.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import {
  addAgent,
  addCredential,
  errorOf,
  grant,
  retrieve,
  type TestAgent,
} from '../retrieval/retrieval-fixtures.js';

/**
 * Issue 10 finding 8: what a caller that is not an admin learns from a refusal. It must not learn an
 * agent's name from its id, the audience the vault is configured with, or the ids of credentials and
 * data keys (a `decryption_failed` says only that).
 */
describe('what refusals tell callers that are not admins', () => {
  const audience = 'https://vault.internal.example:8443';
  let t: TestVault;
  let issuer: TestIssuer;
  let agent: TestAgent;
  let credentialId: string;

  beforeAll(async () => {
    issuer = await startOidcIssuer({ 'ci-main': {} });
    t = await startTestVault({ settings: { audience, outboundAllow: '127.0.0.1' } });
    agent = await addAgent(t, 'payments-bot-prod');
    credentialId = (
      await addCredential(t, { name: 'slack', type: 'bearer', secret: { token: 'xoxb-1' }, scopes: ['read'] })
    ).id;
    await grant(t, { agent: agent.id, credential: 'slack', scopes: ['read'], ttl: '1h', reveal: true });
    const trusted = await t.request('POST', '/v1/admin/issuers', {
      body: { name: 'ci', issuer: issuer.issuer },
    });
    expect(trusted.status, trusted.text).toBe(201);
  });
  afterAll(async () => {
    await t?.stop();
    await issuer?.stop();
  });

  it('does not name the agent whose id a JWT assertion claims', async () => {
    const token = await signAssertion(await newSigningKey(), {
      agentId: agent.id,
      now: new Date(),
      aud: audience,
    });
    const answer = await retrieve(t, { token }, { agent: agent.id, service: 'slack' });
    expect(answer.status, answer.text).toBe(401);
    expect(answer.text).not.toContain('payments-bot-prod');
  });

  it('does not tell a workload token with the wrong audience which audience is configured', async () => {
    const token = await issuer.token('ci-main', 'https://guess.example');
    const answer = await retrieve(t, { token }, { agent: agent.id, service: 'slack' });
    expect(errorOf(answer.body).code).toBe('jwt_audience_invalid');
    expect(answer.text).not.toContain('vault.internal.example');
  });

  it('says only decryption_failed to an agent whose secret does not decrypt', async () => {
    // Someone with write access to the database swaps the stored ciphertexts for garbage.
    await t.vault.store.db
      .updateTable('credential_versions')
      .set({ ciphertexts: JSON.stringify({ token: 'tv1.x.AAAA' }) })
      .where('credential_id', '=', credentialId)
      .execute();
    const answer = await retrieve(t, agent, { agent: agent.id, service: 'slack' });
    expect(errorOf(answer.body).code, answer.text).toBe('decryption_failed');
    expect(errorOf(answer.body).message).toBe(errorRegistry.decryption_failed.message);
    expect(answer.text).not.toContain(credentialId);
    // The specific message is in the log, under the request id.
    expect(t.logs()).toContain(credentialId);
  });
});
