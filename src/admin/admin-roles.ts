import { VaultError } from '../errors/vault-error.js';

/**
 * What an admin token may do. Each admin route declares the roles that may call it
 * (`config.role`); `admin` may call every route. The roles are not a ladder: an operator changes
 * what agents may use but neither reads nor decides approvals, an approver decides approvals and
 * reads nothing else, an auditor reads and changes nothing (docs/security.md has the table).
 *
 * - `admin`: everything, including admin tokens, keys and the vault mode.
 * - `operator`: credentials, agents and their keys, grants, issuers and bindings (policies as they
 *   land); reads the audit log to see what its agents did. No admin tokens, keys or mode.
 * - `approver`: approvals only (list, show, approve, deny, subscribe to Web Push); the token's name
 *   is the approver's identity (docs/approvals.md).
 * - `auditor`: read-only: the audit log (list, export, verify), and the metadata of credentials,
 *   agents, grants, issuers, admin tokens and keys, since auditing access means knowing who holds
 *   what. No route that changes anything, and no route returns a secret.
 */
export const adminRoles = ['admin', 'operator', 'approver', 'auditor'] as const;
export type AdminRole = (typeof adminRoles)[number];

export const isAdminRole = (value: unknown): value is AdminRole =>
  typeof value === 'string' && (adminRoles as readonly string[]).includes(value);

/** A route's declaration: the role (or roles) besides `admin` that may call it. */
export type RoleDeclaration = AdminRole | readonly AdminRole[];

export const declaredRoles = (declaration: RoleDeclaration): readonly AdminRole[] =>
  typeof declaration === 'string' ? [declaration] : declaration;

/** Whether a token of role `held` may call a route that declares `declaration`. */
export const roleAllows = (held: AdminRole, declaration: RoleDeclaration): boolean =>
  held === 'admin' || declaredRoles(declaration).includes(held);

/** The roles a route declaring `declaration` admits, `admin` first, for messages and docs. */
export const admittedRoles = (declaration: RoleDeclaration): AdminRole[] => [
  'admin',
  ...declaredRoles(declaration).filter((role) => role !== 'admin'),
];

/**
 * Whether `held` covers everything `other` may do. `admin` covers every role; every other role only
 * itself, since no two of them are nested (an operator may not decide approvals, an auditor may read
 * admin tokens and keys).
 */
export const roleCovers = (held: AdminRole, other: AdminRole): boolean => held === 'admin' || held === other;

/** The creator of a new token, as far as its limits go. */
export interface TokenCreator {
  role: AdminRole;
  /** ISO-8601, or null for a token that lives until revoked. */
  expiresAt: string | null;
}

/**
 * The expiry of a token `creator` asks for, or the refusal: a token never makes one of a wider role
 * (`forbidden_role`) or one that outlives it (`admin_token_outlives_creator`), so a short-lived or
 * narrow token cannot turn itself into a permanent or wider one. Rounded down to whole seconds of
 * the creator's remaining life in the message, so the number it names is one that works.
 */
export const newTokenExpiry = (
  creator: TokenCreator,
  wanted: { role: AdminRole; ttlSeconds: number | undefined },
  now: Date,
): string | null => {
  if (!roleCovers(creator.role, wanted.role)) {
    throw new VaultError(
      'forbidden_role',
      `A token of role ${creator.role} cannot create a token of role ${wanted.role}; only admin can.`,
    );
  }
  const expiresAt =
    wanted.ttlSeconds === undefined ? null : new Date(now.getTime() + wanted.ttlSeconds * 1000);
  if (creator.expiresAt === null) return expiresAt?.toISOString() ?? null;
  const creatorEnd = Date.parse(creator.expiresAt);
  if (expiresAt === null || expiresAt.getTime() > creatorEnd) {
    const left = Math.floor((creatorEnd - now.getTime()) / 1000);
    throw new VaultError(
      'admin_token_outlives_creator',
      `This token expires at ${creator.expiresAt}, and a token it creates cannot outlive it: ` +
        `give ttl_seconds of at most ${left}.`,
    );
  }
  return expiresAt.toISOString();
};
