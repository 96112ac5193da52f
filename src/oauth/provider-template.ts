import type { ProviderEndpoints, ProviderEntry, ProviderInjection } from './provider-schema.js';

/**
 * `{param}` placeholders in a provider's URLs (Microsoft's `{tenant}`, Zendesk's `{subdomain}`), filled
 * from the OAuth app's settings. A value must match its parameter's pattern in full before it goes
 * into a URL, so a setting can never move a token request to another host or path.
 */

/** `{name}` but not `{{name}}` (that is the proxy's injection syntax). */
const placeholder = /(?<!\{)\{([a-z][a-zA-Z0-9]*)\}(?!\})/g;

export const placeholdersOf = (template: string): string[] =>
  [...template.matchAll(placeholder)].map((m) => m[1] as string);

/** Problems a person can act on, one per setting, all at once. */
export class ProviderSettingsError extends Error {
  readonly problems: string[];
  constructor(provider: string, problems: string[]) {
    super(`The ${provider} app settings have ${problems.length} problem(s): ${problems.join('; ')}`);
    this.name = 'ProviderSettingsError';
    this.problems = problems;
  }
}

const fullMatch = (pattern: string, value: string): boolean => new RegExp(`^(?:${pattern})$`).test(value);

/**
 * The value of every declared parameter: the app's setting, else the parameter's default. Unknown
 * settings, missing values and values outside the pattern are all reported together.
 */
export const resolveParameters = (
  entry: Pick<ProviderEntry, 'name' | 'parameters'>,
  settings: Readonly<Record<string, string>> = {},
): Record<string, string> => {
  const declared = entry.parameters ?? [];
  const problems: string[] = [];
  const values: Record<string, string> = {};
  for (const name of Object.keys(settings)) {
    if (!declared.some((p) => p.name === name)) {
      problems.push(
        `"${name}" is not a setting of ${entry.name} (known: ${declared.map((p) => p.name).join(', ') || 'none'})`,
      );
    }
  }
  for (const parameter of declared) {
    const value = settings[parameter.name] ?? parameter.default;
    if (value === undefined) problems.push(`${parameter.name} is required: ${parameter.description}`);
    else if (!fullMatch(parameter.pattern, value)) {
      problems.push(`${parameter.name} must match ${parameter.pattern} (${parameter.description})`);
    } else values[parameter.name] = value;
  }
  if (problems.length > 0) throw new ProviderSettingsError(entry.name, problems);
  return values;
};

/** Fills `{param}` placeholders; every placeholder must have a value (checked at catalog load). */
export const fillTemplate = (template: string, values: Readonly<Record<string, string>>): string =>
  template.replace(placeholder, (whole, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return value;
  });

export type ResolvedEndpoints = ProviderEndpoints;

/** Where an app's settings come from: parameter values, and endpoints for `oidc`/`generic` apps. */
export interface ProviderAppSettings {
  parameters?: Readonly<Record<string, string>>;
  /** Given by hand (`generic`) or taken from discovery (`oidc`); ignored for catalog providers. */
  endpoints?: ProviderEndpoints;
}

const isHttpsUrl = (value: string): boolean => {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
};

/**
 * The concrete endpoints of an app of this provider. Catalog providers fill their templates; `oidc`
 * and `generic` ones take the endpoints the app carries. `allowHttp` is for tests against local
 * servers only.
 */
export const resolveEndpoints = (
  entry: ProviderEntry,
  app: ProviderAppSettings,
  options: { allowHttp?: boolean } = {},
): ResolvedEndpoints => {
  const values = resolveParameters(entry, app.parameters);
  let endpoints: ProviderEndpoints;
  if (entry.kind === 'oauth2') {
    endpoints = Object.fromEntries(
      Object.entries(entry.endpoints).map(([key, template]) => [key, fillTemplate(template, values)]),
    ) as ProviderEndpoints;
  } else {
    if (!app.endpoints) {
      throw new ProviderSettingsError(entry.name, [
        entry.kind === 'oidc'
          ? 'the endpoints come from the issuer’s discovery document; discover them first'
          : 'a generic provider needs its endpoints given by hand (at least the token endpoint)',
      ]);
    }
    endpoints = app.endpoints;
  }
  const problems = Object.entries(endpoints)
    .filter(([, url]) => !(isHttpsUrl(url) || (options.allowHttp && URL.canParse(url))))
    .map(([key]) => `the ${key} endpoint must be an https URL`);
  if (problems.length > 0) throw new ProviderSettingsError(entry.name, problems);
  return endpoints;
};

export interface ResolvedApi {
  /** Where the proxy sends calls made with this provider's tokens. */
  baseUrl: string;
  /** The exact hosts (with a port when not the default) the token may be sent to. */
  hosts: string[];
  inject: readonly ProviderInjection[];
}

/**
 * The API an app's tokens are for, as the HTTP proxy needs it: the base URL (the token's own
 * `instanceUrl` where the entry says so — Salesforce — and only when it is https), the allowed hosts
 * and the injections. Undefined for providers without an API in the catalog (`generic`, `oidc`),
 * whose credentials carry their own base URL.
 */
export const resolveApi = (
  entry: ProviderEntry,
  parameters: Readonly<Record<string, string>> = {},
  token?: { extra: Readonly<Record<string, string | number | boolean>> },
): ResolvedApi | undefined => {
  if (!entry.api) return undefined;
  const fromToken = entry.api.baseUrlFromToken ? token?.extra[entry.api.baseUrlFromToken] : undefined;
  const baseUrl =
    typeof fromToken === 'string' && isHttpsUrl(fromToken)
      ? fromToken
      : fillTemplate(entry.api.baseUrl, resolveParameters(entry, parameters));
  return {
    baseUrl,
    hosts: [new URL(baseUrl).host, ...(entry.api.extraHosts ?? [])],
    inject: entry.api.inject,
  };
};
