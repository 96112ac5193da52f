import { describe, expect, it } from 'vitest';
import {
  type CredentialType,
  credentialTypeDescriptors,
  credentialTypes,
  defaultInjection,
  revealToken,
  type SecretFields,
  validateInjection,
  validateSecret,
} from './credential-types.js';
import { renderTemplate } from './injection-template.js';

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

describe('one descriptor per credential type', () => {
  const samples: Record<CredentialType, SecretFields> = {
    api_key: { api_key: 'k1' },
    bearer: { token: 't1' },
    basic: { username: 'u', password: 'p:w' },
    oauth2: { access_token: 'at', refresh_token: 'rt' },
    custom: { app_key: 'ak', app_secret: 'as' },
  };

  it.each(credentialTypes)(
    '%s: its default injection is valid for its fields and renders its reveal',
    (type) => {
      const secret = validateSecret(type, samples[type]);
      const fields = Object.keys(secret);
      const descriptor = credentialTypeDescriptors[type];
      const injection = validateInjection(defaultInjection(type, fields), type, fields);
      const derived = Object.fromEntries(
        Object.entries(descriptor.derived).map(([name, of]) => [name, of(secret)]),
      );
      const rendered = renderTemplate(injection.template, { ...secret, ...derived });
      const revealed = revealToken(type, secret, injection);
      // What a proxy would send is what a reveal grant hands over, under the scheme it names.
      expect(rendered).toBe(`${revealed.tokenType} ${revealed.accessToken}`);
      // No type refreshes yet: the OAuth issue sets the hook for oauth2.
      expect(descriptor.refresh).toBeUndefined();
    },
  );
});
