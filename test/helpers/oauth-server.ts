/**
 * A real OAuth 2.0 / OpenID Connect server for tests: panva's certified `oidc-provider` on loopback.
 *
 *   const op = await startOAuthServer({ accessTokenTtl: 5, redirectUris: ['http://127.0.0.1:9/cb'] });
 *   op.issuer                      // http://127.0.0.1:PORT (discovery at /.well-known/openid-configuration)
 *   op.client                      // { client_id, client_secret } of the default confidential client
 *                                  //   (client_secret_basic; code, refresh, device, client credentials)
 *   op.addClient({ client_id, client_secret, redirect_uris, ... })  // more clients, any time
 *   op.resource, op.resourceScopes // the API (RFC 8707) its access tokens are for: 'api:read api:write'
 *
 *   const browser = op.browser({ account: 'alice' });      // a cookie-jar "person" (deny: true refuses)
 *   const page = await browser.get(authorizationUrl);      // follows redirects, signs in, consents,
 *   page.url, page.status, page.body                       //   and ends on the first non-redirect
 *   await browser.post(url, { field: 'value' });           // a form post, same redirect handling
 *   await browser.approveDevice(userCode);                 // RFC 8628: enter the code, sign in, consent
 *
 *   op.tokenRequests('refresh_token')  // token-endpoint requests of that grant type (all when omitted)
 *   op.devicePolls()                   // each device-code token request: { deviceCode, at, slowDown }
 *   op.tokenSuccesses('refresh_token') // ... of those, answered 200
 *   op.tokenResources('refresh_token') // the RFC 8707 `resource` each of those sent ('' for none)
 *   op.failTokenRequests({ grantType: 'refresh_token', status: 503, times: 2 }) // inject failures
 *   op.metadataDocumentFetches()       // client_id URLs it fetched as Client ID Metadata Documents
 *   await op.introspect(accessToken)   // RFC 7662, as the default client
 *   await op.stop()
 *
 * What it is configured for: authorization code with PKCE (S256 only, required by default), login and
 * consent pages a test drives over plain HTTP, refresh tokens issued to every client allowed the
 * `refresh_token` grant and rotated on every use (reusing a rotated one revokes the grant, as real
 * providers do), access tokens that live `accessTokenTtl` seconds (opaque, so introspection is the
 * truth), the device authorization grant with an `interval` and `slow_down` when polled faster than
 * it, client credentials, introspection, revocation, resource indicators, dynamic client registration
 * (RFC 7591, open) and RFC 9207 `iss` in authorization responses. Its state lives in memory per server.
 * With `clientIdMetadataDocuments`, it also accepts an https URL as a client_id and fetches the client's
 * metadata from it (its experimental `clientIdMetadataDocument` feature, draft 02) with the fetch given,
 * which a test points at a server with its own certificate.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

export interface OAuthServerOptions {
  /** Seconds an access token lives (default 60). */
  accessTokenTtl?: number;
  /** Seconds a refresh token lives (default 14 days). */
  refreshTokenTtl?: number;
  /** Redirect URIs of the default client (more can be added with `addClient`). */
  redirectUris?: string[];
  /** Require PKCE on every authorization request (default true). */
  requirePkce?: boolean;
  /** The device flow's polling interval in seconds, sent with the device code (default 1). */
  deviceInterval?: number;
  /** Answer the first poll of each device code with `slow_down`, to prove a client honours it. */
  slowDownFirstPoll?: boolean;
  /**
   * Prefix every device code it issues with this (and strip it from polls): a canary test's marker,
   * so a device code leaked anywhere is found by the canary search.
   */
  deviceCodePrefix?: string;
  /** The API's resource indicator and its scopes. */
  resource?: string;
  resourceScopes?: string[];
  /** Accept Client ID Metadata Documents, fetched with this (it replaces the SSRF-guarded default). */
  clientIdMetadataDocuments?: { fetch: (url: string, init: RequestInit) => Promise<Response> };
}

export interface BrowserPage {
  url: string;
  status: number;
  body: string;
}

export interface TestBrowser {
  get(url: string): Promise<BrowserPage>;
  post(url: string, form: Record<string, string>): Promise<BrowserPage>;
  approveDevice(userCode: string): Promise<BrowserPage>;
}

export interface ClientMetadata {
  client_id: string;
  client_secret?: string;
  redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
  [key: string]: unknown;
}

export interface TestOAuthServer {
  issuer: string;
  client: { client_id: string; client_secret: string };
  resource: string;
  resourceScopes: string[];
  addClient(metadata: ClientMetadata): void;
  browser(options?: { account?: string; deny?: boolean }): TestBrowser;
  tokenRequests(grantType?: string): number;
  /** Every device-code token request, in order: the code as the client sent it, when, and whether it was told `slow_down`. */
  devicePolls(): { deviceCode: string; at: number; slowDown: boolean }[];
  /** The device codes issued so far, as the client got them. */
  deviceCodes(): string[];
  tokenSuccesses(grantType?: string): number;
  tokenResources(grantType: string): string[];
  failTokenRequests(failure: {
    grantType: string;
    status: number;
    times?: number;
    body?: Record<string, unknown>;
    headers?: Record<string, string>;
  }): void;
  introspect(token: string): Promise<Record<string, unknown>>;
  metadataDocumentFetches(): string[];
  stop(): Promise<void>;
}

/** The slice of oidc-provider's API this helper uses (the package ships no types). */
interface ProviderApi {
  callback(): (request: IncomingMessage, response: ServerResponse) => void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
  interactionDetails(request: IncomingMessage, response: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    request: IncomingMessage,
    response: ServerResponse,
    result: Record<string, unknown>,
    options?: { mergeWithLastSubmission?: boolean },
  ): Promise<void>;
  Grant: new (init: { accountId: string; clientId: string }) => GrantApi;
}
interface KoaContext {
  method: string;
  path: string;
  status: number;
  body: unknown;
}
interface InteractionDetails {
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId: string };
  grantId?: string;
}
interface GrantApi {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}

const deviceCodeGrant = 'urn:ietf:params:oauth:grant-type:device_code';

export const startOAuthServer = async (options: OAuthServerOptions = {}): Promise<TestOAuthServer> => {
  const accessTokenTtl = options.accessTokenTtl ?? 60;
  const resource = options.resource ?? 'https://api.test.example/';
  const resourceScopes = options.resourceScopes ?? ['api:read', 'api:write'];
  const deviceInterval = options.deviceInterval ?? 1;
  const client = { client_id: 'vault-test-client', client_secret: randomBytes(24).toString('base64url') };
  const clients = new Map<string, ClientMetadata>();
  const addClient = (metadata: ClientMetadata): void => {
    clients.set(metadata.client_id, {
      grant_types: ['authorization_code', 'refresh_token', deviceCodeGrant, 'client_credentials'],
      response_types: ['code'],
      redirect_uris: [],
      token_endpoint_auth_method: metadata.client_secret ? 'client_secret_basic' : 'none',
      ...metadata,
    });
  };
  // oidc-provider insists a code-flow client has a redirect URI; one nobody listens on stands in.
  addClient({ ...client, redirect_uris: options.redirectUris ?? ['http://127.0.0.1:9/unused-callback'] });

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const Adapter = memoryAdapter(clients);
  const documentFetches: string[] = [];
  const documents = options.clientIdMetadataDocuments;
  const provider = new Provider(issuer, {
    adapter: Adapter,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: () => ({ sub, email: `${sub}@example.test`, name: sub }),
    }),
    claims: { openid: ['sub'], email: ['email'], profile: ['name'] },
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    pkce: { required: () => options.requirePkce ?? true },
    issueRefreshToken: (_ctx: unknown, c: { grantTypeAllowed(type: string): boolean }) =>
      c.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: () => true,
    // Its only outbound fetch in these tests is of metadata documents: counted, then made as told.
    ...(documents
      ? {
          fetch: (url: URL | string, init: RequestInit) => {
            documentFetches.push(String(url));
            return documents.fetch(String(url), init);
          },
        }
      : {}),
    features: {
      clientIdMetadataDocument: { enabled: !!documents, ...(documents ? { ack: 'draft-02' } : {}) },
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      introspection: { enabled: true, allowedPolicy: () => true },
      revocation: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        // The audience is the resource the client asked for (RFC 8707), so a test can tell which it was.
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => ({
          scope: resourceScopes.join(' '),
          audience: resourceIndicator,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: 'opaque',
        }),
      },
    },
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      RefreshToken: options.refreshTokenTtl ?? 14 * 24 * 3600,
      AuthorizationCode: 60,
      DeviceCode: 600,
      Grant: 30 * 24 * 3600,
      Interaction: 3600,
      Session: 3600,
      IdToken: 3600,
    },
  }) as unknown as ProviderApi;

  // oidc-provider sends no `interval` with a device code (RFC 8628 then means 5 s); tests want shorter.
  provider.use(async (ctx, next) => {
    await next();
    if (
      ctx.method === 'POST' &&
      ctx.path === '/device/auth' &&
      ctx.status === 200 &&
      ctx.body &&
      typeof ctx.body === 'object'
    ) {
      const body = ctx.body as Record<string, unknown>;
      body.interval = deviceInterval;
      if (options.deviceCodePrefix)
        body.device_code = `${options.deviceCodePrefix}${String(body.device_code)}`;
      issuedDeviceCodes.push(String(body.device_code));
    }
  });

  const requests = new Map<string, number>();
  const successes = new Map<string, number>();
  const resources: Array<{ grantType: string; resource: string }> = [];
  const bump = (counter: Map<string, number>, key: string) => counter.set(key, (counter.get(key) ?? 0) + 1);
  const failures: Array<{
    grantType: string;
    status: number;
    times: number;
    body?: Record<string, unknown>;
    headers?: Record<string, string>;
  }> = [];
  const lastPoll = new Map<string, number>();
  const issuedDeviceCodes: string[] = [];
  const devicePolls: { deviceCode: string; at: number; slowDown: boolean }[] = [];
  const providerCallback = provider.callback();

  const onToken = async (request: IncomingMessage, response: ServerResponse) => {
    // Read the form here to count and shape it; oidc-provider then uses `req.body` as already parsed.
    let raw = await readBody(request);
    const grantType = new URLSearchParams(raw).get('grant_type') ?? 'unknown';
    const sentDeviceCode = new URLSearchParams(raw).get('device_code') ?? '';
    if (grantType === deviceCodeGrant && options.deviceCodePrefix) {
      const form = new URLSearchParams(raw);
      form.set('device_code', sentDeviceCode.replace(options.deviceCodePrefix, ''));
      raw = form.toString();
    }
    (request as IncomingMessage & { body?: string }).body = raw;
    bump(requests, grantType);
    resources.push({ grantType, resource: new URLSearchParams(raw).get('resource') ?? '' });
    const failure = failures.find((f) => f.grantType === grantType && f.times > 0);
    if (failure) {
      failure.times -= 1;
      return sendJson(response, failure.status, failure.body ?? { error: 'server_error' }, failure.headers);
    }
    if (grantType === deviceCodeGrant) {
      const deviceCode = sentDeviceCode;
      const previous = lastPoll.get(deviceCode);
      lastPoll.set(deviceCode, Date.now());
      const tooFast = previous !== undefined && Date.now() - previous < deviceInterval * 1000 - 50;
      const slowDown = tooFast || (previous === undefined && !!options.slowDownFirstPoll);
      devicePolls.push({ deviceCode, at: Date.now(), slowDown });
      if (slowDown) return sendJson(response, 400, { error: 'slow_down' });
    }
    response.on('finish', () => {
      if (response.statusCode === 200) bump(successes, grantType);
    });
    providerCallback(request, response);
  };

  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', issuer);
    const interaction = /^\/interaction\/([^/]+)(?:\/(login|consent|abort))?$/.exec(url.pathname);
    const handle = interaction
      ? onInteraction(provider, request, response, interaction[2])
      : request.method === 'POST' && url.pathname === '/token'
        ? onToken(request, response)
        : Promise.resolve(providerCallback(request, response));
    handle.catch((error: unknown) => {
      if (!response.headersSent)
        sendJson(response, 500, { error: 'test_server_error', detail: String(error) });
    });
  });

  const count = (counter: Map<string, number>, grantType?: string) =>
    grantType === undefined
      ? [...counter.values()].reduce((a, b) => a + b, 0)
      : (counter.get(grantType) ?? 0);

  return {
    issuer,
    client,
    resource,
    resourceScopes,
    addClient,
    browser: (browserOptions = {}) =>
      createBrowser(issuer, browserOptions.account ?? 'alice', !!browserOptions.deny),
    tokenRequests: (grantType) => count(requests, grantType),
    devicePolls: () => [...devicePolls],
    deviceCodes: () => [...issuedDeviceCodes],
    tokenSuccesses: (grantType) => count(successes, grantType),
    tokenResources: (grantType) => resources.filter((r) => r.grantType === grantType).map((r) => r.resource),
    failTokenRequests: (failure) => failures.push({ ...failure, times: failure.times ?? 1 }),
    metadataDocumentFetches: () => [...documentFetches],
    async introspect(token) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        },
        body: new URLSearchParams({ token }),
      });
      return (await response.json()) as Record<string, unknown>;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

/** The login and consent pages: a person signs in as `login`, then grants everything asked, or aborts. */
const onInteraction = async (
  provider: ProviderApi,
  request: IncomingMessage,
  response: ServerResponse,
  action: string | undefined,
): Promise<void> => {
  const details = await provider.interactionDetails(request, response);
  if (!action) {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(
      `<!doctype html><html><head><meta name="prompt" content="${details.prompt.name}"></head><body>` +
        `<p>${details.prompt.name} for ${String(details.params.client_id)}</p>` +
        `<form method="post" action="${request.url}/login"><input name="login"><button>Sign in</button></form>` +
        `<form method="post" action="${request.url}/consent"><button>Allow</button></form>` +
        `<form method="post" action="${request.url}/abort"><button>Deny</button></form></body></html>`,
    );
    return;
  }
  const form = new URLSearchParams(await readBody(request));
  if (action === 'abort') {
    await provider.interactionFinished(
      request,
      response,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  if (action === 'login') {
    const accountId = form.get('login') || 'alice';
    await provider.interactionFinished(
      request,
      response,
      { login: { accountId } },
      { mergeWithLastSubmission: false },
    );
    return;
  }
  const grant = new provider.Grant({
    accountId: details.session?.accountId ?? 'alice',
    clientId: String(details.params.client_id),
  });
  const missing = details.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(
    request,
    response,
    { consent: { grantId } },
    { mergeWithLastSubmission: true },
  );
};

/** A minimal browser: one cookie jar per origin, redirects followed by hand, the provider's pages completed. */
const createBrowser = (issuer: string, account: string, deny: boolean): TestBrowser => {
  const jars = new Map<string, Map<string, string>>();
  const cookieHeader = (url: URL) =>
    [...(jars.get(url.origin) ?? new Map<string, string>())]
      .map(([name, value]) => `${name}=${value}`)
      .join('; ');
  const keepCookies = (url: URL, response: Response) => {
    const jar = jars.get(url.origin) ?? new Map<string, string>();
    jars.set(url.origin, jar);
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const expired = /max-age=0|expires=thu, 01 jan 1970/i.test(line);
      if (expired) jar.delete(name);
      else jar.set(name, pair.slice(at + 1).trim());
    }
  };

  const send = async (start: string, init: { method: string; form?: Record<string, string> }) => {
    let url = new URL(start);
    let method = init.method;
    let form = init.form;
    for (let hop = 0; hop < 40; hop += 1) {
      const response = await fetch(url, {
        method,
        redirect: 'manual',
        headers: {
          cookie: cookieHeader(url),
          ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(form ? { body: new URLSearchParams(form) } : {}),
      });
      keepCookies(url, response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location) {
        await response.arrayBuffer();
        url = new URL(location, url);
        method = 'GET';
        form = undefined;
        continue;
      }
      const body = await response.text();
      const prompt = /<meta name="prompt" content="(\w+)">/.exec(body)?.[1];
      if (url.origin === issuer && url.pathname.startsWith('/interaction/') && prompt) {
        const step = deny ? 'abort' : prompt === 'login' ? 'login' : 'consent';
        url = new URL(`${url.pathname}/${step}`, url);
        method = 'POST';
        form = step === 'login' ? { login: account } : {};
        continue;
      }
      return { url: url.href, status: response.status, body };
    }
    throw new Error(`too many redirects from ${start}`);
  };

  const xsrfOf = (page: BrowserPage) => {
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(page.body)?.[1];
    if (!xsrf) throw new Error(`no device form on ${page.url} (${page.status})`);
    return xsrf;
  };

  return {
    get: (url) => send(url, { method: 'GET' }),
    post: (url, form) => send(url, { method: 'POST', form }),
    async approveDevice(userCode) {
      const input = await send(`${issuer}/device`, { method: 'GET' });
      const confirm = await send(`${issuer}/device`, {
        method: 'POST',
        form: { xsrf: xsrfOf(input), user_code: userCode },
      });
      return send(`${issuer}/device`, {
        method: 'POST',
        form: {
          xsrf: xsrfOf(confirm),
          user_code: userCode,
          ...(deny ? { abort: 'yes' } : { confirm: 'yes' }),
        },
      });
    },
  };
};

/**
 * oidc-provider's bundled memory adapter keeps one 1,000-entry LRU for every provider in the process,
 * which would evict tokens under a benchmark's load; this one is unbounded and per server. Clients are
 * read from the helper's own map, so `addClient` works after start.
 */
const memoryAdapter = (clients: Map<string, ClientMetadata>) => {
  interface Entry {
    payload: Record<string, unknown>;
    expiresAt: number;
  }
  const store = new Map<string, Entry>();
  const byGrant = new Map<string, Set<string>>();
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  return class MemoryAdapter {
    constructor(private readonly model: string) {}
    private key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number) {
      if (this.model === 'Client') {
        clients.set(id, payload as ClientMetadata);
        return;
      }
      const key = this.key(id);
      store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
      if (typeof payload.grantId === 'string') {
        const members = byGrant.get(payload.grantId) ?? new Set<string>();
        members.add(key);
        byGrant.set(payload.grantId, members);
      }
      if (typeof payload.uid === 'string') byUid.set(payload.uid, id);
      if (typeof payload.userCode === 'string') byUserCode.set(payload.userCode, id);
    }
    async find(id: string) {
      if (this.model === 'Client') return clients.get(id);
      const entry = store.get(this.key(id));
      if (!entry) return undefined;
      if (entry.expiresAt <= Date.now()) {
        store.delete(this.key(id));
        return undefined;
      }
      return entry.payload;
    }
    async findByUid(uid: string) {
      const id = byUid.get(uid);
      return id === undefined ? undefined : this.find(id);
    }
    async findByUserCode(userCode: string) {
      const id = byUserCode.get(userCode);
      return id === undefined ? undefined : this.find(id);
    }
    async consume(id: string) {
      const entry = store.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      if (this.model === 'Client') clients.delete(id);
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      for (const key of byGrant.get(grantId) ?? []) store.delete(key);
      byGrant.delete(grantId);
    }
  };
};

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

const sendJson = (
  response: ServerResponse,
  status: number,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) => {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  response.end(JSON.stringify(body));
};
