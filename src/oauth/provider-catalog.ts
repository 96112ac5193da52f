import { readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  CatalogProviderSchema,
  GenericProviderSchema,
  OidcProviderSchema,
  type ProviderEntry,
} from './provider-schema.js';
import { fillTemplate, placeholdersOf } from './provider-template.js';

/**
 * The provider catalog: one JSON file per provider in `providers/`, checked against the schema and the
 * rules below when loaded. Adding a provider is a data file and a test; no code names a provider.
 */

export class ProviderCatalogError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `The OAuth provider catalog has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ProviderCatalogError';
    this.problems = problems;
  }
}

export interface ProviderCatalog {
  /** Every entry, sorted by name. */
  list(): readonly ProviderEntry[];
  get(name: string): ProviderEntry | undefined;
}

const schemas: Record<ProviderEntry['kind'], TSchema> = {
  oauth2: CatalogProviderSchema,
  oidc: OidcProviderSchema,
  generic: GenericProviderSchema,
};

const compiles = (pattern: string): boolean => {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
};

/** Every URL template of the entry with its JSON path. */
const urlTemplates = (entry: ProviderEntry): [string, string][] => [
  ...(entry.kind === 'oauth2'
    ? Object.entries(entry.endpoints).map(([key, url]): [string, string] => [`/endpoints/${key}`, url])
    : []),
  ...(entry.kind === 'oidc' ? [['/discovery/issuer', entry.discovery.issuer] as [string, string]] : []),
  ...(entry.api ? [['/api/baseUrl', entry.api.baseUrl] as [string, string]] : []),
];

const injectionVariable = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** The rules a schema cannot say: templates, patterns, and fields that must agree with each other. */
const crossCheck = (entry: ProviderEntry): string[] => {
  const problems: string[] = [];
  const parameters = entry.parameters ?? [];
  const sample: Record<string, string> = {};
  parameters.forEach((parameter, i) => {
    if (!compiles(parameter.pattern)) {
      problems.push(`/parameters/${i}/pattern: not a valid regular expression`);
      return;
    }
    const value = parameter.default ?? parameter.example;
    if (value === undefined) problems.push(`/parameters/${i}: give a default or an example`);
    else if (!new RegExp(`^(?:${parameter.pattern})$`).test(value)) {
      problems.push(
        `/parameters/${i}: its ${parameter.default ? 'default' : 'example'} does not match pattern`,
      );
    } else sample[parameter.name] = value;
  });

  const used = new Set<string>();
  for (const [path, template] of urlTemplates(entry)) {
    for (const name of placeholdersOf(template)) {
      used.add(name);
      if (!parameters.some((p) => p.name === name)) {
        problems.push(`${path}: {${name}} is not declared in parameters`);
      }
    }
    if (placeholdersOf(template).every((name) => sample[name] !== undefined)) {
      const filled = fillTemplate(template, sample);
      if (!URL.canParse(filled) || new URL(filled).protocol !== 'https:') {
        problems.push(`${path}: must be an https URL (filled with the defaults: ${filled})`);
      }
    }
  }
  parameters.forEach((parameter, i) => {
    if (!used.has(parameter.name)) problems.push(`/parameters/${i}: ${parameter.name} is used by no URL`);
  });

  if (entry.kind === 'oauth2' && !entry.endpoints.authorization && !entry.endpoints.deviceAuthorization) {
    problems.push('/endpoints: needs an authorization or a device authorization endpoint');
  }
  if (entry.refresh.expires && entry.tokenResponse.assumedLifetimeSeconds === undefined) {
    problems.push(
      '/tokenResponse/assumedLifetimeSeconds: required when tokens expire, for responses without an expiry',
    );
  }
  if (!entry.refresh.supported && (entry.refresh.rotation !== 'never' || entry.refresh.singleUse)) {
    problems.push('/refresh: rotation and singleUse describe refresh tokens, which this provider has not');
  }
  if (entry.refresh.singleUse && entry.refresh.rotation === 'never') {
    problems.push('/refresh: a single-use refresh token must rotate');
  }
  if (entry.refresh.narrowerScopes && !entry.refresh.supported) {
    problems.push(
      '/refresh/narrowerScopes: narrower scopes are asked for on a refresh, which this provider has not',
    );
  }

  const extras = Object.keys(entry.tokenResponse.extraFields ?? {});
  const nestedKeys = (entry.tokenResponse.nestedTokens ?? []).map((n) => n.key);
  for (const key of nestedKeys) {
    if (extras.includes(key)) problems.push(`/tokenResponse/nestedTokens: ${key} is also an extra field`);
  }
  for (const [field, rules] of Object.entries(entry.errors ?? {})) {
    if (!Array.isArray(rules)) continue;
    rules.forEach((rule, i) => {
      if (typeof rule !== 'string' && !compiles(rule.descriptionPattern)) {
        problems.push(`/errors/${field}/${i}/descriptionPattern: not a valid regular expression`);
      }
    });
  }
  if (entry.api) {
    if (entry.api.baseUrlFromToken && !extras.includes(entry.api.baseUrlFromToken)) {
      problems.push(
        `/api/baseUrlFromToken: ${entry.api.baseUrlFromToken} is not in tokenResponse.extraFields`,
      );
    }
    const known = new Set(['access_token', 'token_type', ...extras]);
    entry.api.inject.forEach((injection, i) => {
      for (const m of injection.template.matchAll(injectionVariable)) {
        if (!known.has(m[1] as string)) {
          problems.push(`/api/inject/${i}/template: {{${m[1]}}} is neither access_token nor an extra field`);
        }
      }
    });
  }
  return problems;
};

/**
 * Checks one parsed data file. Pure: the loader and the tests call it; `problems` name the file and
 * the JSON path of each problem.
 */
export const validateProviderEntry = (
  raw: unknown,
  file: string,
): { entry: ProviderEntry; problems: [] } | { entry: undefined; problems: string[] } => {
  const at = (problem: string) => `${file}: ${problem}`;
  const kind = (raw as { kind?: unknown } | null)?.kind;
  if (typeof kind !== 'string' || !(kind in schemas)) {
    return { entry: undefined, problems: [at('/kind: must be one of oauth2, oidc, generic')] };
  }
  const schema = schemas[kind as ProviderEntry['kind']];
  const schemaProblems = [...Value.Errors(schema, raw)].map((e) => at(`${e.path || '/'}: ${e.message}`));
  if (schemaProblems.length > 0) return { entry: undefined, problems: schemaProblems };
  const entry = raw as ProviderEntry;
  const problems = crossCheck(entry).map(at);
  if (entry.name !== basename(file, '.json'))
    problems.unshift(at(`/name: must be the file name (${entry.name})`));
  return problems.length > 0 ? { entry: undefined, problems } : { entry, problems: [] };
};

const deepFreeze = <T>(value: T): T => {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
};

/** Builds a catalog from parsed files (file name → content), reporting every problem at once. */
export const buildProviderCatalog = (files: Readonly<Record<string, unknown>>): ProviderCatalog => {
  const problems: string[] = [];
  const entries = new Map<string, ProviderEntry>();
  for (const [file, raw] of Object.entries(files)) {
    const result = validateProviderEntry(raw, file);
    if (result.entry) entries.set(result.entry.name, result.entry);
    else problems.push(...result.problems);
  }
  for (const entry of entries.values()) {
    if (entry.variant && !entries.has(entry.variant.of)) {
      problems.push(`${entry.name}.json: /variant/of: no provider is named ${entry.variant.of}`);
    }
  }
  if (problems.length > 0) throw new ProviderCatalogError(problems);
  const sorted = deepFreeze([...entries.values()].sort((a, b) => a.name.localeCompare(b.name)));
  return { list: () => sorted, get: (name) => entries.get(name) };
};

export const defaultProvidersDir = fileURLToPath(new URL('./providers/', import.meta.url));

/** Reads and checks every `*.json` in the directory (the shipped catalog by default). */
export const loadProviderCatalog = (dir: string = defaultProvidersDir): ProviderCatalog => {
  const files: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()) {
    try {
      files[file] = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
    } catch (error) {
      problems.push(`${file}: not valid JSON (${(error as Error).message})`);
    }
  }
  if (problems.length > 0) throw new ProviderCatalogError(problems);
  return buildProviderCatalog(files);
};

let shipped: ProviderCatalog | undefined;

/** The shipped catalog, loaded and checked once per process (the first call throws if it is broken). */
export const shippedProviderCatalog = (): ProviderCatalog => (shipped ??= loadProviderCatalog());
