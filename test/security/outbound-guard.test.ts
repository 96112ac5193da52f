import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, codeOf, serveJwks } from '../agents/agent-fixtures.js';
import { startOidcIssuer, type TestIssuer } from '../agents/oidc-issuer.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/**
 * Issue 10 finding 7: an issuer's discovery document chose `jwks_uri`, checked only for its scheme, so
 * a trusted issuer could point the vault at internal URLs. Every fetch on someone else's say-so now
 * goes through the outbound guard, with a local issuer on 127.0.0.1 standing in for one on a private
 * network.
 */
describe('outbound fetches of the vault', () => {
  let issuer: TestIssuer;
  let t: TestVault | undefined;

  beforeAll(async () => {
    issuer = await startOidcIssuer({ ci: {} });
  });
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });
  afterAll(() => issuer.stop());

  const trust = (vault: TestVault, url: string) =>
    admin(vault, 'POST', '/v1/admin/issuers', { name: 'ci', issuer: url });

  it('refuses a loopback issuer unless TOKENVAULT_OUTBOUND_ALLOW names it', async () => {
    t = await startTestVault();
    const refused = await trust(t, issuer.issuer);
    expect(refused.status, refused.text).toBe(502);
    expect(codeOf(refused.body)).toBe('issuer_unreachable');
    expect(refused.text).toMatch(/loopback address/);
    await t.stop();

    t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
    const trusted = await trust(t, issuer.issuer);
    expect(trusted.status, trusted.text).toBe(201);
  });

  it("refuses a jwks_uri off the issuer's origin unless TOKENVAULT_JWKS_HOSTS names its host", async () => {
    // An issuer whose discovery document sends the vault elsewhere (`localhost` is another origin).
    const keys = await serveJwks({ keys: [] });
    const jwksElsewhere = keys.url.replace('127.0.0.1', 'localhost');
    let server: Server | undefined;
    try {
      server = createServer((_request, response) => {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ issuer: url, jwks_uri: jwksElsewhere }));
      });
      await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

      t = await startTestVault({ settings: { outboundAllow: '127.0.0.1,localhost' } });
      const refused = await trust(t, url);
      expect(refused.status, refused.text).toBe(502);
      expect(refused.text).toMatch(/not on the issuer's origin/);
      await t.stop();

      t = await startTestVault({
        settings: { outboundAllow: '127.0.0.1,localhost', jwksHosts: 'localhost' },
      });
      expect((await trust(t, url)).status).toBe(201);
    } finally {
      await keys.stop();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  });

  it('does not follow a discovery redirect towards a cloud metadata address', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      t = await startTestVault({ settings: { outboundAllow: '127.0.0.1' } });
      const refused = await trust(t, url);
      expect(refused.status, refused.text).toBe(502);
      expect(codeOf(refused.body)).toBe('issuer_unreachable');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
