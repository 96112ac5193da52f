import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { attach, createPolicy } from '../policies/policy-fixtures.js';
import { addAgent, addCredential, grant, type TestAgent } from '../retrieval/retrieval-fixtures.js';

/**
 * Issue 15 item 3: the approval page in a real browser (Debian's Chromium, headless). The approver
 * signs in with their token, sees the parked request and approves it with the page's button; the
 * agent then gets its credential.
 */
describe('the approval page, in headless Chromium', () => {
  let t: TestVault;
  let url: string;
  let browser: Browser;
  let agent: TestAgent;
  let aliceToken: string;

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
    agent = await addAgent(t, 'agent-7');
    await addCredential(t, { name: 'billing', type: 'api_key', secret: { api_key: 'billing-secret' } });
    await grant(t, { agent: 'agent-7', credential: 'billing', until_revoked: true, reveal: true });
    await createPolicy(
      t,
      'name: billing-approval\nrules:\n  - approval: { approvers: [alice], timeout: 10m }\n',
    );
    await attach(t, 'billing-approval', 'credential', 'billing');
    const created = await t.request('POST', '/v1/admin/tokens', {
      body: { name: 'alice', role: 'approver' },
    });
    aliceToken = (created.body as { token: string }).token;
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.stop();
  });

  it('signs in with the approver token, lists the parked request and approves it with the button', async () => {
    const parked = await t.request('GET', '/v1/agents/agent-7/credentials/billing', { token: agent.apiKey });
    expect(parked.status, parked.text).toBe(202);
    const id = (parked.body as { approval: { id: string } }).approval.id;

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    const response = await page.goto(`${url}/approvals`);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.fill('#token', aliceToken);
    await page.click('#signin button[type=submit]');
    const item = page.locator(`#approval-${id}`);
    await item.waitFor({ timeout: 10_000 });
    expect(await item.textContent()).toContain('agent-7 asks to use billing');
    await item.locator('button[data-decision=approve]').click();
    await page.locator('#status', { hasText: `Approval ${id} approved.` }).waitFor({ timeout: 10_000 });
    expect(await page.locator(`#approval-${id}`).count()).toBe(0);
    // The token stayed in the tab: not in the URL, not in local storage.
    expect(page.url()).toBe(`${url}/approvals`);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(errors).toEqual([]);
    await page.close();

    const shown = await t.request('GET', `/v1/admin/approvals/${id}`);
    expect(shown.body).toMatchObject({ state: 'approved', decided_by: 'alice', decided_via: 'page' });
    const got = await t.request('GET', `/v1/agents/agent-7/credentials/billing?approval=${id}`, {
      token: agent.apiKey,
    });
    expect(got.status, got.text).toBe(200);
    expect((got.body as { access_token: string }).access_token).toBe('billing-secret');
  });

  it('serves the service worker for the page’s scope', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${url}/approvals/sw.js`);
    expect(response?.headers()['content-type']).toContain('javascript');
    expect(await response?.text()).toContain("addEventListener('push'");
    await page.close();
  });
});
