import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import type { VaultServices } from '../../services.js';
import { withErrors } from '../schemas/common-schemas.js';
import { ProviderList, toProviderView } from '../schemas/oauth-schemas.js';

const tags = ['oauth'];
const security = [{ adminToken: [] }];

/**
 * Reading the catalog writes no event: it is the shipped provider data, public (it restates each
 * provider's documentation), the same for every namespace and caller, and neither holds nor reveals
 * anything of the vault's. A failed admin authentication on it is still recorded (`admin.authenticate`).
 */
const catalogRead = {
  none: 'lists the shipped provider catalog: public, static data, the same for everyone; no secret, no change',
};

export const registerOAuthRoutes = (
  app: FastifyInstance,
  { oauthProviders: providers }: Pick<VaultServices, 'oauthProviders'>,
) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/v1/admin/oauth/providers',
    {
      config: { audit: catalogRead, role: ['operator', 'auditor'] },
      schema: {
        tags,
        security,
        summary: 'The OAuth provider catalog: endpoints, PKCE, refresh behaviour and API base URL of each',
        response: withErrors({ 200: ProviderList }),
      },
    },
    async () => ({ items: providers.list().map(toProviderView) }),
  );
};
