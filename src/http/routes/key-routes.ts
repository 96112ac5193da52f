import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { withErrors } from '../schemas/common-schemas.js';
import { JobView, KeysVerifyResult, StatusView, toJobView } from '../schemas/key-schemas.js';

const tags = ['keys'];
const security = [{ adminToken: [] }];

export const registerKeyRoutes = (app: FastifyInstance, { keys }: Pick<VaultServices, 'keys'>) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/admin/keys/status',
    {
      config: { audit: { none: 'reads key metadata only' }, role: 'auditor' },
      schema: {
        tags,
        security,
        summary: 'Vault mode, data keys per key-encryption key, and the re-wrap job',
        response: withErrors({ 200: StatusView }),
      },
    },
    async () => {
      const status = await keys.status();
      return {
        mode: status.mode,
        data_keys: status.dataKeys,
        job: status.job ? toJobView(status.job) : null,
      };
    },
  );

  r.post(
    '/v1/admin/keys/rotate',
    {
      config: { audit: { event: 'keys.rotate', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Add a platform key version and re-wrap every data key with it, in the background',
        response: withErrors({ 202: JobView }, 409, 503),
      },
    },
    async (request, reply) => reply.status(202).send(toJobView(await keys.rotate(request.adminContext))),
  );

  r.post(
    '/v1/admin/keys/mode',
    {
      config: { audit: { event: 'keys.mode_set', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Switch vault mode (platform or webhook), re-wrapping every data key in the background',
        body: Type.Object(
          { mode: Type.Union([Type.Literal('platform'), Type.Literal('webhook')]) },
          { additionalProperties: false },
        ),
        response: withErrors({ 202: JobView }, 409, 503),
      },
    },
    async (request, reply) =>
      reply.status(202).send(toJobView(await keys.setMode(request.body.mode, request.adminContext))),
  );

  r.post(
    '/v1/admin/keys/verify',
    {
      config: { audit: { event: 'keys.verify', recordedBy: 'service' }, role: 'admin' },
      schema: {
        tags,
        security,
        summary: 'Unwrap every data key and report any that fail or sit outside the current mode',
        response: withErrors(
          {
            200: KeysVerifyResult,
          },
          503,
        ),
      },
    },
    async (request) => {
      const result = await keys.verify(request.adminContext);
      return {
        ok: result.ok,
        mode: result.mode,
        checked: result.checked,
        off_mode: result.offMode,
        failures: result.failures.map((f) => ({
          data_key_id: f.dataKeyId,
          credential_id: f.credentialId,
          ref: f.ref,
          code: f.code,
        })),
      };
    },
  );
};
