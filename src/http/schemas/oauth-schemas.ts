import { type Static, Type } from '@sinclair/typebox';
import type { ProviderEntry } from '../../oauth/provider-schema.js';

const nullableInteger = Type.Union([Type.Integer(), Type.Null()]);

/** One catalog entry as the admin API shows it: what an operator needs to pick and register an app. */
export const ProviderView = Type.Object({
  name: Type.String({ description: 'The catalog name (`google`, `microsoft`, `generic`, `oidc`).' }),
  display_name: Type.String(),
  kind: Type.String({
    description: '`oauth2` (endpoints in the catalog), `oidc` (by discovery) or `generic` (by hand).',
  }),
  variant_of: Type.Union([Type.String(), Type.Null()], {
    description: 'The entry this one is a variant of.',
  }),
  parameters: Type.Array(Type.String(), {
    description: 'Settings an app of this provider takes (`tenant`, `subdomain`).',
  }),
  pkce: Type.String({ description: 'required, supported or none' }),
  client_auth: Type.String({ description: 'client_secret_basic, client_secret_post or private_key_jwt' }),
  tokens_expire: Type.Boolean(),
  refresh_tokens: Type.Boolean({ description: 'Whether the provider issues refresh tokens.' }),
  rotation: Type.String({
    description: 'always, sometimes or never: whether a refresh returns a new refresh token.',
  }),
  single_use_refresh_tokens: Type.Boolean(),
  assumed_lifetime_seconds: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The lifetime assumed when a token answer has no expiry.',
  }),
  access_token_lifetime_seconds: nullableInteger,
  idle_expiry_days: Type.Union([Type.Integer(), Type.Null()], {
    description: 'A refresh token unused this long expires.',
  }),
  api_base_url: Type.Union([Type.String(), Type.Null()], {
    description: 'Where the proxy sends calls; `{param}` is filled from the app’s settings.',
  }),
  docs: Type.String(),
  notes: Type.Array(Type.String()),
});

export const ProviderList = Type.Object({ items: Type.Array(ProviderView) });

export const toProviderView = (entry: ProviderEntry): Static<typeof ProviderView> => ({
  name: entry.name,
  display_name: entry.displayName,
  kind: entry.kind,
  variant_of: entry.variant?.of ?? null,
  parameters: (entry.parameters ?? []).map((p) => p.name),
  pkce: entry.pkce,
  client_auth: entry.clientAuth,
  tokens_expire: entry.refresh.expires,
  refresh_tokens: entry.refresh.supported,
  rotation: entry.refresh.rotation,
  single_use_refresh_tokens: entry.refresh.singleUse,
  assumed_lifetime_seconds: entry.tokenResponse.assumedLifetimeSeconds ?? null,
  access_token_lifetime_seconds: entry.refresh.accessTokenLifetimeSeconds ?? null,
  idle_expiry_days: entry.refresh.idleExpiryDays ?? null,
  api_base_url: entry.api?.baseUrl ?? null,
  docs: entry.docs,
  notes: [...(entry.notes ?? [])],
});
