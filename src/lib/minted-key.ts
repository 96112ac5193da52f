import { newToken } from './ids.js';
import { hashToken } from './token-hash.js';

/**
 * A new agent or proxy key: the token, shown once and never stored, and the columns its row keeps —
 * only the token's hash, when it was made, and the expiry its TTL gives (none without one).
 */
export const mintKey = (prefix: 'tv_agent_' | 'tv_proxy_', now: Date, ttlSeconds: number | undefined) => {
  const token = newToken(prefix);
  return {
    token,
    columns: {
      key_hash: hashToken(token),
      created_at: now.toISOString(),
      expires_at: ttlSeconds === undefined ? null : new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
      revoked_at: null,
      last_used_at: null,
    },
  };
};
