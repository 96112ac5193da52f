import type { Command } from 'commander';
import type {
  CredentialList,
  CredentialView,
  PruneResult,
  VersionList,
} from '../http/schemas/response-types.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { assertTypeKnown, buildSecret, InputError, type TokenResponseHints } from './secret-input.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const splitList = (value: string) =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const show = (c: CredentialView) =>
  keyValues([
    ['name', c.name],
    ['id', c.id],
    ['namespace', c.namespace],
    ['type', c.type],
    ['status', c.status],
    ['description', c.description || '-'],
    ['scopes', c.scopes],
    ['allowed hosts', c.allowed_hosts],
    ['base url', c.base_url],
    [
      c.injections.length > 1 ? 'injections' : 'injection',
      c.injections.map((i) => `${i.in} ${i.name}: ${i.template}`),
    ],
    ['secret fields', c.secret_fields],
    ['version', c.version],
    ['expires at', c.expires_at],
    ['subject', c.subject],
    ['created at', c.created_at],
    ['updated at', c.updated_at],
  ]);

interface RefreshView {
  status: string;
  access_expires_at: string | null;
  expiry_assumed: boolean;
  last_refresh_at: string | null;
  next_refresh_at: string | null;
  failures: number;
  last_error: string | null;
}

const showRefresh = (r: RefreshView | null) =>
  r === null
    ? keyValues([['refresh', 'not yet seen by the refresher']])
    : keyValues([
        ['refresh status', r.status],
        [
          'token expires at',
          r.access_expires_at && `${r.access_expires_at}${r.expiry_assumed ? ' (assumed)' : ''}`,
        ],
        ['last refresh', r.last_refresh_at],
        ['next refresh', r.next_refresh_at],
        ['refresh failures', r.failures],
        ['last refresh error', r.last_error],
      ]);

const refreshOutcome = (name: string, outcome: string, code: string | undefined) =>
  ({
    refreshed: `Refreshed "${name}".`,
    refreshed_elsewhere: `"${name}" was refreshed by another request or replica meanwhile.`,
    retry_later: `The provider did not refresh "${name}" (${code ?? 'error'}); the vault tries again with backoff.`,
    needs_reauth: `The provider refused the grant of "${name}" (${code ?? 'invalid_grant'}): reconnect it.`,
  })[outcome] ?? outcome;

const revocationNote = ({ status, code }: { status: string; code?: string }) =>
  ({
    revoked: 'Its tokens were revoked at the provider.',
    no_endpoint:
      'The provider has no revocation endpoint: revoke the vault’s access in its settings by hand.',
    no_app:
      'No OAuth app links it, so its tokens were not revoked at the provider: revoke them there by hand.',
  })[status] ?? `Revoking its tokens at the provider failed (${code ?? 'error'}): revoke them there by hand.`;

const secretOptions = (command: Command) =>
  command
    .option('--secret-stdin', 'read the secret from standard input (keeps it out of shell history)')
    .option('--secret-file <path>', 'read the secret from a file')
    .option(
      '--secret-json',
      'the secret on stdin or in the file is a JSON object of fields (implied for custom, and for an oauth2 token response)',
    )
    .option(
      '--field <key=value>',
      'a secret field (KEY=@FILE reads the value from a file); repeatable',
      collect,
    )
    .option('--description <text>', 'what this credential is for')
    .option('--scopes <list>', 'comma-separated scopes the credential carries')
    .option('--allowed-host <host>', 'an upstream host the secret may be sent to; repeatable', collect)
    .option(
      '--base-url <url>',
      'where the HTTP proxy forwards calls made with it, e.g. https://api.github.com ("" clears it)',
    )
    .option(
      '--inject <in:name:template>',
      'how a proxy injects it, e.g. "header:Authorization:Bearer {{api_key}}"; repeatable (a key and a secret in two headers)',
      collect,
    )
    .option('--expires-at <iso>', 'when the secret stops working (ISO-8601)')
    .option('--subject <user>', 'the end user this credential belongs to');

interface SecretFlags {
  secretStdin?: boolean;
  secretFile?: string;
  secretJson?: boolean;
  field?: string[];
  description?: string;
  scopes?: string;
  allowedHost?: string[];
  baseUrl?: string;
  inject?: string[];
  expiresAt?: string;
  subject?: string;
}

const parseInject = (value: string) => {
  const [where, name, ...rest] = value.split(':');
  if (!where || !name || rest.length === 0) {
    throw new InputError('--inject expects IN:NAME:TEMPLATE, e.g. "header:Authorization:Bearer {{token}}"');
  }
  return { in: where, name, template: rest.join(':') };
};

/** One `--inject` as the API's `injection` (readable by any vault), several as `injections`. */
const injectFlags = (values: string[] | undefined) => {
  const parsed = values?.map(parseInject);
  if (parsed === undefined) return {};
  return parsed.length === 1 ? { injection: parsed[0] } : { injections: parsed };
};

/**
 * A credential given an expiry already past would be stored as `active` and refused at every use with
 * `credential_expired`: almost always a typo in the year. Refused here, before anything is sent; to
 * retire a credential, `credential update NAME --status revoked`.
 */
const futureExpiry = (value: string | undefined, now = Date.now()): string | undefined => {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (!Number.isNaN(time) && time <= now) {
    throw new InputError(
      `--expires-at ${value} is in the past; give a future date-time (ISO-8601), or retire the credential with \`credential update NAME --status revoked\``,
    );
  }
  return value;
};

const metadata = (flags: SecretFlags) => ({
  description: flags.description,
  scopes: flags.scopes === undefined ? undefined : splitList(flags.scopes),
  allowed_hosts: flags.allowedHost,
  base_url: flags.baseUrl === undefined ? undefined : flags.baseUrl || null,
  ...injectFlags(flags.inject),
  expires_at: futureExpiry(flags.expiresAt),
  subject: flags.subject,
});

/** A token response's lifetime and scopes, where the flags did not say. */
const fromTokenResponse = (
  described: { expires_at: string | undefined; scopes: string[] | undefined },
  hints: TokenResponseHints,
) => ({
  expires_at:
    described.expires_at ??
    (hints.expiresInSeconds === undefined
      ? undefined
      : new Date(Date.now() + hints.expiresInSeconds * 1000).toISOString()),
  scopes: described.scopes ?? hints.scopes,
});

const path = (name: string, user?: string, suffix = '') =>
  `/v1/admin/credentials/${encodeURIComponent(name)}${suffix}${user === undefined ? '' : `?user=${encodeURIComponent(user)}`}`;
const userOption = '--user <user>';
const userHelp = 'which user’s credential, when several users hold one of this name';

export const registerCredentialCommand = (program: Command, io: CliIo): void => {
  const credential = program.command('credential').description('store and manage credentials');

  secretOptions(withClientOptions(credential.command('add <name>')))
    .description('store a credential; its secret is encrypted and never shown again')
    .requiredOption('--type <type>', 'api_key | bearer | basic | oauth2 | custom')
    .action(async (name: string, flags: SecretFlags & { type: string }, command: Command) => {
      assertTypeKnown(flags.type);
      const described = metadata(flags);
      const ctx = contextFor(command, io);
      const hints: TokenResponseHints = {};
      const secret = await buildSecret(flags.type, flags, ctx.readStdin, hints);
      if (!secret) throw new InputError('give the secret with --secret-stdin, --secret-file or --field');
      const created = await ctx.api.post<CredentialView>('/v1/admin/credentials', {
        name,
        type: flags.type,
        secret,
        ...described,
        ...fromTokenResponse(described, hints),
      });
      ctx.out.result(
        created,
        () => `Stored credential "${created.name}" (${created.type}, version ${created.version}).`,
      );
    });

  withClientOptions(credential.command('list'))
    .description('list credentials (never their secrets)')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const items: CredentialView[] = [];
      let after: string | null = null;
      do {
        const query: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
        const page: CredentialList = await ctx.api.get(`/v1/admin/credentials?limit=500${query}`);
        items.push(...page.items);
        after = page.next_cursor;
      } while (after !== null);
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No credentials yet. Add one with `tokenvault credential add NAME --type api_key --secret-stdin`.'
          : table(
              ['NAME', 'TYPE', 'STATUS', 'VERSION', 'SCOPES', 'ALLOWED HOSTS', 'UPDATED'],
              items.map((c) => [
                c.name,
                c.type,
                c.status,
                c.version,
                c.scopes.join(','),
                c.allowed_hosts.join(','),
                c.updated_at,
              ]),
            ),
      );
    });

  withClientOptions(credential.command('show <name>'))
    .description('show a credential’s metadata (never its secret)')
    .option(userOption, userHelp)
    .action(async (name: string, flags: { user?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<CredentialView>(path(name, flags.user));
      if (found.type !== 'oauth2') return ctx.out.result(found, () => show(found));
      // An OAuth credential also shows its refresh: last and next, failures, status.
      const { refresh } = await ctx.api.get<{ refresh: RefreshView | null }>(
        path(name, flags.user, '/refresh'),
      );
      ctx.out.result({ ...found, refresh }, () => `${show(found)}\n${showRefresh(refresh)}`);
    });

  withClientOptions(credential.command('refresh <name>'))
    .description('refresh an OAuth credential now (or wait for the refresh already in flight)')
    .option(userOption, userHelp)
    .action(async (name: string, flags: { user?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const result = await ctx.api.post<{ outcome: string; code?: string; refresh: RefreshView | null }>(
        path(name, flags.user, '/refresh'),
        {},
      );
      ctx.out.result(
        result,
        () => `${refreshOutcome(name, result.outcome, result.code)}\n${showRefresh(result.refresh)}`,
      );
    });

  secretOptions(withClientOptions(credential.command('update <name>')))
    .description('change metadata, or store a new secret version (the previous one is kept until pruned)')
    .option('--status <status>', 'active | revoked | needs_reauth')
    .option(userOption, userHelp)
    .action(
      async (name: string, flags: SecretFlags & { status?: string; user?: string }, command: Command) => {
        const ctx = contextFor(command, io);
        const current = await ctx.api.get<CredentialView>(path(name, flags.user));
        const hints: TokenResponseHints = {};
        const secret = await buildSecret(current.type, flags, ctx.readStdin, hints);
        const described = metadata(flags);
        const body = Object.fromEntries(
          Object.entries({
            ...described,
            ...fromTokenResponse(described, hints),
            secret,
            status: flags.status,
          }).filter(([, v]) => v !== undefined),
        );
        if (Object.keys(body).length === 0)
          throw new InputError('nothing to update: give a secret or a metadata option');
        const updated = await ctx.api.patch<CredentialView>(path(name, flags.user), body);
        ctx.out.result(updated, () => `Updated credential "${updated.name}" (version ${updated.version}).`);
      },
    );

  withClientOptions(credential.command('rm <name>'))
    .description('delete a credential, all its versions, its data key and its grants')
    .option(userOption, userHelp)
    .action(async (name: string, flags: { user?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const removed = await ctx.api.delete<{ revocation: { status: string; code?: string } } | undefined>(
        path(name, flags.user),
      );
      const revocation = removed?.revocation;
      ctx.out.result(revocation ? { deleted: name, revocation } : { deleted: name }, () =>
        [`Deleted credential "${name}".`, revocation && revocationNote(revocation)]
          .filter(Boolean)
          .join('\n'),
      );
    });

  withClientOptions(credential.command('versions <name>'))
    .description('list the stored secret versions')
    .option(userOption, userHelp)
    .action(async (name: string, flags: { user?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<VersionList>(path(name, flags.user, '/versions'));
      ctx.out.result(items, () =>
        table(
          ['VERSION', 'CREATED', 'CURRENT'],
          items.map((v) => [v.version, v.created_at, v.current ? 'yes' : '']),
        ),
      );
    });

  withClientOptions(credential.command('prune <name>'))
    .description('delete old secret versions')
    .option('--keep <n>', 'newest versions to keep', '1')
    .option(userOption, userHelp)
    .action(async (name: string, flags: { keep: string; user?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const keep = Number(flags.keep);
      if (!Number.isInteger(keep) || keep < 1)
        throw new InputError('--keep must be a whole number of at least 1');
      const result = await ctx.api.post<PruneResult>(path(name, flags.user, '/prune'), { keep });
      ctx.out.result(result, () => `Pruned ${result.pruned} old version(s) of "${name}".`);
    });
};
