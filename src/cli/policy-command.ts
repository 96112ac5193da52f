import { readFileSync } from 'node:fs';
import { formatDuration } from '../lib/duration.js';
import type { Command } from 'commander';
import type {
  PolicyAttachResult,
  PolicyDetachResult,
  PolicyDryRunView,
  PolicyList,
  PolicyUsageResetResult,
  PolicyUsageView,
  PolicyVersionList,
  PolicyView,
} from '../http/schemas/response-types.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

const readDocument = async (file: string, readStdin: () => Promise<string>): Promise<string> => {
  if (file === '-') return readStdin();
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new InputError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
};

const show = (p: PolicyView) =>
  `${keyValues([
    ['name', p.name],
    ['description', p.description],
    ['version', p.version],
    ['rules', p.rules.join(', ')],
    ['attached to', p.attachments.map((a) => `${a.kind} ${a.target_id}`).join(', ') || 'nothing'],
    ['updated at', p.updated_at],
    ['updated by', p.updated_by],
    ['namespace', p.namespace],
  ])}\n\n${p.document.trimEnd()}`;

/** `--agent A | --agent-key ID | --grant ID | --credential C | --proxy P | --proxy-key ID`: exactly one. */
interface TargetFlags {
  agent?: string;
  agentKey?: string;
  grant?: string;
  credential?: string;
  proxy?: string;
  proxyKey?: string;
}

const targetOptions = (command: Command) =>
  command
    .option('--agent <agent>', 'an agent (id or name)')
    .option('--agent-key <id>', 'an agent API key (its id)')
    .option('--grant <id>', 'a grant (its id)')
    .option('--credential <name>', 'a credential (its name)')
    .option('--proxy <proxy>', 'an MCP proxy (id or name)')
    .option('--proxy-key <id>', 'an MCP proxy key (its id)');

const targetOf = (flags: TargetFlags) => {
  const given = (
    [
      ['agent', flags.agent],
      ['agent_key', flags.agentKey],
      ['grant', flags.grant],
      ['credential', flags.credential],
      ['proxy', flags.proxy],
      ['proxy_key', flags.proxyKey],
    ] as const
  ).filter(([, value]) => value !== undefined);
  if (given.length !== 1) {
    throw new InputError(
      'say what to attach to: exactly one of --agent, --agent-key, --grant, --credential, --proxy, --proxy-key',
    );
  }
  const [kind, target] = given[0]!;
  return { kind, target: target! };
};

const path = (name: string) => `/v1/admin/policies/${encodeURIComponent(name)}`;

const explainText = (r: PolicyDryRunView) => {
  const rules =
    r.rules.length === 0
      ? 'No policy is attached to anything on this path.'
      : table(
          ['POLICY', 'RULE', 'VERDICT', 'WHY'],
          r.rules.map((rule) => [rule.policy, rule.rule, rule.verdict, rule.message]),
        );
  const grant =
    r.grant.outcome === 'allow' ? `allows (grant ${r.grant.grant_id})` : `refuses (${r.grant.code})`;
  return `Decision at ${r.at}: ${r.decision.toUpperCase()}${r.code ? ` (${r.code})` : ''}: ${r.message}\nGrant: ${grant}\n\n${rules}\n\nNothing was counted.`;
};

const windowText = (w: PolicyUsageView['counters'][number]['window']) =>
  w.kind === 'total'
    ? 'total'
    : w.kind === 'calendar'
      ? `per ${w.per} (${w.time_zone})`
      : `per ${formatDuration(w.seconds ?? 0)}`;

const whoText = (c: PolicyUsageView['counters'][number]) => {
  if (!c.counted) return '(nothing counted yet)';
  const named = (n: { id: string; name: string | null }) => n.name ?? n.id;
  const parts = [
    ...(c.agent ? [`agent ${named(c.agent)}`] : []),
    ...(c.credential ? [`credential ${named(c.credential)}`] : []),
    ...(c.attachment ? [`${c.attachment.kind} ${c.attachment.id}`] : []),
  ];
  return parts.join(', ');
};

const usageText = (u: PolicyUsageView) =>
  u.counters.length === 0
    ? `Policy "${u.policy}" has no rate_limit or usage_cap rule: nothing is counted.`
    : `Policy "${u.policy}" (version ${u.version}) at ${u.at}:\n\n${table(
        ['RULE', 'COUNTS', 'WINDOW', 'LIMIT', 'USED', 'LEFT', 'RESETS'],
        u.counters.map((c) => [
          `rules[${c.rule.index}].${c.rule.kind ?? '?'}`,
          whoText(c),
          windowText(c.window),
          c.limit,
          c.used,
          c.remaining,
          c.reset_at ?? 'never (total)',
        ]),
      )}`;

export const registerPolicyCommand = (program: Command, io: CliIo): void => {
  const policy = program
    .command('policy')
    .description('conditions on credential use: time windows, IP ranges, rate limits, caps, geo, approval');

  withClientOptions(policy.command('create <file>'))
    .description('create a policy from a YAML or JSON document (- for stdin)')
    .action(async (file: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const document = await readDocument(file, ctx.readStdin);
      const created = await ctx.api.post<PolicyView>('/v1/admin/policies', { document });
      ctx.out.result(created, () => `Created policy "${created.name}" (version 1).\n${show(created)}`);
    });

  withClientOptions(policy.command('update <name> <file>'))
    .description('make the document the policy’s next version; it decides the next request')
    .action(async (name: string, file: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const document = await readDocument(file, ctx.readStdin);
      const updated = await ctx.api.put<PolicyView>(path(name), { document });
      ctx.out.result(updated, () => `Updated policy "${name}" to version ${updated.version}.`);
    });

  withClientOptions(policy.command('show <name>'))
    .description('show a policy’s current version and attachments (--history: every version)')
    .option('--history', 'every version, newest first')
    .action(async (name: string, flags: { history?: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      if (flags.history) {
        const versions = await ctx.api.get<PolicyVersionList>(`${path(name)}/versions`);
        ctx.out.result(versions.items, () =>
          versions.items
            .map((v) => `# version ${v.version}, ${v.created_at} by ${v.created_by}\n${v.document.trimEnd()}`)
            .join('\n\n'),
        );
        return;
      }
      const found = await ctx.api.get<PolicyView>(path(name));
      ctx.out.result(found, () => show(found));
    });

  withClientOptions(policy.command('list'))
    .description('list policies')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<PolicyList>('/v1/admin/policies');
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No policies. Create one with `tokenvault policy create FILE` (examples: docs/policies/).'
          : table(
              ['NAME', 'VERSION', 'RULES', 'ATTACHED', 'UPDATED', 'DESCRIPTION'],
              items.map((p) => [
                p.name,
                p.version,
                p.rules,
                p.attachments,
                p.updated_at,
                p.description ?? '',
              ]),
            ),
      );
    });

  withClientOptions(policy.command('rm <name>'))
    .description('remove a policy and its history (refused while attached unless --force)')
    .option('--force', 'detach it from everything first')
    .action(async (name: string, flags: { force?: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      const removed = await ctx.api.delete<PolicyView>(`${path(name)}${flags.force ? '?force=true' : ''}`);
      ctx.out.result(
        removed,
        () =>
          `Removed policy "${name}"${removed.attachments.length > 0 ? ` and its ${removed.attachments.length} attachment(s)` : ''}.`,
      );
    });

  targetOptions(withClientOptions(policy.command('attach <name>')))
    .description('attach a policy to an agent, agent key, grant, credential, MCP proxy or proxy key')
    .action(async (name: string, flags: TargetFlags, command: Command) => {
      const target = targetOf(flags);
      const ctx = contextFor(command, io);
      const result = await ctx.api.post<PolicyAttachResult>(`${path(name)}/attach`, target);
      ctx.out.result(result, () =>
        result.already_attached
          ? `Policy "${name}" was already attached to ${target.kind} ${target.target}.`
          : `Attached policy "${name}" to ${target.kind} ${target.target}; it decides the next request.`,
      );
    });

  targetOptions(withClientOptions(policy.command('detach <name>')))
    .description('detach a policy from what it is attached to')
    .action(async (name: string, flags: TargetFlags, command: Command) => {
      const target = targetOf(flags);
      const ctx = contextFor(command, io);
      const result = await ctx.api.post<PolicyDetachResult>(`${path(name)}/detach`, target);
      ctx.out.result(result, () =>
        result.detached
          ? `Detached policy "${name}" from ${target.kind} ${target.target}.`
          : `Policy "${name}" was not attached to ${target.kind} ${target.target}; nothing changed.`,
      );
    });

  withClientOptions(policy.command('test'))
    .description('dry run: the decision a request would get, rule by rule, counting nothing')
    .requiredOption('--agent <agent>', 'the agent (id or name)')
    .requiredOption('--credential <name>', 'the credential')
    .option('--ip <address>', 'the client address to assume')
    .option('--at <time>', 'the time to assume (ISO 8601, e.g. 2026-11-27T17:59:00+01:00)')
    .option('--country <code>', 'the client’s country to assume (ISO 3166-1 alpha-2)')
    .option('--agent-key <id>', 'the agent key the request would come with')
    .option('--proxy <proxy>', 'the MCP proxy the request would come through')
    .option('--proxy-key <id>', 'the proxy key it would come with')
    .action(
      async (
        flags: {
          agent: string;
          credential: string;
          ip?: string;
          at?: string;
          country?: string;
          agentKey?: string;
          proxy?: string;
          proxyKey?: string;
        },
        command: Command,
      ) => {
        const ctx = contextFor(command, io);
        const result = await ctx.api.post<PolicyDryRunView>('/v1/admin/policies/test', {
          agent: flags.agent,
          credential: flags.credential,
          ...(flags.ip === undefined ? {} : { ip: flags.ip }),
          ...(flags.at === undefined ? {} : { at: flags.at }),
          ...(flags.country === undefined ? {} : { country: flags.country }),
          ...(flags.agentKey === undefined ? {} : { agent_key: flags.agentKey }),
          ...(flags.proxy === undefined ? {} : { proxy: flags.proxy }),
          ...(flags.proxyKey === undefined ? {} : { proxy_key: flags.proxyKey }),
        });
        ctx.out.result(result, () => explainText(result));
      },
    );

  withClientOptions(policy.command('usage <name>'))
    .description('what is used and left of each rate limit and usage cap, per agent and credential')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const usage = await ctx.api.get<PolicyUsageView>(`${path(name)}/usage`);
      ctx.out.result(usage, () => usageText(usage));
    });

  withClientOptions(policy.command('reset-usage <name>'))
    .description('forget a policy’s counts (all, or one rule’s, agent’s or credential’s); audited')
    .option('--rule <index>', 'only this rule (its index, as in `rules[N]`)')
    .option('--agent <agent>', 'only this agent (id or name)')
    .option('--credential <name>', 'only this credential')
    .action(
      async (
        name: string,
        flags: { rule?: string; agent?: string; credential?: string },
        command: Command,
      ) => {
        if (flags.rule !== undefined && !/^\d{1,4}$/.test(flags.rule)) {
          throw new InputError(`--rule must be a rule's index (0, 1, …), not "${flags.rule}"`);
        }
        const ctx = contextFor(command, io);
        const result = await ctx.api.post<PolicyUsageResetResult>(`${path(name)}/usage/reset`, {
          ...(flags.rule === undefined ? {} : { rule: Number(flags.rule) }),
          ...(flags.agent === undefined ? {} : { agent: flags.agent }),
          ...(flags.credential === undefined ? {} : { credential: flags.credential }),
        });
        ctx.out.result(
          result,
          () => `Reset ${result.reset} counter(s) of policy "${name}"; the next request is counted afresh.`,
        );
      },
    );
};
