import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { maxGrantTtlSeconds, minGrantTtlSeconds } from '../grants/grant-types.js';
import { formatDuration, parseDuration } from '../lib/duration.js';
import type {
  CreatedGrant,
  GrantList,
  GrantView,
  ImportedGrants,
  RevokeAllResult,
  RevokedGrants,
} from '../http/schemas/response-types.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const splitScopes = (values: string[]) =>
  values
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);

const agentLabel = (g: GrantView) => g.agent_name ?? `${g.agent_id} (deleted)`;
const credentialLabel = (g: GrantView) => g.credential_name ?? `${g.credential_id} (deleted)`;

const show = (g: GrantView) =>
  keyValues([
    ['id', g.id],
    ['agent', agentLabel(g)],
    ['credential', credentialLabel(g)],
    ['scopes', g.scopes],
    ['reveal', g.reveal ? 'yes (the agent may read the secret)' : 'no (proxy-only)'],
    ['status', g.status],
    ['expires at', g.expires_at ?? 'never (until revoked)'],
    ['created at', g.created_at],
    ['created by', g.created_by],
    ['revoked at', g.revoked_at],
    ['revoked why', g.revoked_reason],
    ['namespace', g.namespace],
  ]);

interface TermFlags {
  ttl?: string;
  untilRevoked?: boolean;
  reveal?: boolean;
}

const termOptions = (command: Command) =>
  command
    .option('--ttl <duration>', 'how long the grant lasts, 1h to 30d (e.g. 12h, 7d)')
    .option('--until-revoked', 'the grant lasts until revoked')
    .option('--reveal', 'the agent may read the raw secret (otherwise proxy-only)');

/** The server's TTL rules, checked here so that the message names this command's flags. */
const checkTtl = (ttl: string) => {
  const range = `${formatDuration(minGrantTtlSeconds)}..${formatDuration(maxGrantTtlSeconds)}`;
  const seconds = parseDuration(ttl);
  if (seconds === undefined) {
    throw new InputError(
      `--ttl "${ttl.slice(0, 40)}" is not a duration; give --ttl ${range} such as 12h or 7d, or --until-revoked`,
    );
  }
  if (seconds < minGrantTtlSeconds || seconds > maxGrantTtlSeconds) {
    throw new InputError(
      `--ttl must be ${range}; ${formatDuration(seconds)} is too ${seconds < minGrantTtlSeconds ? 'short' : 'long'}. For a standing grant use --until-revoked`,
    );
  }
};

/** Exactly one of --ttl and --until-revoked: a grant's lifetime is always a decision, never a default. */
const terms = (flags: TermFlags) => {
  if (flags.ttl !== undefined && flags.untilRevoked) {
    throw new InputError('give --ttl or --until-revoked, not both');
  }
  if (flags.ttl === undefined && !flags.untilRevoked) {
    throw new InputError(
      'say how long the grant lasts: --ttl 1h..30d (for example --ttl 7d), or --until-revoked',
    );
  }
  if (flags.ttl !== undefined) checkTtl(flags.ttl);
  return {
    ...(flags.ttl === undefined ? { until_revoked: true } : { ttl: flags.ttl }),
    reveal: Boolean(flags.reveal),
  };
};

const grantsTable = (items: GrantView[]) =>
  table(
    ['ID', 'AGENT', 'CREDENTIAL', 'SCOPES', 'REVEAL', 'STATUS', 'EXPIRES'],
    items.map((g) => [
      g.id,
      agentLabel(g),
      credentialLabel(g),
      g.scopes.join(',') || '-',
      g.reveal ? 'yes' : 'no',
      g.status,
      g.expires_at ?? 'until revoked',
    ]),
  );

const isTerminal = (stream: NodeJS.ReadableStream) => Boolean((stream as { isTTY?: boolean }).isTTY);

export const registerGrantCommand = (program: Command, io: CliIo): void => {
  const grant = program.command('grant').description('give agents access to credentials, and take it back');

  termOptions(withClientOptions(grant.command('create')))
    .description('grant an agent a credential (replaces its live grant for that credential, if any)')
    .requiredOption('--agent <agent>', 'the agent (id or name)')
    .requiredOption('--credential <name>', 'the credential')
    .option('--user <user>', 'which user’s credential, when several users hold one of this name')
    .option('--scope <scope>', 'a scope to grant (repeatable; default: all the credential’s scopes)', collect)
    .action(
      async (
        flags: TermFlags & { agent: string; credential: string; user?: string; scope?: string[] },
        command: Command,
      ) => {
        const body = {
          agent: flags.agent,
          credential: flags.credential,
          ...(flags.user ? { user: flags.user } : {}),
          ...(flags.scope ? { scopes: splitScopes(flags.scope) } : {}),
          ...terms(flags),
        };
        const ctx = contextFor(command, io);
        const created = await ctx.api.post<CreatedGrant>('/v1/admin/grants', body);
        ctx.out.result(created, () => {
          const replaced =
            created.replaced_grant_ids.length > 0
              ? `\nIt replaces grant ${created.replaced_grant_ids.join(', ')}, now revoked.`
              : '';
          return `Granted agent "${agentLabel(created)}" the credential "${credentialLabel(created)}".\n${show(created)}${replaced}`;
        });
      },
    );

  withClientOptions(grant.command('list'))
    .description('list live grants (all of them with --all)')
    .option('--agent <agent>', 'only this agent’s grants (id or name)')
    .option('--credential <name>', 'only grants on this credential')
    .option('--all', 'include revoked and expired grants')
    .action(async (flags: { agent?: string; credential?: string; all?: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      const items: GrantView[] = [];
      let after: string | null = null;
      do {
        const query = new URLSearchParams({ limit: '500' });
        if (flags.agent) query.set('agent', flags.agent);
        if (flags.credential) query.set('credential', flags.credential);
        if (flags.all) query.set('all', 'true');
        if (after !== null) query.set('after', after);
        const page: GrantList = await ctx.api.get(`/v1/admin/grants?${query.toString()}`);
        items.push(...page.items);
        after = page.next_cursor;
      } while (after !== null);
      ctx.out.result(items, () =>
        items.length === 0
          ? `No ${flags.all ? '' : 'live '}grants. Create one with \`tokenvault grant create --agent NAME --credential NAME --ttl 7d --reveal\`.`
          : grantsTable(items),
      );
    });

  withClientOptions(grant.command('show <id>'))
    .description('show one grant')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<GrantView>(`/v1/admin/grants/${encodeURIComponent(id)}`);
      ctx.out.result(found, () => show(found));
    });

  withClientOptions(grant.command('revoke [id]'))
    .description('revoke a grant, every grant of an agent (--agent) or on a credential (--credential)')
    .option('--agent <agent>', 'revoke every grant of this agent')
    .option('--credential <name>', 'revoke every grant on this credential')
    .action(
      async (id: string | undefined, flags: { agent?: string; credential?: string }, command: Command) => {
        const given = [id, flags.agent, flags.credential].filter((v) => v !== undefined).length;
        if (given !== 1) {
          throw new InputError(
            'say what to revoke: a grant ID, or --agent AGENT, or --credential NAME (exactly one)',
          );
        }
        const ctx = contextFor(command, io);
        if (id !== undefined) {
          const revoked = await ctx.api.delete<GrantView>(`/v1/admin/grants/${encodeURIComponent(id)}`);
          ctx.out.result(
            revoked,
            () => `Revoked grant ${revoked.id} (${agentLabel(revoked)} → ${credentialLabel(revoked)}).`,
          );
          return;
        }
        const body = flags.agent !== undefined ? { agent: flags.agent } : { credential: flags.credential };
        const result = await ctx.api.post<RevokedGrants>('/v1/admin/grants/revoke', body);
        const whose =
          flags.agent !== undefined ? `of agent "${flags.agent}"` : `on credential "${flags.credential}"`;
        ctx.out.result(result, () => `Revoked ${result.revoked} grant(s) ${whose}.`);
      },
    );

  termOptions(withClientOptions(grant.command('import <file>')))
    .description(
      'create grants from the seed policy document(s) in FILE (- for stdin): {"agent_id":"agent-42","allowed_credentials":["slack:read"]}',
    )
    .action(async (file: string, flags: TermFlags, command: Command) => {
      const lifetime = terms(flags);
      const ctx = contextFor(command, io);
      const text = file === '-' ? await ctx.readStdin() : readText(file);
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch (error) {
        throw new InputError(
          `${file === '-' ? 'standard input' : file} is not valid JSON: ${(error as Error).message}`,
        );
      }
      const result = await ctx.api.post<ImportedGrants>('/v1/admin/grants/import', { document, ...lifetime });
      ctx.out.result(result, () => {
        const replaced =
          result.replaced_grant_ids.length > 0
            ? `\nReplaced (now revoked): ${result.replaced_grant_ids.join(', ')}`
            : '';
        // `skipped` is absent from servers older than batched imports.
        const skipped = result.skipped ?? [];
        const inPlace =
          skipped.length > 0
            ? `\nAlready in place on the same terms (left as they are): ${skipped.length} grant(s).`
            : '';
        return `Imported ${result.items.length} grant(s).\n${grantsTable(result.items)}${replaced}${inPlace}`;
      });
    });

  withClientOptions(program.command('revoke-all'))
    .description('kill switch: revoke every grant and every agent API key of the namespace at once')
    .option('--yes', 'do it without asking (needed when standard input is not a terminal)')
    .action(async (flags: { yes?: boolean; namespace?: string }, command: Command) => {
      const namespace = flags.namespace ?? io.env.TOKENVAULT_NAMESPACE ?? 'default';
      const warning = `This revokes EVERY grant and EVERY agent API key in namespace "${namespace}": agents lose access on their next request, and only new grants and new keys undo it.`;
      if (!flags.yes) {
        if (!isTerminal(io.stdin)) {
          throw new InputError(
            `${warning} Standard input is not a terminal, so there is no one to ask: run it again with --yes to confirm.`,
          );
        }
        const rl = createInterface({ input: io.stdin, output: io.stderr });
        const answer = await rl.question(`${warning}\nType the namespace name (${namespace}) to confirm: `);
        rl.close();
        if (answer.trim() !== namespace) throw new InputError('not confirmed; nothing was revoked');
      }
      const ctx = contextFor(command, io);
      const result = await ctx.api.post<RevokeAllResult>('/v1/admin/revoke-all', {});
      ctx.out.result(
        result,
        () =>
          `Revoked ${result.grants_revoked} grant(s) and ${result.agent_keys_revoked} agent key(s) in namespace "${result.namespace}" at ${result.revoked_at}.\nRe-grant with \`tokenvault grant create\` and issue new keys with \`tokenvault agent key create\`.`,
      );
    });
};

const readText = (file: string): string => {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
};
