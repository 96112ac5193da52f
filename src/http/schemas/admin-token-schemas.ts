import { type Static, Type } from '@sinclair/typebox';
import type { AdminRole } from '../../admin/admin-roles.js';
import type { AdminToken } from '../../admin/admin-token-service.js';

/** The roles of src/admin/admin-roles.ts, spelled out so the type of the body and views follows. */
const Role = Type.Union(
  [Type.Literal('admin'), Type.Literal('operator'), Type.Literal('approver'), Type.Literal('auditor')],
  {
    description:
      'admin: everything; operator: credentials, agents, grants, issuers; approver: approvals only; auditor: read-only (docs/security.md).',
  },
);

export const CreateAdminTokenBody = Type.Object(
  {
    name: Type.String({ maxLength: 200 }),
    role: Type.Optional(Role),
    ttl_seconds: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 315_360_000,
        description:
          'Lifetime in seconds, up to ten years; none means until revoked. Never past the caller’s own expiry.',
      }),
    ),
  },
  { additionalProperties: false },
);

const nullableString = Type.Union([Type.String(), Type.Null()]);

export const AdminTokenView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  root: Type.Boolean(),
  created_at: Type.String(),
  expires_at: nullableString,
  revoked_at: nullableString,
  last_used_at: nullableString,
});

export const CreatedAdminToken = Type.Object({
  id: Type.String(),
  name: Type.String(),
  role: Role,
  token: Type.String({ description: 'Shown only in this response; store it now.' }),
  expires_at: nullableString,
});

export const toAdminTokenView = (t: AdminToken) => ({
  id: t.id,
  name: t.name,
  role: t.role,
  root: t.isRoot,
  created_at: t.createdAt,
  expires_at: t.expiresAt,
  revoked_at: t.revokedAt,
  last_used_at: t.lastUsedAt,
});

/** Keeps the schema's literals and the roles of admin-roles.ts one list: adding a role fails here. */
const sameRoles: [AdminRole] extends [Static<typeof Role>]
  ? [Static<typeof Role>] extends [AdminRole]
    ? true
    : never
  : never = true;
void sameRoles;
