import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditedChange, auditedUse, systemContext } from '../../src/audit/audit-context.js';
import { VaultError } from '../../src/errors/vault-error.js';
import { installAuditHooks } from '../../src/http/audit-hooks.js';
import { installErrorHandler } from '../../src/http/error-handler.js';
import { createMetrics } from '../../src/http/metrics.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { countRows, keyStatus, startKms, type TestKms, webhookSettings } from '../keys/key-fixtures.js';
import { breakAuditWrites, errorOf } from '../retrieval/retrieval-fixtures.js';

/**
 * "Changes roll back with their record" (README) for every change, key management included, and the
 * one helper's rules: the allow commits with the change, a refusal is recorded with its code before
 * it is rethrown, anything else is `internal_error`, and an audit failure is `audit_unavailable`.
 */
describe('one audited path', () => {
  let t: TestVault;
  let kms: TestKms;

  beforeAll(async () => {
    kms = await startKms();
    t = await startTestVault({ settings: webhookSettings(kms, 'platform') });
  });

  afterAll(async () => {
    await t?.stop();
    await kms?.stop();
  });

  const events = (action: string) =>
    t.vault.store.db
      .selectFrom('audit_events')
      .select(['action', 'decision', 'reason', 'target_type', 'target_id', 'details'])
      .where('action', '=', action)
      .orderBy('seq')
      .execute();

  const auditedStore = () => ({ db: t.vault.store.db, audit: t.vault.services.audit });
  const spec = { ctx: systemContext, namespace: 'default', action: 'grant.import' as const };

  describe('key management rolls back with its record', () => {
    it('keys rotate: no new key version and no job without its event', async () => {
      const versions = await countRows(t.vault.store.db, 'kek_versions');
      const restore = await breakAuditWrites(t);
      try {
        const refused = await t.request('POST', '/v1/admin/keys/rotate');
        expect(refused.status).toBe(503);
        expect(errorOf(refused.body).code).toBe('audit_unavailable');
      } finally {
        await restore();
      }
      expect(await countRows(t.vault.store.db, 'kek_versions')).toBe(versions);
      expect((await keyStatus(t)).job).toBeNull();
      expect(await events('keys.rotate')).toEqual([]);
    });

    it('keys mode set: the vault stays in its mode, with no job, without its event', async () => {
      const restore = await breakAuditWrites(t);
      try {
        const refused = await t.request('POST', '/v1/admin/keys/mode', { body: { mode: 'webhook' } });
        expect(refused.status).toBe(503);
        expect(errorOf(refused.body).code).toBe('audit_unavailable');
      } finally {
        await restore();
      }
      expect(await keyStatus(t)).toMatchObject({ mode: 'platform', job: null });
      expect(await events('keys.mode_set')).toEqual([]);
    });

    it('keys verify: the answer is withheld without its event', async () => {
      const restore = await breakAuditWrites(t);
      try {
        const refused = await t.request('POST', '/v1/admin/keys/verify');
        expect(refused.status).toBe(503);
      } finally {
        await restore();
      }
      expect(await events('keys.verify')).toEqual([]);
    });

    it('each records its event, in the change, once the log accepts writes again', async () => {
      expect((await t.request('POST', '/v1/admin/keys/verify')).status).toBe(200);
      const rotated = await t.request('POST', '/v1/admin/keys/rotate');
      expect(rotated.status, rotated.text).toBe(202);
      const job = rotated.body as { id: string; target: string };
      expect(await events('keys.rotate')).toEqual([
        expect.objectContaining({
          decision: 'allow',
          reason: 'ok',
          details: expect.stringContaining(job.id),
        }),
      ]);
      expect(await events('keys.verify')).toEqual([
        expect.objectContaining({ decision: 'allow', details: expect.stringContaining('"ok":true') }),
      ]);
    });
  });

  describe('auditedChange', () => {
    it('commits the change and its allow event together, or neither', async () => {
      const before = await countRows(t.vault.store.db, 'vault_state');
      const restore = await breakAuditWrites(t);
      try {
        await expect(
          auditedChange(auditedStore(), spec, async (trx, record) => {
            await trx
              .insertInto('vault_state')
              .values({ key: 'audited-test', value: '1', updated_at: new Date().toISOString() })
              .execute();
            await record();
          }),
        ).rejects.toMatchObject({ code: 'audit_unavailable' });
      } finally {
        await restore();
      }
      expect(await countRows(t.vault.store.db, 'vault_state')).toBe(before);
    });

    it('records a refusal with its code, and a foreign error as internal_error, then throws', async () => {
      const target = { type: 'grant', id: 'refusal-probe' };
      await expect(
        auditedChange(auditedStore(), { ...spec, target }, async () => {
          throw new VaultError('invalid_import', 'nothing to import');
        }),
      ).rejects.toMatchObject({ code: 'invalid_import', message: 'nothing to import' });
      await expect(
        auditedChange(auditedStore(), { ...spec, target }, async () => {
          throw new RangeError('Invalid time value');
        }),
      ).rejects.toMatchObject({ code: 'internal_error', cause: expect.any(RangeError) });
      const recorded = (await events('grant.import')).filter((e) => e.target_id === 'refusal-probe');
      expect(recorded.map((e) => [e.decision, e.reason])).toEqual([
        ['deny', 'invalid_import'],
        ['deny', 'internal_error'],
      ]);
    });

    it('records nothing for a change that changed nothing', async () => {
      const before = (await events('grant.import')).length;
      expect(await auditedChange(auditedStore(), spec, async () => 'unchanged')).toBe('unchanged');
      expect(await events('grant.import')).toHaveLength(before);
    });
  });

  describe('auditedUse', () => {
    it('records the allow once; a failure after it is not recorded again', async () => {
      const target = { type: 'credential', id: 'use-probe' };
      await expect(
        auditedUse(
          t.vault.services.audit,
          { ...spec, action: 'credential.retrieve', target },
          async (record) => {
            await record({ details: { step: 'allowed' } });
            throw new VaultError('internal_error');
          },
        ),
      ).rejects.toMatchObject({ code: 'internal_error' });
      const recorded = (await events('credential.retrieve')).filter((e) => e.target_id === 'use-probe');
      expect(recorded).toEqual([expect.objectContaining({ decision: 'allow', reason: 'ok' })]);
    });
  });

  describe('the HTTP hook', () => {
    it('records a handler that failed with a foreign error as internal_error, once', async () => {
      const app = Fastify({ genReqId: (request) => String(request.headers['x-request-id']) });
      installErrorHandler(app, { metrics: createMetrics(), bodyLimit: 1024 });
      installAuditHooks(app, { audit: t.vault.services.audit });
      app.post(
        '/v1/admin/broken',
        { config: { audit: { event: 'admin_token.create', recordedBy: 'service' } } },
        async () => {
          // As a route would fail before reaching its service: no helper recorded it.
          throw new RangeError('Invalid time value');
        },
      );
      app.post(
        '/v1/admin/refusing',
        { config: { audit: { event: 'admin_token.create', recordedBy: 'service' } } },
        async () => {
          throw new VaultError('invalid_request');
        },
      );
      await app.ready();
      try {
        const broken = await app.inject({
          method: 'POST',
          url: '/v1/admin/broken',
          headers: { 'x-request-id': 'hook-internal-error-1' },
        });
        expect(broken.statusCode).toBe(500);
        const refusing = await app.inject({
          method: 'POST',
          url: '/v1/admin/refusing',
          headers: { 'x-request-id': 'hook-refusal-0001' },
        });
        expect(refusing.statusCode).toBe(400);
      } finally {
        await app.close();
      }
      const byRequest = async (id: string) =>
        t.vault.store.db
          .selectFrom('audit_events')
          .select(['action', 'decision', 'reason'])
          .where('request_id', '=', id)
          .execute();
      expect(await byRequest('hook-internal-error-1')).toEqual([
        { action: 'admin_token.create', decision: 'deny', reason: 'internal_error' },
      ]);
      // A VaultError from a handler is its service's to record: the hook leaves it alone.
      expect(await byRequest('hook-refusal-0001')).toEqual([]);
    });
  });
});
