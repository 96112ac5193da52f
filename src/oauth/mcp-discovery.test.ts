import { describe, expect, it } from 'vitest';
import { chooseRegistration, resourceMetadataOf, wellKnownMetadataUrls } from './mcp-discovery.js';

describe('the Bearer challenge’s resource_metadata (RFC 9728 §5.1)', () => {
  it('reads it quoted or not, among other parameters, with any case of the scheme', () => {
    const url = 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp';
    expect(resourceMetadataOf(`Bearer resource_metadata="${url}"`)).toBe(url);
    expect(resourceMetadataOf(`bearer error="invalid_token", resource_metadata=${url}, scope="a b"`)).toBe(
      url,
    );
    expect(resourceMetadataOf(`Bearer realm="x",resource_metadata="${url}"`)).toBe(url);
  });

  it('finds nothing in another scheme, a look-alike parameter or no header', () => {
    expect(resourceMetadataOf('Basic realm="x", resource_metadata="https://a.example/"')).toBeUndefined();
    expect(resourceMetadataOf('Bearer not_resource_metadata="https://a.example/"')).toBeUndefined();
    expect(resourceMetadataOf('Bearer realm="x"')).toBeUndefined();
    expect(resourceMetadataOf(null)).toBeUndefined();
  });
});

describe('the well-known metadata URLs (RFC 9728 §3.1)', () => {
  it('inserts the well-known path before the resource’s path, then tries the origin', () => {
    expect(wellKnownMetadataUrls(new URL('https://mcp.example.com/v1/mcp/'))).toEqual([
      'https://mcp.example.com/.well-known/oauth-protected-resource/v1/mcp',
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    ]);
    expect(wellKnownMetadataUrls(new URL('https://mcp.example.com'))).toEqual([
      'https://mcp.example.com/.well-known/oauth-protected-resource',
    ]);
  });
});

describe('how the vault becomes the authorization server’s client', () => {
  const documentUrl = 'https://vault.example/v1/oauth/client-metadata.json';
  const cimd = {
    client_id_metadata_document_supported: true,
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'none'],
  };

  it('uses its metadata document where the server supports it, PKCE S256 and public clients', () => {
    expect(chooseRegistration(cimd, documentUrl)).toBe('client_id_metadata_document');
    // No list of methods means the server did not say; the draft's public client is then assumed usable.
    const { token_endpoint_auth_methods_supported: _unsaid, ...silent } = cimd;
    expect(chooseRegistration(silent, documentUrl)).toBe('client_id_metadata_document');
  });

  it('registers dynamically otherwise', () => {
    // Not advertised, or not exactly `true`.
    const { client_id_metadata_document_supported: _none, ...plain } = cimd;
    expect(chooseRegistration(plain, documentUrl)).toBe('dynamic_client_registration');
    expect(chooseRegistration({ ...cimd, client_id_metadata_document_supported: 'true' }, documentUrl)).toBe(
      'dynamic_client_registration',
    );
    // The vault has no https URL to serve its document at.
    expect(chooseRegistration(cimd, undefined)).toBe('dynamic_client_registration');
    // A public client without PKCE S256 would have nothing binding the code to its request.
    expect(chooseRegistration({ ...cimd, code_challenge_methods_supported: ['plain'] }, documentUrl)).toBe(
      'dynamic_client_registration',
    );
    expect(
      chooseRegistration(
        { ...cimd, token_endpoint_auth_methods_supported: ['private_key_jwt'] },
        documentUrl,
      ),
    ).toBe('dynamic_client_registration');
  });
});
