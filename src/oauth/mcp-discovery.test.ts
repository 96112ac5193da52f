import { describe, expect, it } from 'vitest';
import { resourceMetadataOf, wellKnownMetadataUrls } from './mcp-discovery.js';

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
