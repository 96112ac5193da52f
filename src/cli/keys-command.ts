import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type {
  KeyJobView as JobView,
  KeysVerifyResult,
  KeyStatusView as StatusView,
} from '../http/schemas/response-types.js';
import type { ApiClient } from './api-client.js';
import { type CliIo, type CommandContext, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';

const renderStatus = (s: StatusView) =>
  [
    keyValues([
      ['mode', s.mode],
      [
        're-wrap',
        s.job
          ? `${s.job.finished_at ? 'finished' : 'running'} → ${s.job.target} (${s.job.total - s.job.remaining}/${s.job.total})`
          : 'none',
      ],
    ]),
    '',
    table(
      ['KEY', 'DATA KEYS'],
      s.data_keys.map((d) => [d.ref, d.count]),
    ),
  ].join('\n');

/**
 * Follows a re-wrap to its end with a progress bar on stderr. Interrupting this only stops watching:
 * the job runs in the server and resumes there after a crash.
 */
export const watchJob = async (
  api: ApiClient,
  io: CliIo,
  ctx: CommandContext,
  jobId: string,
): Promise<StatusView> => {
  // A bar redraws in place on a terminal; into a pipe or a file each redraw would be one more line, so
  // there the progress is one line at the end.
  const terminal = Boolean((io.stderr as { isTTY?: boolean }).isTTY);
  const bar =
    ctx.out.json || !terminal
      ? undefined
      : new cliProgress.SingleBar(
          {
            format: 're-wrapping data keys [{bar}] {percentage}% | {value}/{total} | eta {eta_formatted}',
            stream: io.stderr,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
  let started = false;
  for (;;) {
    const status = await api.get<StatusView>('/v1/admin/keys/status');
    const job = status.job;
    if (!job || job.id !== jobId) return status;
    if (bar) {
      if (!started) bar.start(job.total, job.total - job.remaining);
      started = true;
      bar.update(job.total - job.remaining);
    }
    if (job.finished_at) {
      bar?.stop();
      if (!bar) ctx.out.info(`re-wrapped ${job.total - job.remaining}/${job.total} data key(s)`);
      return status;
    }
    await sleep(250);
  }
};

const startAndWatch = async (
  ctx: CommandContext,
  io: CliIo,
  wait: boolean,
  start: () => Promise<JobView>,
  done: (s: StatusView) => string,
) => {
  const job = await start();
  ctx.out.info(`Re-wrap ${job.id} started: ${job.total} data key(s) to move to ${job.target}.`);
  if (!wait) {
    ctx.out.result(job, () => 'Running in the server; follow it with `tokenvault keys status --watch`.');
    return;
  }
  const status = await watchJob(ctx.api, io, ctx, job.id);
  ctx.out.result(status, () => done(status));
};

const platformKeyBackup =
  'Back up the platform master key now: without it the data cannot be decrypted. It is the server’s ' +
  'TOKENVAULT_MASTER_KEY when that is set, otherwise the key generated into <data-dir>/master.key ' +
  '(mode 0600) on the vault’s machine. Keep the copy away from the database.';

export const registerKeysCommand = (program: Command, io: CliIo): void => {
  const keys = program.command('keys').description('encryption keys: status, rotation, verification');

  withClientOptions(keys.command('status'))
    .description('vault mode, data keys per key, and any re-wrap in progress')
    .option('--watch', 'follow a running re-wrap to its end')
    .action(async (flags: { watch?: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      let status = await ctx.api.get<StatusView>('/v1/admin/keys/status');
      if (flags.watch && status.job && !status.job.finished_at)
        status = await watchJob(ctx.api, io, ctx, status.job.id);
      ctx.out.result(status, () => renderStatus(status));
    });

  withClientOptions(keys.command('rotate'))
    .description('add a platform key version (new data uses it at once) and re-wrap every data key with it')
    .option('--no-wait', 'return once the re-wrap has started')
    .action(async (flags: { wait: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      await startAndWatch(
        ctx,
        io,
        flags.wait,
        () => ctx.api.post<JobView>('/v1/admin/keys/rotate'),
        (s) => `Rotated: every data key is now under ${s.job?.target}.\n\n${renderStatus(s)}`,
      );
    });

  withClientOptions(keys.command('verify'))
    .description('unwrap every data key and report any that fail')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const result = await ctx.api.post<KeysVerifyResult>('/v1/admin/keys/verify');
      ctx.out.result(result, () =>
        result.ok
          ? `OK: ${result.checked} data key(s) checked, all open, all under ${result.mode} mode.`
          : [
              `FAILED: ${result.failures.length} of ${result.checked} data key(s) do not open; ${result.off_mode} not yet under ${result.mode} mode.`,
              ...result.failures.map(
                (f) => `  credential ${f.credential_id}: data key ${f.data_key_id} (${f.ref}): ${f.code}`,
              ),
            ].join('\n'),
      );
      if (!result.ok) process.exitCode = 1;
    });

  const mode = program.command('mode').description('vault mode: who holds the key-encryption key');
  withClientOptions(mode.command('set <mode>'))
    .description('switch to platform or webhook mode, re-wrapping every data key online')
    .option('--no-wait', 'return once the re-wrap has started')
    .action(async (target: string, flags: { wait: boolean }, command: Command) => {
      const ctx = contextFor(command, io);
      await startAndWatch(
        ctx,
        io,
        flags.wait,
        () => ctx.api.post<JobView>('/v1/admin/keys/mode', { mode: target }),
        (s) => `The vault is now in ${s.mode} mode.\n\n${renderStatus(s)}`,
      );
      // The vault now depends on a master key the operator may never have seen: say where it is.
      if (target === 'platform') ctx.out.info(platformKeyBackup);
    });
  withClientOptions(mode.command('status'))
    .description('the current mode and any switch in progress')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const status = await ctx.api.get<StatusView>('/v1/admin/keys/status');
      ctx.out.result(status, () => renderStatus(status));
    });
};
