import type * as FastifyModule from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { describeOnEveryStore } from '../helpers/stores.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { auditHttpContract } from './audit-http-contract.js';

// The real Fastify, with one more `onRoute` hook that notes each route's declarations: the contract
// derives a case per admin route from them.
vi.mock('fastify', async (importOriginal) => {
  const original = await importOriginal<typeof FastifyModule>();
  const { noteRoute } = await import('../helpers/declared-routes.js');
  const create = ((options?: Parameters<typeof original.default>[0]) => {
    const app = original.default(options);
    app.addHook('onRoute', noteRoute);
    return app;
  }) as typeof original.default;
  return { ...original, default: create };
});

describeOnEveryStore('audit at the HTTP edge', (store) => auditHttpContract(store.fresh));

describe('audit of rate-limited admin authentication', () => {
  let t: TestVault;
  beforeAll(async () => {
    t = await startTestVault({ settings: { authFailureLimit: '2' } });
  });
  afterAll(async () => t?.stop());

  it('records the 429 as a denied admin.authenticate with the client address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      statuses.push(
        (await t.request('GET', '/v1/admin/keys/status', { token: 'tv_admin_guess-guess-guess-guess' }))
          .status,
      );
    }
    expect(statuses).toEqual([401, 401, 429]);
    const events = (await t.vault.services.auditLog.list({ limit: 10, action: 'admin.authenticate' })).items;
    expect(events.map((e) => e.reason)).toEqual([
      'admin_token_invalid',
      'admin_token_invalid',
      'too_many_auth_failures',
    ]);
    expect(events.filter((e) => e.decision !== 'deny' || e.client_ip !== '127.0.0.1')).toEqual([]);
  });
});
