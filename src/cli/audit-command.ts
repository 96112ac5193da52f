import { createWriteStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Command } from 'commander';
import type {
  AuditEventList,
  AuditEventView as EventView,
  AuditVerifyView as VerifyView,
} from '../http/schemas/response-types.js';
import { parseDuration } from '../lib/duration.js';
import { type Checkpoint, parseCheckpointLines } from '../audit/audit-checkpoints.js';
import { ApiError, resolveClientSettings } from './api-client.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

interface FilterFlags {
  agent?: string;
  credential?: string;
  action?: string;
  decision?: string;
  since?: string;
  until?: string;
}

const filterOptions = (command: Command) =>
  command
    .option('--agent <agent>', 'events of this agent (id or name)')
    .option('--credential <name>', 'events about this credential (name or id)')
    .option('--action <action>', 'one action, e.g. credential.create, or a prefix such as credential.*')
    .option('--decision <decision>', 'allow | deny')
    .option('--since <when>', 'from this ISO-8601 time, or this long ago (24h, 7d)')
    .option('--until <when>', 'up to this ISO-8601 time, or this long ago');

/** `24h` means 24 hours ago; anything else is passed on as an ISO-8601 time for the server to check. */
const instant = (flag: string, value: string | undefined, now: Date): string | undefined => {
  if (value === undefined) return undefined;
  const seconds = parseDuration(value);
  if (seconds !== undefined) return new Date(now.getTime() - seconds * 1000).toISOString();
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new InputError(`${flag} takes an ISO-8601 time (2026-06-01T12:00:00Z) or a duration ago (24h, 7d)`);
  }
  return value;
};

const filterQuery = (flags: FilterFlags): URLSearchParams => {
  if (flags.decision !== undefined && flags.decision !== 'allow' && flags.decision !== 'deny') {
    throw new InputError('--decision is allow or deny');
  }
  const now = new Date();
  const entries: [string, string | undefined][] = [
    ['agent', flags.agent],
    ['credential', flags.credential],
    ['action', flags.action],
    ['decision', flags.decision],
    ['since', instant('--since', flags.since, now)],
    ['until', instant('--until', flags.until, now)],
  ];
  return new URLSearchParams(entries.filter((e): e is [string, string] => e[1] !== undefined));
};

/**
 * `agent:<id> (<name>)`: an agent is recorded by its id, which says little to a reader, and every
 * event about it carries its name in `details.agent_name` (src/audit/audit-subjects.ts).
 */
const partyOf = (type: string | null, id: string | null, e: Pick<EventView, 'details'>): string | null => {
  if (id === null) return type;
  const label = `${type ?? '?'}:${id}`;
  const name = e.details.agent_name;
  return type === 'agent' && e.details.agent_id === id && typeof name === 'string' && name !== id
    ? `${label} (${name})`
    : label;
};

export const actorOf = (e: Pick<EventView, 'actor_type' | 'actor_id' | 'details'>) =>
  partyOf(e.actor_type, e.actor_id, e) ?? e.actor_type;
export const targetOf = (e: Pick<EventView, 'target_type' | 'target_id' | 'details'>) =>
  e.target_id === null ? null : partyOf(e.target_type, e.target_id, e);

/** A streamed GET: the export can be millions of rows, so it is never read into memory. */
const openStream = async (
  options: { addr?: string; namespace?: string; dataDir?: string },
  io: CliIo,
  path: string,
): Promise<Readable> => {
  const settings = resolveClientSettings(options, io.env);
  const headers: Record<string, string> = {};
  if (settings.token) headers.authorization = `Bearer ${settings.token}`;
  if (settings.namespace) headers['x-tokenvault-namespace'] = settings.namespace;
  let response: Response;
  try {
    response = await fetch(`${settings.addr}${path}`, { headers });
  } catch (error) {
    const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
    throw new ApiError(0, 'connection_failed', `Cannot reach the vault at ${settings.addr} (${reason}).`);
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let error: { code?: string; message?: string; request_id?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    throw new ApiError(
      response.status,
      error?.code ?? 'http_error',
      error?.message ?? `The vault answered ${response.status}.`,
      error?.request_id,
    );
  }
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
};

const describeFailure = (result: VerifyView): string => {
  const bad = result.first_bad;
  if (!bad) return 'FAILED';
  const which = bad.id ? `event ${bad.seq} (id ${bad.id})` : `event ${bad.seq}`;
  return [
    `FAILED at ${which}: ${bad.problem}`,
    `  ${bad.detail}`,
    `  ${result.checked} event(s) before it check out.`,
  ].join('\n');
};

export const registerAuditCommand = (program: Command, io: CliIo): void => {
  const audit = program.command('audit').description('the tamper-evident audit log: list, export, verify');

  filterOptions(withClientOptions(audit.command('list')))
    .description('list audit events, newest first')
    .option('--limit <n>', 'how many events', '50')
    .action(async (flags: FilterFlags & { limit: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) {
        throw new InputError('--limit is a whole number from 1 to 100000');
      }
      const query = filterQuery(flags);
      query.set('order', 'desc');
      const items: EventView[] = [];
      let after: string | null = null;
      do {
        query.set('limit', String(Math.min(1000, limit - items.length)));
        if (after !== null) query.set('after', after);
        const page: AuditEventList = await ctx.api.get(`/v1/admin/audit/events?${query}`);
        items.push(...page.items);
        after = page.next_cursor;
      } while (after !== null && items.length < limit);
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No audit events match.'
          : table(
              ['SEQ', 'TIME', 'ACTOR', 'ACTION', 'TARGET', 'DECISION', 'REASON', 'CLIENT'],
              items.map((e) => [
                e.seq,
                e.time,
                actorOf(e),
                e.action,
                targetOf(e),
                e.decision,
                e.reason,
                e.client_ip,
              ]),
            ),
      );
    });

  filterOptions(withClientOptions(audit.command('export')))
    .description('stream every matching event, oldest first, as JSON lines or CSV')
    .requiredOption('--format <format>', 'jsonl | csv')
    .option('--output <file>', 'write to this file instead of standard output')
    .action(async (flags: FilterFlags & { format: string; output?: string }, command: Command) => {
      if (flags.format !== 'jsonl' && flags.format !== 'csv')
        throw new InputError('--format is jsonl or csv');
      const ctx = contextFor(command, io);
      const query = filterQuery(flags);
      query.set('format', flags.format);
      const body = await openStream(command.optsWithGlobals(), io, `/v1/admin/audit/export?${query}`);
      if (flags.output === undefined) {
        await pipeline(body, io.stdout, { end: false });
        return;
      }
      try {
        await pipeline(body, createWriteStream(flags.output, { mode: 0o600 }));
      } catch (error) {
        // A cut-off export must not pass for a whole one.
        await rm(flags.output, { force: true });
        throw error;
      }
      ctx.out.info(`Exported the audit log to ${flags.output}.`);
    });

  withClientOptions(audit.command('verify'))
    .description(
      're-hash the whole chain and check the signed checkpoints; exits 1 and names the first bad event if it was tampered with',
    )
    .option(
      '--checkpoints <file>',
      'also check the log against the checkpoints in this file (shipped elsewhere)',
    )
    .action(async (flags: { checkpoints?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      let checkpoints: Checkpoint[] | undefined;
      if (flags.checkpoints !== undefined) {
        try {
          checkpoints = parseCheckpointLines(await readFile(flags.checkpoints, 'utf8'));
        } catch (error) {
          throw new InputError(`--checkpoints: ${(error as Error).message}`);
        }
      }
      const result = await ctx.api.post<VerifyView>(
        '/v1/admin/audit/verify',
        checkpoints === undefined ? undefined : { checkpoints },
      );
      ctx.out.result(result, () =>
        result.ok
          ? [
              `OK: ${result.checked} event(s) verified; the chain is intact.`,
              keyValues([
                ['head seq', result.head?.seq ?? 0],
                ['head hash', result.head?.hash ?? '-'],
                ['keyed from', result.keyed_from ?? '-'],
                ['checkpoints', result.checkpoints_checked],
              ]),
            ].join('\n')
          : describeFailure(result),
      );
      if (!result.ok) process.exitCode = 1;
    });

  withClientOptions(audit.command('public-key'))
    .description('print the Ed25519 public key (JWK) that verifies the audit checkpoints')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const jwk = await ctx.api.get<Record<string, string>>('/v1/admin/audit/public-key');
      ctx.out.result(jwk, () => JSON.stringify(jwk));
    });
};
