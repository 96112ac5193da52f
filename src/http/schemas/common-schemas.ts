import { type TSchema, Type } from '@sinclair/typebox';

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable snake_case code; see docs/errors.md.' }),
      message: Type.String(),
      request_id: Type.String(),
      connect_url: Type.Optional(
        Type.String({ description: '`authorization_required`: the link to show the end user.' }),
      ),
      flow: Type.Optional(
        Type.String({ description: '`authorization_required`: `browser` or `device` (RFC 8628).' }),
      ),
      user_code: Type.Optional(Type.String({ description: 'Device flow: the code the user enters.' })),
      verification_uri: Type.Optional(Type.String({ description: 'Device flow: where the user enters it.' })),
      verification_uri_complete: Type.Optional(
        Type.String({
          description: 'Device flow: the same page with the code filled in, when the provider gives one.',
        }),
      ),
      interval: Type.Optional(
        Type.Integer({ description: 'Device flow: seconds between the vault’s polls of the provider.' }),
      ),
      expires_at: Type.Optional(Type.String({ description: 'When the link or the code stops working.' })),
    }),
  },
  { description: 'Every error has this shape.' },
);

type CommonErrorStatus = 400 | 401 | 403 | 429 | 500;

/** Response map with the error statuses a route can produce (the common ones are always there). */
export const withErrors = <T extends Record<number, TSchema>, S extends number = never>(
  ok: T,
  ...statuses: S[]
): T & Record<CommonErrorStatus | S, typeof ErrorResponse> =>
  ({
    ...ok,
    ...Object.fromEntries(
      [...new Set([400, 401, 403, 429, 500, ...statuses])].map((s) => [s, ErrorResponse]),
    ),
  }) as T & Record<CommonErrorStatus | S, typeof ErrorResponse>;

export const NamespaceHeader = Type.Object({
  'x-tokenvault-namespace': Type.Optional(
    Type.String({ description: 'Namespace to act in; `default` when absent.', maxLength: 64 }),
  ),
});
