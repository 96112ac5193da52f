import { Type } from '@sinclair/typebox';

const nullableString = Type.Union([Type.String(), Type.Null()]);

/** The only fields an event response can carry. */
export const EventView = Type.Object({
  seq: Type.Integer(),
  id: Type.String(),
  time: Type.String(),
  namespace: Type.String(),
  actor_type: Type.String({ description: 'agent, admin, system or anonymous' }),
  actor_id: nullableString,
  action: Type.String(),
  target_type: nullableString,
  target_id: nullableString,
  decision: Type.String({ description: 'allow or deny' }),
  reason: nullableString,
  client_ip: nullableString,
  user_agent: nullableString,
  request_id: nullableString,
  details: Type.Record(
    Type.String(),
    Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null(), Type.Array(Type.String())]),
  ),
  prev_hash: Type.String(),
  hash: Type.String(),
});

export const EventList = Type.Object({
  items: Type.Array(EventView),
  next_cursor: Type.Union([Type.String(), Type.Null()], {
    description: 'Pass as `after` for the next page; null on the last.',
  }),
});

export const VerifyView = Type.Object({
  ok: Type.Boolean(),
  checked: Type.Integer({ description: 'Events that checked out before the first bad one.' }),
  head: Type.Union([Type.Object({ seq: Type.Integer(), hash: Type.String() }), Type.Null()], {
    description: 'The newest event the head records; keep it elsewhere to anchor the chain.',
  }),
  keyed_from: Type.Union([Type.Integer(), Type.Null()], {
    description:
      'The first event linked with the audit key (HMAC); the events before it are plain SHA-256. Null when the log has not switched. Keep it with the head.',
  }),
  first_bad: Type.Union([
    Type.Object({
      seq: Type.Integer(),
      id: nullableString,
      problem: Type.String({
        description:
          'altered, missing, reordered or head_mismatch (the chain); bad_signature or truncated (a checkpoint)',
      }),
      detail: Type.String(),
    }),
    Type.Null(),
  ]),
  checkpoints_checked: Type.Integer({
    description: 'Signed checkpoints (stored, and any posted) that checked out against the log.',
  }),
});

export const CheckpointBody = Type.Object({
  seq: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  hash: Type.String({ maxLength: 128 }),
  time: Type.String({ maxLength: 64 }),
  key_id: Type.String({ maxLength: 64 }),
  signature: Type.String({ maxLength: 256 }),
});

export const VerifyBody = Type.Union([
  Type.Object(
    {
      checkpoints: Type.Optional(
        Type.Array(CheckpointBody, {
          maxItems: 100_000,
          description: 'Checkpoints kept outside the vault (the lines of the checkpoint file).',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  Type.Null(),
]);

export const PublicKeyView = Type.Object({
  kty: Type.String(),
  crv: Type.String(),
  x: Type.String(),
  kid: Type.String(),
  alg: Type.String(),
  use: Type.String(),
});
