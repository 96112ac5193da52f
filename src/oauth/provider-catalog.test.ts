import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildProviderCatalog,
  defaultProvidersDir,
  loadProviderCatalog,
  ProviderCatalogError,
  validateProviderEntry,
} from './provider-catalog.js';
import type { ProviderEntry } from './provider-schema.js';
import { canNarrowScopes } from './refresh/downscope.js';
import {
  ProviderSettingsError,
  resolveApi,
  resolveEndpoints,
  resolveParameters,
} from './provider-template.js';

const catalog = loadProviderCatalog();
const entry = (name: string): ProviderEntry => {
  const found = catalog.get(name);
  if (!found) throw new Error(`${name} is not in the catalog`);
  return found;
};

/** A valid minimal entry to break one field at a time. */
const minimal = (): Record<string, unknown> => ({
  name: 'acme',
  displayName: 'Acme',
  kind: 'oauth2',
  docs: 'https://acme.example/docs',
  endpoints: { authorization: 'https://acme.example/authorize', token: 'https://acme.example/token' },
  scopes: { separator: ' ', default: [] },
  pkce: 'supported',
  clientAuth: 'client_secret_basic',
  tokenResponse: { assumedLifetimeSeconds: 3600 },
  refresh: { expires: true, supported: true, rotation: 'never', singleUse: false },
});

const problemsOf = (raw: unknown, file = 'acme.json') => validateProviderEntry(raw, file).problems;

describe('the shipped provider catalog', () => {
  it('loads and holds every provider the issue names, plus generic and oidc', () => {
    const names = catalog.list().map((e) => e.name);
    for (const name of [
      'google',
      'microsoft',
      'github',
      'github-app',
      'slack',
      'notion',
      'atlassian',
      'salesforce',
      'hubspot',
      'dropbox',
      'zoom',
      'linear',
      'gitlab',
      'asana',
      'discord',
      'figma',
      'zendesk',
      'generic',
      'oidc',
    ]) {
      expect(names).toContain(name);
    }
    expect(names).toEqual([...names].sort());
  });

  it('is frozen: a loaded entry cannot be changed by its users', () => {
    const google = entry('google');
    expect(() => {
      (google.scopes.default as string[]).push('x');
    }).toThrow(TypeError);
  });

  it('gives every provider whose tokens expire an assumed lifetime shorter than any idle expiry', () => {
    for (const e of catalog.list()) {
      if (!e.refresh.expires) continue;
      expect(e.tokenResponse.assumedLifetimeSeconds, e.name).toBeDefined();
      if (e.refresh.idleExpiryDays) {
        expect(e.tokenResponse.assumedLifetimeSeconds!, e.name).toBeLessThan(
          e.refresh.idleExpiryDays * 86_400,
        );
      }
    }
  });

  it('describes the documented quirks as data', () => {
    expect(entry('google').extraParams?.authorize).toMatchObject({
      access_type: 'offline',
      prompt: 'consent',
    });
    expect(entry('dropbox').extraParams?.authorize).toEqual({ token_access_type: 'offline' });
    expect(entry('github').refresh).toMatchObject({ expires: false, supported: false });
    expect(entry('github-app').variant?.of).toBe('github');
    expect(entry('github-app').refresh).toMatchObject({ rotation: 'always', singleUse: true });
    expect(entry('slack').tokenResponse.nestedTokens?.[0]).toMatchObject({
      key: 'userToken',
      path: 'authed_user',
    });
    expect(entry('slack').refresh).toMatchObject({ singleUse: true, accessTokenLifetimeSeconds: 43_200 });
    expect(entry('atlassian').refresh).toMatchObject({ rotation: 'always', idleExpiryDays: 90 });
    expect(entry('salesforce').api?.baseUrlFromToken).toBe('instanceUrl');
    expect(entry('notion').api?.inject.map((i) => i.name)).toEqual(['Authorization', 'Notion-Version']);
    expect(entry('figma')).toMatchObject({
      endpoints: { refresh: 'https://api.figma.com/v1/oauth/refresh' },
    });
    expect(entry('oidc').kind).toBe('oidc');
    expect(entry('generic').kind).toBe('generic');
  });

  it('declares narrower-scope refresh only where the provider documents it', () => {
    // Google and Microsoft identity platform v2 take `scope` on a refresh (a subset of the grant),
    // Dropbox calls it downscoping; no other catalog provider documents it.
    const narrowing = catalog
      .list()
      .filter((e) => e.kind === 'oauth2' && e.refresh.narrowerScopes === true)
      .map((e) => e.name)
      .sort();
    expect(narrowing).toEqual(['dropbox', 'google', 'microsoft']);
    expect(canNarrowScopes(entry('google'))).toBe(true);
    expect(canNarrowScopes(entry('slack'))).toBe(false);
    expect(canNarrowScopes(entry('oidc'))).toBe(true);
    const refresh = { expires: true, supported: false, rotation: 'never', singleUse: false };
    expect(problemsOf({ ...minimal(), refresh: { ...refresh, narrowerScopes: true } })).toEqual([
      'acme.json: /refresh/narrowerScopes: narrower scopes are asked for on a refresh, which this provider has not',
    ]);
  });
});

describe('checking a provider data file', () => {
  it('accepts the minimal entry', () => {
    expect(problemsOf(minimal())).toEqual([]);
  });

  it('reports schema problems with the file and the JSON path', () => {
    const raw = { ...minimal(), pkce: 'maybe', scopes: { separator: ' ' } };
    const problems = problemsOf(raw);
    expect(problems).toContainEqual(expect.stringMatching(/^acme\.json: \/pkce:/));
    expect(problems).toContainEqual(expect.stringMatching(/^acme\.json: \/scopes\/default:/));
  });

  it('refuses an unknown kind and an unknown field', () => {
    expect(problemsOf({ ...minimal(), kind: 'saml' })).toEqual([
      'acme.json: /kind: must be one of oauth2, oidc, generic',
    ]);
    expect(problemsOf({ ...minimal(), tokenUrl: 'https://x' }).join('\n')).toMatch(/acme\.json: \/tokenUrl/);
  });

  it('needs the name to be the file name', () => {
    expect(problemsOf(minimal(), 'other.json')).toEqual(['other.json: /name: must be the file name (acme)']);
  });

  it('checks templates against the declared parameters, and parameters against their patterns', () => {
    const problems = problemsOf({
      ...minimal(),
      parameters: [
        { name: 'tenant', description: 'd', pattern: '[a-z]+', default: 'UPPER' },
        { name: 'unused', description: 'd', pattern: '[a-z]+', default: 'x' },
        { name: 'broken', description: 'd', pattern: '([a-z', example: 'x' },
      ],
      endpoints: {
        authorization: 'https://login.example/{tenant}/authorize',
        token: 'https://{region}.example/token',
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        'acme.json: /parameters/0: its default does not match pattern',
        'acme.json: /parameters/1: unused is used by no URL',
        'acme.json: /parameters/2/pattern: not a valid regular expression',
        'acme.json: /endpoints/token: {region} is not declared in parameters',
      ]),
    );
  });

  it('needs https URLs once the templates are filled', () => {
    const problems = problemsOf({
      ...minimal(),
      endpoints: { authorization: 'https://acme.example/a', token: 'http://acme.example/token' },
    });
    expect(problems).toEqual([
      'acme.json: /endpoints/token: must be an https URL (filled with the defaults: http://acme.example/token)',
    ]);
  });

  it('checks the fields that must agree with each other', () => {
    const problems = problemsOf({
      ...minimal(),
      tokenResponse: {},
      refresh: { expires: true, supported: false, rotation: 'always', singleUse: false },
      api: {
        baseUrl: 'https://api.acme.example',
        baseUrlFromToken: 'instanceUrl',
        inject: [{ in: 'header', name: 'Authorization', template: 'Bearer {{refresh_token}}' }],
      },
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('/tokenResponse/assumedLifetimeSeconds: required when tokens expire'),
        expect.stringContaining('/refresh: rotation and singleUse describe refresh tokens'),
        expect.stringContaining('/api/baseUrlFromToken: instanceUrl is not in tokenResponse.extraFields'),
        expect.stringContaining('/api/inject/0/template: {{refresh_token}} is neither access_token'),
      ]),
    );
    expect(
      problemsOf({
        ...minimal(),
        refresh: { expires: true, supported: true, rotation: 'never', singleUse: true },
      }),
    ).toEqual(['acme.json: /refresh: a single-use refresh token must rotate']);
  });

  it('reports every problem of every file at once, and an unknown variant', () => {
    const bad = { ...minimal(), name: 'bad', pkce: 'maybe' };
    const variant = { ...minimal(), name: 'acme-v2', variant: { of: 'acme-v1', description: 'd' } };
    let caught: unknown;
    try {
      buildProviderCatalog({ 'bad.json': bad, 'acme-v2.json': variant });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ProviderCatalogError);
    const { problems } = caught as ProviderCatalogError;
    expect(problems).toContainEqual(expect.stringMatching(/^bad\.json: \/pkce/));
    expect(problems).toContain('acme-v2.json: /variant/of: no provider is named acme-v1');
  });
});

describe('adding a provider', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is a data file: the loader picks it up, and a broken file stops the load with its name', () => {
    dir = mkdtempSync(join(tmpdir(), 'providers-'));
    for (const file of readdirSync(defaultProvidersDir))
      copyFileSync(join(defaultProvidersDir, file), join(dir, file));
    writeFileSync(join(dir, 'acme.json'), JSON.stringify(minimal()));
    expect(loadProviderCatalog(dir).get('acme')).toMatchObject({ name: 'acme', kind: 'oauth2' });

    writeFileSync(join(dir, 'broken.json'), '{"name": ');
    expect(() => loadProviderCatalog(dir)).toThrow(/broken\.json: not valid JSON/);
  });
});

describe('filling templates from an app’s settings', () => {
  it('fills Microsoft’s tenant, with common by default', () => {
    const microsoft = entry('microsoft');
    expect(resolveEndpoints(microsoft, {}).token).toBe(
      'https://login.microsoftonline.com/common/oauth2/v2.0/token',
    );
    expect(
      resolveEndpoints(microsoft, { parameters: { tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47' } })
        .authorization,
    ).toBe('https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/authorize');
  });

  it('needs Zendesk’s subdomain, and refuses a value that would change the host', () => {
    const zendesk = entry('zendesk');
    expect(() => resolveEndpoints(zendesk, {})).toThrow(/subdomain is required/);
    expect(resolveEndpoints(zendesk, { parameters: { subdomain: 'acme' } }).token).toBe(
      'https://acme.zendesk.com/oauth/tokens',
    );
    for (const evil of ['evil.com#', 'acme.evil.com/x', 'a/b', 'a?b']) {
      expect(() => resolveParameters(zendesk, { subdomain: evil }), evil).toThrow(ProviderSettingsError);
    }
  });

  it('keeps Salesforce logins on Salesforce hosts', () => {
    const salesforce = entry('salesforce');
    expect(resolveEndpoints(salesforce, { parameters: { loginHost: 'acme.my.salesforce.com' } }).token).toBe(
      'https://acme.my.salesforce.com/services/oauth2/token',
    );
    expect(() => resolveParameters(salesforce, { loginHost: 'salesforce.com.evil.example' })).toThrow(
      /loginHost must match/,
    );
  });

  it('reports unknown settings together with missing ones', () => {
    let caught: unknown;
    try {
      resolveParameters(entry('zendesk'), { tenant: 'x' });
    } catch (error) {
      caught = error;
    }
    expect((caught as ProviderSettingsError).problems).toEqual([
      '"tenant" is not a setting of zendesk (known: subdomain)',
      "subdomain is required: the account's subdomain (acme for acme.zendesk.com)",
    ]);
  });

  it('takes generic endpoints by hand and oidc ones from discovery, https only', () => {
    expect(() => resolveEndpoints(entry('generic'), {})).toThrow(/given by hand/);
    expect(() => resolveEndpoints(entry('oidc'), { parameters: { issuer: 'https://id.example' } })).toThrow(
      /discovery/,
    );
    const endpoints = { authorization: 'https://as.example/authorize', token: 'https://as.example/token' };
    expect(resolveEndpoints(entry('generic'), { endpoints })).toEqual(endpoints);
    expect(() =>
      resolveEndpoints(entry('generic'), { endpoints: { token: 'http://as.example/token' } }),
    ).toThrow(/token endpoint must be an https URL/);
    expect(
      resolveEndpoints(
        entry('generic'),
        { endpoints: { token: 'http://127.0.0.1:1/token' } },
        { allowHttp: true },
      ),
    ).toEqual({ token: 'http://127.0.0.1:1/token' });
  });
});

describe('the API an app’s tokens are for', () => {
  it('fills the base URL from the settings, lists the hosts, and keeps the injections (Notion’s version header)', () => {
    expect(resolveApi(entry('zendesk'), { subdomain: 'acme' })).toEqual({
      baseUrl: 'https://acme.zendesk.com/api/v2',
      hosts: ['acme.zendesk.com'],
      inject: [{ in: 'header', name: 'Authorization', template: 'Bearer {{access_token}}' }],
    });
    expect(resolveApi(entry('dropbox'))?.hosts).toEqual([
      'api.dropboxapi.com',
      'content.dropboxapi.com',
      'notify.dropboxapi.com',
    ]);
    expect(resolveApi(entry('notion'))?.inject[1]).toEqual({
      in: 'header',
      name: 'Notion-Version',
      template: '2022-06-28',
    });
    expect(resolveApi(entry('generic'))).toBeUndefined();
  });

  it('takes Salesforce’s instance URL from the token, https only', () => {
    const salesforce = entry('salesforce');
    expect(
      resolveApi(salesforce, {}, { extra: { instanceUrl: 'https://acme.my.salesforce.com' } }),
    ).toMatchObject({
      baseUrl: 'https://acme.my.salesforce.com',
      hosts: ['acme.my.salesforce.com'],
    });
    expect(
      resolveApi(salesforce, {}, { extra: { instanceUrl: 'http://acme.my.salesforce.com' } })?.baseUrl,
    ).toBe('https://login.salesforce.com');
    expect(resolveApi(salesforce)?.baseUrl).toBe('https://login.salesforce.com');
  });
});
