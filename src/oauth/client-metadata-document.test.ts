import { describe, expect, it } from 'vitest';
import { clientIdMetadataUrlFor, clientMetadataDocument } from './client-metadata-document.js';

describe('the vault’s client ID metadata document', () => {
  it('has a URL only under an https public URL', () => {
    expect(clientIdMetadataUrlFor('https://vault.example/')).toBe(
      'https://vault.example/v1/oauth/client-metadata.json',
    );
    expect(clientIdMetadataUrlFor('https://vault.example/base')).toBe(
      'https://vault.example/base/v1/oauth/client-metadata.json',
    );
    expect(clientIdMetadataUrlFor('http://127.0.0.1:8200')).toBeUndefined();
    expect(clientIdMetadataUrlFor('not a url')).toBeUndefined();
  });

  it('describes a public client with the vault’s callback and holds no secret', () => {
    const document = clientMetadataDocument({
      clientId: 'https://vault.example/v1/oauth/client-metadata.json',
      publicUrl: 'https://vault.example/',
      redirectUri: 'https://vault.example/v1/oauth/callback',
      clientName: 'Token Vault',
    });
    expect(document).toEqual({
      client_id: 'https://vault.example/v1/oauth/client-metadata.json',
      client_name: 'Token Vault',
      client_uri: 'https://vault.example',
      redirect_uris: ['https://vault.example/v1/oauth/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    expect(Object.keys(document).filter((key) => /secret|key|jwk/i.test(key))).toEqual([]);
  });
});
