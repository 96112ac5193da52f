import { Type } from '@sinclair/typebox';
import type { AdminToken } from '../../admin/admin-token-service.js';

export const CreateAdminTokenBody = Type.Object(
  {
    name: Type.String({ maxLength: 200 }),
    ttl_seconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 315_360_000,
        description: 'Lifetime in seconds, up to ten years; none means until revoked.',
      }),
    ),
  },
  { additionalProperties: false },
);

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const AdminTokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  root: Type.Boolean(),
  created_at: Type.String(),
  expires_at: nullableString,
  revoked_at: nullableString,
  last_used_at: nullableString,
});

export const CreatedAdminToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  token: Type.String({ description: 'Shown only in this response; store it now.' }),
  expires_at: nullableString,
});

export const toAdminTokenView = (t: AdminToken) => ({
  id: t.id,
  name: t.name,
  root: t.isRoot,
  created_at: t.createdAt,
  expires_at: t.expiresAt,
  revoked_at: t.revokedAt,
  last_used_at: t.lastUsedAt,
});
