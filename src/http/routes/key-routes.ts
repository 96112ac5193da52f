import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { KeyManagementService } from '../../keys/key-management-service.js';
import type { KeyJob } from '../../keys/vault-state-repo.js';
import { adminContextOf } from '../admin-context.js';
import { withErrors } from '../schemas/common-schemas.js';

const tags = ['keys'];
const security = [{ adminToken: [] }];
const nullableString = Type.Union([Type.String(), Type.Null()]);

const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String({ description: 'rotate or mode' }),
  target: Type.String({ description: '`platform:N`, or `webhook`.' }),
  total: Type.Integer(),
  done: Type.Integer(),
  remaining: Type.Integer(),
  started_at: Type.String(),
  finished_at: nullableString,
});

const toJobView = (job: KeyJob & { remaining?: number }) => ({
  id: job.id,
  kind: job.kind,
  target: job.target,
  total: job.total,
  done: job.done,
  remaining: job.remaining ?? job.total - job.done,
  started_at: job.startedAt,
  finished_at: job.finishedAt,
});

const StatusView = Type.Object({
  mode: Type.String(),
  data_keys: Type.Array(Type.Object({ ref: Type.String(), count: Type.Integer() })),
  job: Type.Union([JobView, Type.Null()]),
});

export const registerKeyRoutes = (app: FastifyInstance, { keys }: { keys: KeyManagementService }) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/admin/keys/status',
    {
      config: { audit: { none: 'reads key metadata only' } },
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
      config: { audit: { event: 'keys.rotate', recordedBy: 'service' } },
      schema: {
        tags,
        security,
        summary: 'Add a platform key version and re-wrap every data key with it, in the background',
        response: withErrors({ 202: JobView }, 409, 503),
      },
    },
    async (request, reply) => reply.status(202).send(toJobView(await keys.rotate(adminContextOf(request)))),
  );

  r.post(
    '/v1/admin/keys/mode',
    {
      config: { audit: { event: 'keys.mode_set', recordedBy: 'service' } },
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
      reply.status(202).send(toJobView(await keys.setMode(request.body.mode, adminContextOf(request)))),
  );

  r.post(
    '/v1/admin/keys/verify',
    {
      config: { audit: { event: 'keys.verify', recordedBy: 'service' } },
      schema: {
        tags,
        security,
        summary: 'Unwrap every data key and report any that fail or sit outside the current mode',
        response: withErrors(
          {
            200: Type.Object({
              ok: Type.Boolean(),
              mode: Type.String(),
              checked: Type.Integer(),
              off_mode: Type.Integer({ description: 'Data keys not yet under the current mode.' }),
              failures: Type.Array(
                Type.Object({
                  data_key_id: Type.String(),
                  credential_id: Type.String(),
                  ref: Type.String(),
                  code: Type.String(),
                }),
              ),
            }),
          },
          503,
        ),
      },
    },
    async (request) => {
      const result = await keys.verify(adminContextOf(request));
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
