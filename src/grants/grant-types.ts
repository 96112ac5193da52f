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

export const minGrantTtlSeconds = 3600;
export const maxGrantTtlSeconds = 30 * 86_400;
