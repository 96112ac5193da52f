import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { startWebhookReceiver, testWebhookSecret, type WebhookReceiver } from '../events/webhook-receiver.js';
import { attach, createPolicy } from '../policies/policy-fixtures.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { pushSubscriber, startReceiver } from './push-service.js';

interface Parked {
  error: { code: string; message: string };
  approval: { id: string; state: string; retry_after: number; poll_url: string; expires_at: string };
}

interface PushMessage {
  approval_id: string;
  title: string;
  links: { approver: string; approve_url: string; deny_url: string }[];
}

const policy = (name: string, approval: string) => `name: ${name}\nrules:\n  - approval: ${approval}\n`;

/**
 * Issue 15 item 3, end to end through the real vault: a stored `approval` policy parks the agent's
 * request (202), the approvers are notified by Web Push (decrypted here with the subscription's own
 * keys), ntfy and the signed webhook (signature checked), an approver decides from the CLI, and the
 * waiting agent gets its credential; denial, timeout, self-approval and a second decision are refused.
 */
describe('approvals, end to end', () => {
  let t: TestVault;
  let url: string;
  let push: Awaited<ReturnType<typeof startReceiver>>;
  let webhook: WebhookReceiver;
  let agent: TestAgent;
  const tokens: Record<string, string> = {};
  const browser = () => pushSubscriber(`${push.url}/push/alice`);
  let alicesBrowser: ReturnType<typeof browser>;

  const asAgent = (path: string) =>
    t.request('GET', path, { token: agent.apiKey }) as Promise<{
      status: number;
      body: unknown;
      headers: Record<string, unknown>;
      text: string;
    }>;
  const park = async (credential: string): Promise<Parked> => {
    const parked = await asAgent(`/v1/agents/agent-42/credentials/${credential}`);
    expect(parked.status, parked.text).toBe(202);
    return parked.body as Parked;
  };
  const decide = (id: string, decision: 'approve' | 'deny', who: string, body: object = {}) =>
    t.request('POST', `/v1/admin/approvals/${id}/${decision}`, { token: tokens[who]!, body });
  const cli = (args: string[], who: string) =>
    runCli([...args, '--json'], {
      cwd: t.dataDir,
      env: cleanEnv({ TOKENVAULT_ADDR: url, TOKENVAULT_TOKEN: tokens[who]! }),
    });

  beforeAll(async () => {
    push = await startReceiver();
    webhook = await startWebhookReceiver();
    t = await startTestVault({
      settings: {
        outboundAllow: '127.0.0.1',
        approvalNtfyUrl: `${push.url}/ntfy/approvals`,
        approvalNtfyToken: 'tk_ntfy_for_tests',
        eventsWebhookUrl: webhook.url,
        eventsWebhookSecret: testWebhookSecret,
        eventsPollMs: '50',
      },
    });
    url = await t.vault.listen();
    agent = await addAgent(t, 'agent-42');
    for (const [name, secret] of [
      ['prod-db', 'prod-secret-1'],
      ['prod-short', 'short-secret'],
      ['prod-box', 'box-secret'],
    ] as const) {
      await addCredential(t, { name, type: 'api_key', secret: { api_key: secret } });
      await grant(t, { agent: 'agent-42', credential: name, until_revoked: true, reveal: true });
    }
    await createPolicy(t, policy('prod-approval', '{ approvers: [alice, bob, agent-42], timeout: 10m }'));
    await attach(t, 'prod-approval', 'credential', 'prod-db');
    await createPolicy(t, policy('short-approval', '{ approvers: [alice], timeout: 2s }'));
    await attach(t, 'short-approval', 'credential', 'prod-short');
    await createPolicy(t, policy('box-approval', '{ approvers: [bob], timeout: 10m, covers: 10m }'));
    await attach(t, 'box-approval', 'credential', 'prod-box');
    for (const name of ['alice', 'bob', 'agent-42', 'carol']) {
      const created = await t.request('POST', '/v1/admin/tokens', { body: { name, role: 'approver' } });
      expect(created.status, created.text).toBe(201);
      tokens[name] = (created.body as { token: string }).token;
    }
    alicesBrowser = browser();
    const subscribed = await t.request('POST', '/v1/admin/approvals/push/subscriptions', {
      token: tokens.alice!,
      body: alicesBrowser.subscription,
    });
    expect(subscribed.status, subscribed.text).toBe(201);
  }, 60_000);

  afterAll(async () => {
    await t?.stop();
    await push?.stop();
    await webhook?.close();
  });

  it('parks, notifies by Web Push, ntfy and a signed webhook, and lets the agent in once approved from the CLI', async () => {
    const first = await asAgent('/v1/agents/agent-42/credentials/prod-db');
    expect(first.status, first.text).toBe(202);
    const { approval, error } = first.body as Parked;
    expect(error.code).toBe('approval_pending');
    expect(first.headers['retry-after']).toBe(String(approval.retry_after));
    expect(approval.poll_url).toBe(`/v1/agents/agent-42/approvals/${approval.id}?wait=30`);
    // Asking again while it is pending reuses the approval: one question to the approvers.
    expect((await park('prod-db')).approval.id).toBe(approval.id);

    // Web Push: an RFC 8291 aes128gcm message under VAPID, decrypted with the browser's keys.
    const pushed = await push.next('/push/alice');
    expect(pushed.headers['content-encoding']).toBe('aes128gcm');
    expect(String(pushed.headers.authorization)).toMatch(/^vapid t=[\w-]+\.[\w-]+\.[\w-]+, k=[\w-]+$/);
    const message = JSON.parse(alicesBrowser.decrypt(pushed.body)) as PushMessage;
    expect(message).toMatchObject({ approval_id: approval.id, title: 'Approve agent-42 → prod-db?' });
    expect(message.links.map((l) => l.approver)).toEqual(['alice']);
    expect(pushed.body.toString('latin1')).not.toContain(approval.id);

    // ntfy: a plain POST with the token, one link pair per approver, never the agent's own name.
    const ntfy = await push.next('/ntfy/approvals');
    expect(ntfy.headers.authorization).toBe('Bearer tk_ntfy_for_tests');
    expect(ntfy.body.toString()).toContain('alice: approve http');
    expect(ntfy.body.toString()).toContain('bob: approve http');
    expect(ntfy.body.toString()).not.toContain('agent-42: approve');

    // The signed webhook: approval.requested, its Standard Webhooks signature verified by the library.
    await webhook.waitFor(1);
    const delivered = webhook.received.map((r) => ({ ...r, event: JSON.parse(r.body) }));
    const requested = delivered.find((r) => r.event.type === 'approval.requested')!;
    expect(requested.verified).toBe(true);
    expect(requested.event.data).toMatchObject({
      approval_id: approval.id,
      agent: 'agent-42',
      credential: 'prod-db',
      link_approvers: ['alice', 'bob'],
    });

    // The agent waits on its long-poll while people decide.
    const waiting = asAgent(`${approval.poll_url.replace('wait=30', 'wait=20')}`);

    // Not the agent deciding for itself, not someone the rule does not list.
    const self = await decide(approval.id, 'approve', 'agent-42');
    expect([self.status, (self.body as Parked).error.code]).toEqual([403, 'approval_self_decision']);
    const stranger = await decide(approval.id, 'approve', 'carol');
    expect([stranger.status, (stranger.body as Parked).error.code]).toEqual([403, 'approval_not_approver']);

    const listed = await cli(['approval', 'list'], 'alice');
    expect(listed.code, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { id: string }[]).map((a) => a.id)).toContain(approval.id);
    const approved = await cli(['approval', 'approve', approval.id], 'alice');
    expect(approved.code, approved.stderr).toBe(0);
    expect(JSON.parse(approved.stdout)).toMatchObject({
      state: 'approved',
      decided_by: 'alice',
      decided_via: 'cli',
    });

    const answered = await waiting;
    expect(answered.status, answered.text).toBe(200);
    const state = answered.body as { state: string; retry_url: string };
    expect(state.state).toBe('approved');
    const got = await asAgent(state.retry_url);
    expect(got.status, got.text).toBe(200);
    expect((got.body as { access_token: string }).access_token).toBe('prod-secret-1');
    // One request: the approval is spent.
    const again = await asAgent(state.retry_url);
    expect([again.status, (again.body as Parked).error.code]).toEqual([409, 'approval_used']);

    // A decision is final.
    const twice = await decide(approval.id, 'deny', 'bob');
    expect([twice.status, (twice.body as Parked).error.code]).toEqual([409, 'approval_already_decided']);
    const shown = await cli(['approval', 'show', approval.id], 'bob');
    expect(JSON.parse(shown.stdout)).toMatchObject({ state: 'approved', used_at: expect.any(String) });

    await webhook.waitFor(2);
    const decided = webhook.received.map((r) => JSON.parse(r.body) as { type: string; data: object });
    expect(decided.find((e) => e.type === 'approval.decided')?.data).toMatchObject({
      approval_id: approval.id,
      state: 'approved',
      decided_by: 'alice',
    });
  }, 60_000);

  it('refuses a denied request with approval_denied, naming who and why', async () => {
    const { approval } = await park('prod-db');
    const denied = await cli(['approval', 'deny', approval.id, '--reason', 'not during the freeze'], 'bob');
    expect(denied.code, denied.stderr).toBe(0);
    const polled = await asAgent(approval.poll_url.replace('wait=30', 'wait=0'));
    expect(polled.body).toMatchObject({ state: 'denied', reason: 'not during the freeze', retry_url: null });
    const refused = await asAgent(`/v1/agents/agent-42/credentials/prod-db?approval=${approval.id}`);
    expect(refused.status).toBe(403);
    expect((refused.body as Parked).error).toMatchObject({ code: 'approval_denied' });
    expect((refused.body as Parked).error.message).toContain('denied by bob: not during the freeze');
  });

  it('expires an undecided approval at its timeout: approval_expired, and it cannot be decided any more', async () => {
    const { approval } = await park('prod-short');
    const polled = await asAgent(approval.poll_url.replace('wait=30', 'wait=5'));
    expect(polled.body).toMatchObject({ state: 'expired' });
    const refused = await asAgent(`/v1/agents/agent-42/credentials/prod-short?approval=${approval.id}`);
    expect([refused.status, (refused.body as Parked).error.code]).toEqual([403, 'approval_expired']);
    const late = await decide(approval.id, 'approve', 'alice');
    expect([late.status, (late.body as Parked).error.code]).toEqual([409, 'approval_already_decided']);
    // The sweeper records the expiry once, as the system.
    await expect
      .poll(
        async () => {
          const page = await t.request('GET', `/v1/admin/audit/events?action=approval.expire&limit=10`);
          return (page.body as { items: { target_id: string }[] }).items.map((e) => e.target_id);
        },
        { timeout: 8000, interval: 250 },
      )
      .toContain(approval.id);
  });

  it('lets a time-box approval cover every request of the agent and credential until it ends', async () => {
    const { approval } = await park('prod-box');
    expect((await decide(approval.id, 'approve', 'bob')).status).toBe(200);
    for (let i = 0; i < 3; i += 1) {
      const got = await asAgent('/v1/agents/agent-42/credentials/prod-box');
      expect(got.status, got.text).toBe(200);
    }
  });

  it('decides through a signed one-time link: GET shows, POST decides once, a forged link is refused', async () => {
    const before = push.received.length;
    const { approval } = await park('prod-db');
    const pushed = await push.next('/push/alice', before);
    const message = JSON.parse(alicesBrowser.decrypt(pushed.body)) as PushMessage;
    expect(message.approval_id).toBe(approval.id);
    const link = new URL(message.links[0]!.approve_url);
    const token = link.searchParams.get('t')!;
    const page = await t.vault.app.inject({ method: 'GET', url: `${link.pathname}${link.search}` });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('Deciding as <strong>alice</strong>');
    const form = (t: string) => ({
      method: 'POST' as const,
      url: '/approvals/link',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ t }).toString(),
    });
    const forged = await t.vault.app.inject(form(`${token.split('.')[0]}.AAAA`));
    expect(forged.statusCode).toBe(403);
    const used = await t.vault.app.inject(form(token));
    expect(used.statusCode, used.body).toBe(200);
    expect(used.body).toContain(`Approval ${approval.id} is now approved.`);
    const reused = await t.vault.app.inject(form(token));
    expect(reused.statusCode).toBe(409);
    const shown = await t.request('GET', `/v1/admin/approvals/${approval.id}`, { token: tokens.bob! });
    expect(shown.body).toMatchObject({ state: 'approved', decided_by: 'alice', decided_via: 'link' });
  });

  it('files every approval event under the agent and the credential', async () => {
    const page = await t.request(
      'GET',
      '/v1/admin/audit/events?agent=agent-42&credential=prod-db&action=approval.*&limit=1000',
    );
    const actions = new Set((page.body as { items: { action: string }[] }).items.map((e) => e.action));
    expect([...actions].sort()).toEqual([
      'approval.approve',
      'approval.deny',
      'approval.notify',
      'approval.request',
    ]);
  });
});
