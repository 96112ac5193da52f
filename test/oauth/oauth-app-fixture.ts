import { createServer } from 'node:net';
import { expect } from 'vitest';
import type { cliAgainst } from '../helpers/cli-in-process.js';
import type { TestOAuthServer } from '../helpers/oauth-server.js';

/** A loopback port nothing listens on now: the vault's, so its public URL is known before it starts. */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/**
 * `tokenvault oauth app add oidc NAME` for the test provider's default client, through the real CLI,
 * as the connect tests set up their app (`oauth-apps.test.ts` tests the command itself).
 */
export const addOidcApp = async (
  cli: ReturnType<typeof cliAgainst>,
  op: TestOAuthServer,
  { name, scopes, flags = [] }: { name: string; scopes: string; flags?: string[] },
) => {
  const added = await cli(
    [
      'oauth',
      'app',
      'add',
      'oidc',
      '--name',
      name,
      '--issuer',
      op.issuer,
      '--client-id',
      op.client.client_id,
      '--client-secret-stdin',
      '--scopes',
      scopes,
      ...flags,
    ],
    op.client.client_secret,
  );
  expect(added.code, added.stderr).toBe(0);
};
