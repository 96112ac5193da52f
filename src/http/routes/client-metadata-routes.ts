import type { FastifyInstance } from 'fastify';
import { VaultError } from '../../errors/vault-error.js';
import { clientMetadataPath } from '../../oauth/client-metadata-document.js';
import type { VaultServices } from '../../services.js';

/**
 * The vault's Client ID Metadata Document (src/oauth/client-metadata-document.ts), fetched by an
 * authorization server the first time it sees the vault's URL as a client_id. Public and unauthenticated
 * by design: it holds only what any registration would publish, never a secret. 404 while the vault has
 * no https public URL (no server would accept an http client_id).
 */
export const registerClientMetadataRoutes = (
  app: FastifyInstance,
  { oauthApps }: Pick<VaultServices, 'oauthApps'>,
) => {
  app.get(
    clientMetadataPath,
    {
      config: { audit: { none: 'public client metadata, the same for everyone; no secret, no state' } },
      schema: { hide: true },
    },
    async (_request, reply) => {
      const document = oauthApps.clientMetadataDocument();
      if (!document) {
        throw new VaultError(
          'not_found',
          'The vault serves its client metadata document only at an https public URL (TOKENVAULT_PUBLIC_URL).',
        );
      }
      // Servers cache it by these headers (the draft's cache rules); it changes only with the public URL.
      return reply.header('cache-control', 'public, max-age=300').type('application/json').send(document);
    },
  );
};
