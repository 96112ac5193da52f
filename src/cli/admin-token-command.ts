import type { Command } from 'commander';
import type { AdminTokenView, CreatedAdminToken, Items } from '../http/schemas/response-types.js';
import { parseDuration } from '../lib/duration.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { table } from './output.js';
import { InputError } from './secret-input.js';

export const registerAdminCommand = (program: Command, io: CliIo): void => {
  const token = program
    .command('admin')
    .description('administer the vault')
    .command('token')
    .description('admin tokens');

  withClientOptions(token.command('create <name>'))
    .description('create an admin token; it is printed once, store it now')
    .option('--ttl <duration>', 'lifetime such as 12h or 30d (default: until revoked)')
    .action(async (name: string, flags: { ttl?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const ttlSeconds = flags.ttl === undefined ? undefined : parseDuration(flags.ttl);
      if (flags.ttl !== undefined && ttlSeconds === undefined) {
        throw new InputError(`--ttl "${flags.ttl}" is not a duration; use forms like 90m, 12h, 30d`);
      }
      const created = await ctx.api.post<CreatedAdminToken>('/v1/admin/tokens', {
        name,
        ttl_seconds: ttlSeconds,
      });
      ctx.out.result(
        created,
        () =>
          `${created.token}\n\nAdmin token "${created.name}" (id ${created.id}, expires ${created.expires_at ?? 'never'}).\nThis is the only time it is shown.`,
      );
    });

  withClientOptions(token.command('list'))
    .description('list admin tokens (never the tokens themselves)')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<Items<AdminTokenView>>('/v1/admin/tokens');
      ctx.out.result(items, () =>
        table(
          ['ID', 'NAME', 'ROOT', 'CREATED', 'EXPIRES', 'REVOKED', 'LAST USED'],
          items.map((t) => [
            t.id,
            t.name,
            t.root ? 'yes' : '',
            t.created_at,
            t.expires_at,
            t.revoked_at,
            t.last_used_at,
          ]),
        ),
      );
    });

  withClientOptions(token.command('revoke <id>'))
    .description('revoke an admin token; it fails on its very next use')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const revoked = await ctx.api.delete<AdminTokenView>(`/v1/admin/tokens/${encodeURIComponent(id)}`);
      ctx.out.result(revoked, () => `Revoked admin token "${revoked.name}" (${revoked.id}).`);
    });
};
