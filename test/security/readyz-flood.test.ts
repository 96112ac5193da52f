import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebhookKmsServer, type WebhookKmsServer } from '../../src/crypto/webhook-kms-server.js';
import { signRequest } from '../../src/crypto/webhook-signature.js';
import { fixedClock } from '../../src/lib/clock.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential, grant, retrieve, type TestAgent } from '../retrieval/retrieval-fixtures.js';

/**
 * Issue 10 finding 2: `/readyz` is unauthenticated and, in webhook mode, probed the key webhook on
 * every call; enough calls filled the reference webhook's replay window and every retrieval failed.
 */
describe('a /readyz flood in webhook mode', () => {
  const secret = randomBytes(32).toString('hex');
  const requests: string[] = [];
  // The webhook's clock, 20 s behind, so the flood below can be spread over seconds without waiting.
  const kmsClock = fixedClock(new Date(Date.now() - 20_000).toISOString());
  let kms: WebhookKmsServer;
  let kmsUrl: string;
  let t: TestVault;
  let agent: TestAgent;

  beforeAll(async () => {
    kms = createWebhookKmsServer({
      keys: [{ id: 'k1', key: randomBytes(32) }],
      activeKeyId: 'k1',
      secret,
      // A small replay window, so that a flood far larger than it is cheap to send here.
      replayCapacity: 50,
      clock: kmsClock,
      log: (entry) => requests.push(`${entry.path} ${entry.status}`),
    });
    kmsUrl = (await kms.start()).url;
    t = await startTestVault({
      settings: { vaultMode: 'webhook', kmsWebhookUrl: kmsUrl, kmsWebhookSecret: secret },
    });
    agent = await addAgent(t, 'agent-42');
    await addCredential(t, { name: 'slack', type: 'bearer', secret: { token: 'xoxb-1' }, scopes: ['read'] });
    await grant(t, { agent: agent.id, credential: 'slack', scopes: ['read'], ttl: '1h', reveal: true });
  });
  afterAll(async () => {
    await t?.stop();
    await kms?.stop();
  });

  const expectRetrievalWorks = async () => {
    const answer = await retrieve(t, agent, { agent: agent.id, service: 'slack' });
    expect(answer.status, answer.text).toBe(200);
    expect((answer.body as { access_token: string }).access_token).toBe('xoxb-1');
  };

  it('reaches the webhook a handful of times at most and leaves retrievals working', async () => {
    const before = requests.length;
    for (let round = 0; round < 10; round += 1) {
      const answers = await Promise.all(
        Array.from({ length: 100 }, () => t.request('GET', '/readyz', { token: null })),
      );
      expect(answers.filter((answer) => answer.status !== 200)).toEqual([]);
    }
    const probes = requests.slice(before);
    // One check is a wrap and an unwrap; 1,000 readiness calls share one or two checks.
    expect(probes.length, probes.join('\n')).toBeLessThanOrEqual(4);
    await expectRetrievalWorks();
  });

  it('keeps the webhook answering fresh requests after signed requests far beyond its replay window', async () => {
    const body = JSON.stringify({ plaintexts: [randomBytes(32).toString('base64')] });
    // 400 signed requests over 10 s of the webhook's clock: eight times what its replay window holds.
    for (let round = 0; round < 10; round += 1) {
      kmsClock.advance(1000);
      const answers = await Promise.all(
        Array.from({ length: 40 }, () =>
          fetch(`${kmsUrl}/wrap`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...signRequest({ secret, body, clock: kmsClock }),
            },
            body,
          }),
        ),
      );
      expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    }
    expect(requests.filter((line) => line.endsWith(' 401'))).toEqual([]);
    await expectRetrievalWorks();
  });
});
