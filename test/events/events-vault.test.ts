import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConfigError, loadConfig } from '../../src/config/load-config.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startWebhookReceiver, testWebhookSecret, type WebhookReceiver } from './webhook-receiver.js';

describe('events through the vault', () => {
  let receiver: WebhookReceiver;
  let t: TestVault;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    t = await startTestVault({
      settings: {
        eventsWebhookUrl: receiver.url,
        eventsWebhookSecret: testWebhookSecret,
        eventsPollMs: '20',
        outboundAllow: '127.0.0.1',
      },
    });
  });
  afterAll(async () => {
    await t?.stop();
    await receiver?.close();
  });

  it('services.events publishes, and the event delivery worker delivers it signed', async () => {
    await t.vault.services.events.publish({
      type: 'approval.requested',
      namespace: 'default',
      data: { approval_id: 'apr_1', agent_name: 'agent-42', credential_name: 'slack' },
    });
    await receiver.waitFor(1);
    expect(receiver.received[0]?.verified).toBe(true);
    expect(JSON.parse(receiver.received[0]!.body)).toMatchObject({
      type: 'approval.requested',
      data: { approval_id: 'apr_1' },
    });
    expect(t.logs()).not.toContain(testWebhookSecret);
  });
});

describe('events configuration', () => {
  it('wants the URL and the secret together, and a secret in the whsec_ form', () => {
    const problems = (flags: Record<string, string>) => {
      try {
        loadConfig(flags, {});
        return [];
      } catch (error) {
        return (error as ConfigError).problems;
      }
    };
    expect(problems({ eventsWebhookUrl: 'https://hooks.example/tv' })).toEqual([
      'TOKENVAULT_EVENTS_WEBHOOK_URL and TOKENVAULT_EVENTS_WEBHOOK_SECRET go together: set both or neither',
    ]);
    expect(
      problems({ eventsWebhookUrl: 'https://hooks.example/tv', eventsWebhookSecret: 'hunter2' }),
    ).toEqual(['--events-webhook-secret must be `whsec_` followed by 24 to 64 random bytes in base64']);
    expect(problems({ eventsWebhookUrl: 'ftp://x', eventsWebhookSecret: testWebhookSecret })).toEqual([
      '--events-webhook-url must be an http(s) URL',
    ]);
    expect(
      problems({ eventsWebhookUrl: 'https://hooks.example/tv', eventsWebhookSecret: testWebhookSecret }),
    ).toEqual([]);
  });
});
