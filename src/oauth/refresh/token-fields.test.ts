import { describe, expect, it } from 'vitest';
import { validateSecret } from '../../credentials/credential-types.js';
import { VaultError } from '../../errors/vault-error.js';
import { normalizeTokenResponse } from '../normalize-token-response.js';
import { loadProviderCatalog } from '../provider-catalog.js';
import {
  earliestExpiry,
  nestedFieldPrefix,
  nestedKeysOf,
  secretToTokenSet,
  tokenSetToSecret,
} from './token-fields.js';

const slack = loadProviderCatalog().get('slack')!;
const now = new Date('2026-06-01T08:00:00.000Z');

/** Slack's documented oauth.v2.access answer for an install with token rotation. */
const install = {
  ok: true,
  access_token: 'xoxe.xoxb-1-bot',
  refresh_token: 'xoxe-1-bot',
  expires_in: 43200,
  token_type: 'bot',
  scope: 'chat:write',
  bot_user_id: 'U0BOT',
  app_id: 'A1',
  team: { id: 'T1', name: 'Acme' },
  enterprise: null,
  authed_user: {
    id: 'U1',
    scope: 'search:read',
    access_token: 'xoxe.xoxp-1-user',
    refresh_token: 'xoxe-1-user',
    expires_in: 40000,
    token_type: 'user',
  },
};

describe('nested tokens as secret fields', () => {
  it('names the fields after the catalog key', () => {
    expect(nestedFieldPrefix('userToken')).toBe('user');
    expect(nestedFieldPrefix('teamUserToken')).toBe('team_user');
    expect(nestedKeysOf(slack)).toEqual(['userToken']);
  });

  it('stores what a Slack install gives as fields the oauth2 type accepts, and reads them back', () => {
    const answer = normalizeTokenResponse(slack, { status: 200, body: install }, now);
    if (!answer.ok) throw new Error('not normalised');
    const secret = tokenSetToSecret(answer.token);
    expect(secret).toEqual({
      access_token: 'xoxe.xoxb-1-bot',
      refresh_token: 'xoxe-1-bot',
      token_type: 'Bearer',
      user_access_token: 'xoxe.xoxp-1-user',
      user_refresh_token: 'xoxe-1-user',
      user_token_type: 'Bearer',
    });
    expect(validateSecret('oauth2', secret)).toEqual(secret);
    const back = secretToTokenSet(secret, nestedKeysOf(slack));
    expect(back.nested.userToken).toEqual({
      accessToken: 'xoxe.xoxp-1-user',
      refreshToken: 'xoxe-1-user',
      tokenType: 'Bearer',
      expiresAtAssumed: false,
    });
    // The refresh is scheduled by the first of the two to expire (the user token here).
    expect(earliestExpiry(answer.token)).toBe(new Date(now.getTime() + 40_000_000).toISOString());
  });

  it('a provider without nested tokens reads no nested fields, and other unknown fields are still refused', () => {
    expect(secretToTokenSet({ access_token: 'a', user_access_token: 'b' }).nested).toEqual({});
    expect(() => validateSecret('oauth2', { access_token: 'a', user_password: 'b' })).toThrow(VaultError);
  });
});
