import { randomBytes, randomUUID } from 'node:crypto';

export const newId = (): string => randomUUID();

/** A random secret token with a recognisable prefix (`tv_admin_…`): 256 bits, base64url. */
export const newToken = (prefix: 'tv_admin_' | 'tv_agent_' | 'tv_proxy_'): string =>
  `${prefix}${randomBytes(32).toString('base64url')}`;
