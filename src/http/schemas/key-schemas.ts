import { Type } from '@sinclair/typebox';
import type { KeyJob } from '../../keys/vault-state-repo.js';

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const JobView = Type.Object({
  id: Type.String(),
  kind: Type.String({ description: 'rotate or mode' }),
  target: Type.String({ description: '`platform:N`, or `webhook`.' }),
  total: Type.Integer(),
  done: Type.Integer(),
  remaining: Type.Integer(),
  started_at: Type.String(),
  finished_at: nullableString,
});

export const toJobView = (job: KeyJob & { remaining?: number }) => ({
  id: job.id,
  kind: job.kind,
  target: job.target,
  total: job.total,
  done: job.done,
  remaining: job.remaining ?? job.total - job.done,
  started_at: job.startedAt,
  finished_at: job.finishedAt,
});

export const StatusView = Type.Object({
  mode: Type.String(),
  data_keys: Type.Array(Type.Object({ ref: Type.String(), count: Type.Integer() })),
  job: Type.Union([JobView, Type.Null()]),
});

export const KeysVerifyResult = Type.Object({
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
});
