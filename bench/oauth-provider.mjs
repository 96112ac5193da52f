// The OAuth server of the oauth-refresh section, in its own process (`server-child.mjs op`): panva's
// certified oidc-provider on loopback, configured as test/helpers/oauth-server.ts configures it for the
// tests (rotating refresh tokens on every use, a reused one revokes its grant; opaque access tokens of
// `BENCH_OP_ACCESS_TTL` seconds; an unbounded in-memory store), without the pages a person drives.
//
// Tokens for 10,000 credentials: a person's consent through the login and consent pages costs about
// 150 ms here (25 minutes for 10,000), so `mint` issues them the way the provider's own
// authorization-code grant does once consent is given: a Grant saved with the scopes, then a
// RefreshToken and an AccessToken of that grant through the provider's models, stored in its adapter.
// Every refresh the vault makes then goes to the real token endpoint, which finds, checks and
// rotates them like any other.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const resource = 'https://api.bench.example/';
const resourceScopes = ['api:read', 'api:write'];

/** oidc-provider's bundled adapter is a 1,000-entry LRU shared by the process: this one keeps all. */
const memoryAdapter = (clients) => {
  const store = new Map();
  const byGrant = new Map();
  return class MemoryAdapter {
    constructor(model) {
      this.model = model;
    }
    key(id) {
      return `${this.model}:${id}`;
    }
    async upsert(id, payload, expiresIn) {
      if (this.model === 'Client') return void clients.set(id, payload);
      const key = this.key(id);
      store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
      if (typeof payload.grantId === 'string') {
        const members = byGrant.get(payload.grantId) ?? new Set();
        members.add(key);
        byGrant.set(payload.grantId, members);
      }
    }
    async find(id) {
      if (this.model === 'Client') return clients.get(id);
      const entry = store.get(this.key(id));
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        store.delete(this.key(id));
        return undefined;
      }
      return entry.payload;
    }
    async findByUid() {
      return undefined;
    }
    async findByUserCode() {
      return undefined;
    }
    async consume(id) {
      const entry = store.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId) {
      for (const key of byGrant.get(grantId) ?? []) store.delete(key);
      byGrant.delete(grantId);
    }
  };
};

export const startOAuthProvider = async () => {
  const accessTokenTtl = Number(process.env.BENCH_OP_ACCESS_TTL ?? 3600);
  const client = {
    client_id: 'vault-bench-client',
    client_secret: randomBytes(24).toString('base64url'),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:9/unused-callback'],
    token_endpoint_auth_method: 'client_secret_basic',
  };
  const clients = new Map([[client.client_id, client]]);
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(clients),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    scopes: ['openid', 'offline_access'],
    issueRefreshToken: () => true,
    rotateRefreshToken: () => true,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: resourceScopes.join(' '),
          audience: resource,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: 'opaque',
        }),
      },
    },
    ttl: {
      AccessToken: accessTokenTtl,
      RefreshToken: 14 * 24 * 3600,
      AuthorizationCode: 60,
      Grant: 30 * 24 * 3600,
      Interaction: 3600,
      Session: 3600,
      IdToken: 3600,
    },
  });
  // Token endpoint requests by grant type, and those answered 200: the provider's count of refreshes.
  const requests = new Map();
  const successes = new Map();
  const bump = (counter, key) => counter.set(key, (counter.get(key) ?? 0) + 1);
  const callback = provider.callback();
  server.on('request', (request, response) => {
    if (request.method === 'POST' && request.url === '/token') {
      const chunks = [];
      request.on('data', (chunk) => chunks.push(chunk));
      request.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        request.body = raw;
        const grantType = new URLSearchParams(raw).get('grant_type') ?? 'unknown';
        bump(requests, grantType);
        response.on('finish', () => {
          if (response.statusCode === 200) bump(successes, grantType);
        });
        callback(request, response);
      });
      return;
    }
    callback(request, response);
  });

  const clientModel = await provider.Client.find(client.client_id);
  /**
   * Tokens for `expiresAt.length` consents, one account each: the refresh token (rotating, 14 days),
   * and an access token that expires at the given time (ms since the epoch).
   */
  const mint = async ({ expiresAt, accountPrefix = 'bench-user-' }) => {
    const issued = [];
    const now = Date.now();
    for (const [i, at] of expiresAt.entries()) {
      const accountId = `${accountPrefix}${i}`;
      const grant = new provider.Grant({ accountId, clientId: client.client_id });
      grant.addOIDCScope('offline_access');
      grant.addResourceScope(resource, resourceScopes.join(' '));
      const grantId = await grant.save();
      const common = { accountId, client: clientModel, grantId, gty: 'authorization_code' };
      const refresh = new provider.RefreshToken({
        ...common,
        authTime: Math.floor(now / 1000),
        expiresWithSession: false,
        resource,
        rotations: 0,
        scope: `offline_access ${resourceScopes.join(' ')}`,
      });
      const access = new provider.AccessToken({
        ...common,
        expiresIn: Math.max(1, Math.round((at - now) / 1000)),
        expiresWithSession: false,
        scope: resourceScopes.join(' '),
      });
      access.resourceServer = new provider.ResourceServer(resource, {
        scope: resourceScopes.join(' '),
        audience: resource,
        accessTokenFormat: 'opaque',
      });
      issued.push({ access_token: await access.save(), refresh_token: await refresh.save() });
    }
    return issued;
  };

  const count = (counter) => Object.fromEntries(counter);
  return {
    url: issuer,
    client: { client_id: client.client_id, client_secret: client.client_secret },
    resource,
    mint,
    stats: () => ({ requests: count(requests), successes: count(successes) }),
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
};
