// A vault process for the multi-process refresh tests and the kill script: the built server (dist/,
// `npm run build` first) with the connect flow's OAuth app resolver stood in by one app of the local
// OAuth server named in the environment. Prints "listening on URL" like `tokenvault serve`.
import { loadConfig } from '../../dist/config/load-config.js';
import { createVault } from '../../dist/main.js';
import { loadProviderCatalog } from '../../dist/oauth/provider-catalog.js';

const env = process.env;
const issuer = env.OAUTH_ISSUER;
const app = {
  appId: 'local-app',
  provider: loadProviderCatalog().get('generic'),
  app: {
    clientId: env.OAUTH_CLIENT_ID,
    clientSecret: env.OAUTH_CLIENT_SECRET,
    issuer,
    settings: { endpoints: { token: `${issuer}/token`, revocation: `${issuer}/token/revocation` } },
  },
};
const config = loadConfig({ dataDir: env.VAULT_DATA_DIR, databaseUrl: env.VAULT_DATABASE_URL, port: '0' });
const vault = await createVault(config, {
  oauthRefresh: {
    resolveApp: async () => app,
    tokenClient: { allowHttp: true },
    settings: env.REFRESH_LEASE_MS ? { leaseMs: Number(env.REFRESH_LEASE_MS) } : {},
    scheduler: {
      pollMs: Number(env.REFRESH_POLL_MS ?? 1000),
      adoptEveryMs: Number(env.REFRESH_ADOPT_MS ?? 60000),
    },
  },
});
const url = await vault.listen();
process.stdout.write(`listening on ${url}\n`);
process.on('SIGTERM', () => void vault.stop().then(() => process.exit(0)));
