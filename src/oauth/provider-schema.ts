import { type Static, Type } from '@sinclair/typebox';

/**
 * The shape of one provider entry in the catalog (`providers/*.json`). Loading checks every entry
 * against this schema and then against the cross-field rules in provider-catalog.ts, reporting every
 * problem with its file and JSON path, so a bad data file fails at start and in its test, never at the
 * first refresh.
 *
 * URL fields may hold `{param}` placeholders; each must be declared in `parameters` and is filled from
 * the OAuth app's settings (see provider-template.ts), never from a request.
 */

const nameField = Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}$' });

/** An absolute URL, possibly templated; checked as https once its placeholders are filled. */
const UrlTemplate = Type.String({ minLength: 8, maxLength: 500 });

const Parameter = Type.Object(
  {
    name: Type.String({ pattern: '^[a-z][a-zA-Z0-9]{0,39}$' }),
    description: Type.String({ minLength: 1 }),
    /** Values must match in full; this is what keeps a value from changing the host or the path. */
    pattern: Type.String({ minLength: 2 }),
    default: Type.Optional(Type.String()),
    /** A value that matches `pattern`, used to check the templates when there is no default. */
    example: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const Endpoints = Type.Object(
  {
    authorization: Type.Optional(UrlTemplate),
    token: UrlTemplate,
    /** Only where the provider refreshes at another URL than it exchanges codes (Figma). */
    refresh: Type.Optional(UrlTemplate),
    revocation: Type.Optional(UrlTemplate),
    deviceAuthorization: Type.Optional(UrlTemplate),
    introspection: Type.Optional(UrlTemplate),
    userinfo: Type.Optional(UrlTemplate),
  },
  { additionalProperties: false },
);

const StringMap = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$' }), Type.String());

/** A dotted path into the token response (`authed_user.access_token`). */
const ResponsePath = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$' });

const ErrorRule = Type.Union([
  Type.String({ minLength: 1 }),
  Type.Object(
    {
      code: Type.String({ minLength: 1 }),
      /** A regular expression the error description must match for the rule to apply. */
      descriptionPattern: Type.String({ minLength: 1 }),
    },
    { additionalProperties: false },
  ),
]);

const NestedToken = Type.Object(
  {
    /** The key in `extra` the nested token lands under (`userToken`). */
    key: Type.String({ pattern: '^[a-z][a-zA-Z0-9]{0,39}$' }),
    path: ResponsePath,
    /** When the top level carries no access token, the nested one becomes the primary token. */
    primaryWhenTopLevelMissing: Type.Boolean(),
  },
  { additionalProperties: false },
);

const TokenResponse = Type.Object(
  {
    /** A field that must be `true` for success (Slack's `ok`); errors then come with HTTP 200. */
    successFlag: Type.Optional(ResponsePath),
    /** Fixed token type for the stored token (Slack says `bot`/`user`, but the API wants `Bearer`). */
    tokenType: Type.Optional(Type.String({ minLength: 1 })),
    /** Where the lifetime is, when not `expires_in` (seconds). */
    expiresIn: Type.Optional(ResponsePath),
    /** An absolute expiry instead of a lifetime, in epoch seconds. */
    expiresAtEpoch: Type.Optional(ResponsePath),
    /**
     * Lifetime assumed when the response gives none, so the token is still refreshed or checked
     * instead of being treated as eternal. Absent with `refresh.expires: false` only.
     */
    assumedLifetimeSeconds: Type.Optional(Type.Integer({ minimum: 60 })),
    /** The separator of the `scope` field in responses, when it differs from the request's. */
    scopeSeparator: Type.Optional(Type.String({ minLength: 1, maxLength: 3 })),
    nestedTokens: Type.Optional(Type.Array(NestedToken)),
    /**
     * Non-secret values kept with the token, stored in the clear: `{"instanceUrl": "instance_url"}`.
     * Never a field that embeds a secret (Slack's and Discord's incoming-webhook URLs do).
     */
    extraFields: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-zA-Z0-9]{0,39}$' }), ResponsePath),
    ),
  },
  { additionalProperties: false },
);

const Errors = Type.Object(
  {
    /** Where the provider puts the error code, when not `error` (HubSpot's `status`). */
    codeField: Type.Optional(ResponsePath),
    /** Where the provider puts the error's description, when not `error_description`. */
    descriptionField: Type.Optional(ResponsePath),
    /** Codes meaning the grant is gone: the user must connect again. Checked before the defaults. */
    reauthRequired: Type.Optional(Type.Array(ErrorRule)),
    retryable: Type.Optional(Type.Array(ErrorRule)),
    fatal: Type.Optional(Type.Array(ErrorRule)),
  },
  { additionalProperties: false },
);

const Refresh = Type.Object(
  {
    /** Whether access tokens expire at all (GitHub OAuth-app tokens do not). */
    expires: Type.Boolean(),
    /** Whether the provider issues refresh tokens. */
    supported: Type.Boolean(),
    /**
     * `always`: every refresh returns a new refresh token; `sometimes`: it may (store it when it
     * does); `never`: the refresh token stays the same.
     */
    rotation: Type.Union([Type.Literal('always'), Type.Literal('sometimes'), Type.Literal('never')]),
    /** The old refresh token stops working once used: a lost response means reconnecting. */
    singleUse: Type.Boolean(),
    /** A refresh token unused this many days expires; the scheduler refreshes before that. */
    idleExpiryDays: Type.Optional(Type.Integer({ minimum: 1 })),
    /** A refresh token expires this many days after issue, used or not. */
    absoluteExpiryDays: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The documented access-token lifetime, for display and planning (responses win). */
    accessTokenLifetimeSeconds: Type.Optional(Type.Integer({ minimum: 60 })),
    /**
     * Whether a refresh may ask for fewer scopes than were granted (RFC 6749 §6), which is how the
     * vault hands out downscoped tokens. Absent: yes for `oidc` and `generic` entries (the RFC's
     * default), no for catalog providers until their entry says so.
     */
    narrowerScopes: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const Injection = Type.Object(
  {
    in: Type.Union([Type.Literal('header'), Type.Literal('query')]),
    name: Type.String({ pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$" }),
    /** `{{access_token}}` and the token's extras (`{{instanceUrl}}`) may appear; else a constant. */
    template: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

const Api = Type.Object(
  {
    baseUrl: UrlTemplate,
    /** A token extra that replaces `baseUrl` when present (Salesforce's `instanceUrl`). */
    baseUrlFromToken: Type.Optional(Type.String({ pattern: '^[a-z][a-zA-Z0-9]{0,39}$' })),
    /** Other hosts the proxy may send this provider's token to (exact names). */
    extraHosts: Type.Optional(Type.Array(Type.String({ pattern: '^[a-z0-9.-]+$' }))),
    inject: Type.Array(Injection, { minItems: 1 }),
  },
  { additionalProperties: false },
);

const Variant = Type.Object(
  {
    /** The entry this one is a variant of (GitHub App user tokens of `github`). */
    of: nameField,
    description: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

const common = {
  name: nameField,
  displayName: Type.String({ minLength: 1, maxLength: 80 }),
  docs: Type.String({ pattern: '^https://' }),
  variant: Type.Optional(Variant),
  parameters: Type.Optional(Type.Array(Parameter)),
  scopes: Type.Object(
    {
      separator: Type.String({ minLength: 1, maxLength: 3 }),
      default: Type.Array(Type.String({ minLength: 1 })),
    },
    { additionalProperties: false },
  ),
  pkce: Type.Union([Type.Literal('required'), Type.Literal('supported'), Type.Literal('none')]),
  clientAuth: Type.Union([
    Type.Literal('client_secret_basic'),
    Type.Literal('client_secret_post'),
    Type.Literal('private_key_jwt'),
  ]),
  extraParams: Type.Optional(
    Type.Object(
      {
        authorize: Type.Optional(StringMap),
        token: Type.Optional(StringMap),
        refresh: Type.Optional(StringMap),
      },
      { additionalProperties: false },
    ),
  ),
  tokenResponse: TokenResponse,
  errors: Type.Optional(Errors),
  refresh: Refresh,
  api: Type.Optional(Api),
  /** What is undocumented, uncertain or surprising about the provider. */
  notes: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
};

/** A provider whose endpoints are known and written in the entry. */
export const CatalogProviderSchema = Type.Object(
  { ...common, kind: Type.Literal('oauth2'), endpoints: Endpoints },
  { additionalProperties: false },
);

/** Any OpenID Connect issuer: endpoints come from its discovery document when the app is added. */
export const OidcProviderSchema = Type.Object(
  {
    ...common,
    kind: Type.Literal('oidc'),
    discovery: Type.Object(
      {
        /** The issuer URL template (`{issuer}`); `/.well-known/openid-configuration` is appended. */
        issuer: UrlTemplate,
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

/** Plain OAuth 2.0: the operator gives every endpoint by hand when adding the app. */
export const GenericProviderSchema = Type.Object(
  { ...common, kind: Type.Literal('generic') },
  { additionalProperties: false },
);

export const ProviderEntrySchema = Type.Union([
  CatalogProviderSchema,
  OidcProviderSchema,
  GenericProviderSchema,
]);

export type ProviderEntry = Static<typeof ProviderEntrySchema>;
export type CatalogProvider = Static<typeof CatalogProviderSchema>;
export type ProviderEndpoints = Static<typeof Endpoints>;
export type ProviderParameter = Static<typeof Parameter>;
export type ProviderErrorRule = Static<typeof ErrorRule>;
export type ProviderInjection = Static<typeof Injection>;
export type TokenResponseRules = Static<typeof TokenResponse>;
export type ErrorRules = Static<typeof Errors>;
export type RefreshBehaviour = Static<typeof Refresh>;
