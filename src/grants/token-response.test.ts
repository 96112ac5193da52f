import { describe, expect, it } from 'vitest';
import { defaultInjection } from '../credentials/credential-types.js';
import { revealToken } from './token-response.js';

describe('revealToken', () => {
  it('returns an API key with the scheme its Authorization injection uses', () => {
    expect(revealToken('api_key', { api_key: 'k1' }, defaultInjection('api_key', ['api_key']))).toEqual({
      accessToken: 'k1',
      tokenType: 'Bearer',
    });
    expect(
      revealToken('api_key', { api_key: 'k1' }, { in: 'header', name: 'X-Api-Key', template: '{{api_key}}' }),
    ).toEqual({
      accessToken: 'k1',
      tokenType: 'api_key',
    });
  });

  it('returns a bearer token, an OAuth access token with its own token type, and basic as base64', () => {
    expect(revealToken('bearer', { token: 't' }, defaultInjection('bearer', ['token']))).toEqual({
      accessToken: 't',
      tokenType: 'Bearer',
    });
    expect(
      revealToken('oauth2', { access_token: 'at', refresh_token: 'rt' }, defaultInjection('oauth2', [])),
    ).toEqual({
      accessToken: 'at',
      tokenType: 'Bearer',
    });
    expect(
      revealToken('oauth2', { access_token: 'at', token_type: 'DPoP' }, defaultInjection('oauth2', [])),
    ).toMatchObject({
      tokenType: 'DPoP',
    });
    expect(revealToken('basic', { username: 'u', password: 'p:w' }, defaultInjection('basic', []))).toEqual({
      accessToken: Buffer.from('u:p:w').toString('base64'),
      tokenType: 'Basic',
    });
  });

  it('returns a custom credential’s single field, or the injected one plus every field', () => {
    expect(revealToken('custom', { secret: 's' }, defaultInjection('custom', ['secret']))).toEqual({
      accessToken: 's',
      tokenType: 'Bearer',
    });
    const many = { app_id: 'id', app_secret: 'sec' };
    expect(
      revealToken('custom', many, { in: 'header', name: 'X-Secret', template: '{{app_secret}}' }),
    ).toEqual({
      accessToken: 'sec',
      tokenType: 'custom',
      fields: many,
    });
  });
});
