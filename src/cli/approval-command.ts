import type { Command } from 'commander';
import type { Static } from '@sinclair/typebox';
import type { ApprovalList, ApprovalView } from '../http/schemas/approval-schemas.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';

type View = Static<typeof ApprovalView>;

const show = (a: View) =>
  keyValues([
    ['id', a.id],
    ['state', a.state],
    ['agent', a.agent],
    ['credential', a.credential],
    ['end user', a.end_user],
    ['policy', `${a.policy} (rule ${a.rule_index})`],
    ['approvers', a.approvers],
    ['covers', a.covers === 'request' ? 'one request' : `every request for ${a.covers}`],
    ['requested at', a.requested_at],
    ['expires at', a.expires_at],
    ['decided at', a.decided_at],
    ['decided by', a.decided_by && `${a.decided_by} (${a.decided_via ?? '?'})`],
    ['reason', a.reason],
    ['covers until', a.covers_until],
    ['used at', a.used_at],
  ]);

/**
 * `tokenvault approval list | show ID | approve ID | deny ID [--reason]` (docs/approvals.md). The
 * decision is the token's: its name must be among the rule's approvers and not the request's own.
 */
export const registerApprovalCommand = (program: Command, io: CliIo): void => {
  const approval = program.command('approval').description('see and decide requests waiting for approval');

  withClientOptions(approval.command('list'))
    .description('list approvals, newest first (pending ones unless --all)')
    .option('--all', 'every state, not only pending')
    .option('--state <state>', 'only this state: pending, approved, denied, expired')
    .action(async (flags: { all?: boolean; state?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const state = flags.state ?? (flags.all ? undefined : 'pending');
      const page = await ctx.api.get<Static<typeof ApprovalList>>(
        `/v1/admin/approvals${state ? `?state=${encodeURIComponent(state)}` : ''}`,
      );
      ctx.out.result(page.items, () =>
        page.items.length === 0
          ? `No ${state ?? ''} approvals.`
          : table(
              ['ID', 'STATE', 'AGENT', 'CREDENTIAL', 'POLICY', 'EXPIRES'],
              page.items.map((a) => [a.id, a.state, a.agent, a.credential, a.policy, a.expires_at]),
            ),
      );
    });

  withClientOptions(approval.command('show <id>'))
    .description('show one approval')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<View>(`/v1/admin/approvals/${encodeURIComponent(id)}`);
      ctx.out.result(found, () => show(found));
    });

  for (const decision of ['approve', 'deny'] as const) {
    withClientOptions(approval.command(`${decision} <id>`))
      .description(
        decision === 'approve' ? 'approve a pending request (final)' : 'deny a pending request (final)',
      )
      .option('--reason <text>', 'why, recorded with the decision')
      .action(async (id: string, flags: { reason?: string }, command: Command) => {
        const ctx = contextFor(command, io);
        const decided = await ctx.api.post<View>(
          `/v1/admin/approvals/${encodeURIComponent(id)}/${decision}`,
          {
            via: 'cli',
            ...(flags.reason === undefined ? {} : { reason: flags.reason }),
          },
        );
        ctx.out.result(decided, () => `Approval ${decided.id} is ${decided.state}.\n${show(decided)}`);
      });
  }
};
