import { describe, expect, it } from 'vitest';
import { shippedProviderCatalog } from '../oauth/provider-catalog.js';
import { type ApiBaseQuery, catalogApiBase, type ProviderLink } from './api-base.js';

const query = (type: ApiBaseQuery['type'] = 'oauth2'): ApiBaseQuery => ({
  namespace: 'default',
  credentialId: 'c1',
  type,
});

describe('catalogApiBase', () => {
  const catalog = shippedProviderCatalog();
  const linkedTo = (link: ProviderLink | undefined) => {
    const asked: ApiBaseQuery[] = [];
    const fallback = catalogApiBase(catalog, async (credential) => {
      asked.push(credential);
      return link;
    });
    return { fallback, asked };
  };

  it('gives the linked provider’s API base URL, filled with the app’s parameters', async () => {
    expect(await linkedTo({ provider: 'github' }).fallback(query())).toBe('https://api.github.com');
    expect(await linkedTo({ provider: 'zendesk', parameters: { subdomain: 'acme' } }).fallback(query())).toBe(
      'https://acme.zendesk.com/api/v2',
    );
  });

  it('takes the token’s own https instance URL where the catalog says so', async () => {
    const { fallback } = linkedTo({
      provider: 'salesforce',
      tokenExtra: { instanceUrl: 'https://acme.my.salesforce.com' },
    });
    expect(await fallback(query())).toBe('https://acme.my.salesforce.com');
    const cleartext = linkedTo({
      provider: 'salesforce',
      tokenExtra: { instanceUrl: 'http://acme.my.salesforce.com' },
    });
    expect(await cleartext.fallback(query())).toBe('https://login.salesforce.com');
  });

  it('gives nothing for an unlinked credential, an unknown provider, one with no API, or a non-OAuth type', async () => {
    expect(await linkedTo(undefined).fallback(query())).toBeUndefined();
    expect(await linkedTo({ provider: 'no-such-provider' }).fallback(query())).toBeUndefined();
    expect(await linkedTo({ provider: 'generic' }).fallback(query())).toBeUndefined();
    const apiKey = linkedTo({ provider: 'github' });
    expect(await apiKey.fallback(query('api_key'))).toBeUndefined();
    // Not even asked: only OAuth credentials come from a provider.
    expect(apiKey.asked).toHaveLength(0);
  });
});
