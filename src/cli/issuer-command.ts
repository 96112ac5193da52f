import type { Command } from 'commander';
import type { IssuerView, Items } from '../http/schemas/response-types.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';

const path = (name: string) => `/v1/admin/issuers/${encodeURIComponent(name)}`;

export const registerIssuerCommand = (program: Command, io: CliIo): void => {
  const issuer = program
    .command('issuer')
    .description('OIDC issuers whose workload identity tokens agents may log in with');

  withClientOptions(issuer.command('trust <name>'))
    .description('trust an issuer (its discovery document is fetched now to check it)')
    .requiredOption('--issuer <url>', 'the issuer URL exactly as in its tokens’ iss claim')
    .option('--audience <aud>', 'the aud its tokens must carry (default: the vault’s audience)')
    .action(async (name: string, flags: { issuer: string; audience?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const created = await ctx.api.post<IssuerView>('/v1/admin/issuers', {
        name,
        issuer: flags.issuer,
        audience: flags.audience,
      });
      ctx.out.result(
        created,
        () =>
          `Trusted issuer "${created.name}" (${created.issuer}, audience ${created.audience}).\nBind its tokens to an agent with \`tokenvault agent bind AGENT --issuer ${created.name} --claim NAME=VALUE\`.`,
      );
    });

  withClientOptions(issuer.command('list'))
    .description('list trusted issuers')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<Items<IssuerView>>('/v1/admin/issuers');
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No trusted issuers. Trust one with `tokenvault issuer trust NAME --issuer URL`.'
          : table(
              ['NAME', 'ISSUER', 'AUDIENCE', 'CREATED'],
              items.map((i) => [i.name, i.issuer, i.audience, i.created_at]),
            ),
      );
    });

  withClientOptions(issuer.command('show <name>'))
    .description('show a trusted issuer')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<IssuerView>(path(name));
      ctx.out.result(found, () =>
        keyValues([
          ['name', found.name],
          ['id', found.id],
          ['namespace', found.namespace],
          ['issuer', found.issuer],
          ['audience', found.audience],
          ['created at', found.created_at],
        ]),
      );
    });

  withClientOptions(issuer.command('rm <name>'))
    .description('stop trusting an issuer; its workload bindings are deleted with it')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      await ctx.api.delete(path(name));
      ctx.out.result({ deleted: name }, () => `No longer trusting issuer "${name}".`);
    });
};
