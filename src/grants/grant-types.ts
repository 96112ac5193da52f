export interface Grant {
  id: string;
  namespace: string;
  agentId: string;
  credentialId: string;
  scopes: string[];
  reveal: boolean;
  /** null: until revoked. */
  expiresAt: string | null;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
  revokedReason: string | null;
}

/** A grant with the names an admin reads it by (null when the agent or credential is gone). */
export interface GrantDetails extends Grant {
  agentName: string | null;
  credentialName: string | null;
}

/** How long a grant lasts and whether it reveals the secret; shared by create and import. */
export interface GrantTerms {
  /** `1h` … `30d`, or whole seconds. Exactly one of ttl and untilRevoked. */
  ttl?: string | number | undefined;
  untilRevoked?: boolean | undefined;
  /** May the agent read the raw secret? Otherwise proxy-only. */
  reveal?: boolean | undefined;
}

export type GrantStatus = 'active' | 'expired' | 'revoked';

export type GrantRecord = GrantDetails & { status: GrantStatus };

/** Why a grant stopped being live; stored in `revoked_reason`. */
export type RevokeReason = 'revoked' | 'agent_revoked' | 'credential_revoked' | 'revoke_all' | 'superseded';

export const minGrantTtlSeconds = 3600;
export const maxGrantTtlSeconds = 30 * 86_400;
