import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type {
  AgentKeyView,
  AgentList,
  AgentView,
  BindingView,
  CreatedAgent,
  CreatedAgentKey,
  Items,
} from '../http/schemas/response-types.js';
import { parseDuration } from '../lib/duration.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { keyValues, table } from './output.js';
import { InputError } from './secret-input.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const path = (name: string, rest = '') => `/v1/admin/agents/${encodeURIComponent(name)}${rest}`;

const checkTtl = (flag: string, ttl: string | undefined): string | undefined => {
  if (ttl !== undefined && parseDuration(ttl) === undefined) {
    throw new InputError(`${flag} "${ttl}" is not a duration; use forms like 90d, 12h or 2w`);
  }
  return ttl;
};

const describeJwks = (a: AgentView): string =>
  a.jwks
    ? `${a.jwks.keys.length} key(s): ${a.jwks.keys.map((k) => k.kid ?? `(${k.kty}, no kid)`).join(', ')}`
    : (a.jwks_url ?? '-');

const show = (a: AgentView) =>
  keyValues([
    ['name', a.name],
    ['id', a.id],
    ['namespace', a.namespace],
    ['status', a.status],
    ['description', a.description || '-'],
    ['jwt keys', describeJwks(a)],
    ['created at', a.created_at],
    ['updated at', a.updated_at],
  ]);

const parseClaims = (pairs: string[] = []): Record<string, string> => {
  const claims: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InputError(`--claim expects NAME=VALUE, got "${pair.slice(0, 60)}"`);
    claims[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (Object.keys(claims).length === 0)
    throw new InputError('give at least one --claim NAME=VALUE (for example --claim repository=acme/app)');
  return claims;
};

export const registerAgentCommand = (program: Command, io: CliIo): void => {
  const agent = program.command('agent').description('machine identities, their keys and how they log in');

  withClientOptions(agent.command('create <name>'))
    .description('create an agent; prints {"id","name","api_key"} — the key is shown only here')
    .option('--description <text>', 'what the agent is')
    .option('--key-ttl <duration>', 'lifetime of the first API key, such as 90d (default: until revoked)')
    .action(async (name: string, flags: { description?: string; keyTtl?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const created = await ctx.api.post<CreatedAgent>('/v1/admin/agents', {
        name,
        description: flags.description,
        key_ttl: checkTtl('--key-ttl', flags.keyTtl),
      });
      const shown = { id: created.id, name: created.name, api_key: created.api_key };
      // Both modes print the JSON object: it is what a script captures, and the only copy of the key.
      io.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      ctx.out.info(
        'Store the api_key now: it is not shown again (`tokenvault agent key create` makes another).',
      );
    });

  withClientOptions(agent.command('list'))
    .description('list agents')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const items: AgentView[] = [];
      let after: string | null = null;
      do {
        const query: string = after === null ? '' : `&after=${encodeURIComponent(after)}`;
        const page: AgentList = await ctx.api.get(`/v1/admin/agents?limit=500${query}`);
        items.push(...page.items);
        after = page.next_cursor;
      } while (after !== null);
      ctx.out.result(items, () =>
        items.length === 0
          ? 'No agents yet. Create one with `tokenvault agent create NAME`.'
          : table(
              ['NAME', 'ID', 'STATUS', 'JWT KEYS', 'CREATED'],
              items.map((a) => [
                a.name,
                a.id,
                a.status,
                a.jwks || a.jwks_url ? describeJwks(a) : '-',
                a.created_at,
              ]),
            ),
      );
    });

  withClientOptions(agent.command('show <name>'))
    .description('show an agent (by name or id)')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const found = await ctx.api.get<AgentView>(path(name));
      ctx.out.result(found, () => show(found));
    });

  withClientOptions(agent.command('update <name>'))
    .description('rename an agent or change its description')
    .option('--name <new-name>', 'the new name')
    .option('--description <text>', 'the new description')
    .action(async (name: string, flags: { name?: string; description?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      if (flags.name === undefined && flags.description === undefined)
        throw new InputError('nothing to update: give --name or --description');
      const updated = await ctx.api.patch<AgentView>(path(name), flags);
      ctx.out.result(updated, () => `Updated agent "${updated.name}".`);
    });

  for (const [verb, done] of [
    ['disable', 'Disabled'],
    ['enable', 'Enabled'],
  ] as const) {
    withClientOptions(agent.command(`${verb} <name>`))
      .description(
        verb === 'disable'
          ? 'refuse every authentication of the agent from now on'
          : 'enable a disabled agent',
      )
      .action(async (name: string, _flags: unknown, command: Command) => {
        const ctx = contextFor(command, io);
        const updated = await ctx.api.post<AgentView>(path(name, `/${verb}`));
        ctx.out.result(updated, () => `${done} agent "${updated.name}".`);
      });
  }

  withClientOptions(agent.command('rm <name>'))
    .description('delete an agent with its keys, workload bindings, grants and MCP proxy keys')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      await ctx.api.delete(path(name));
      ctx.out.result({ deleted: name }, () => `Deleted agent "${name}".`);
    });

  const key = agent.command('key').description('agent API keys (tv_agent_…)');

  withClientOptions(key.command('create <agent>'))
    .description('create another API key (to rotate: create, deploy, then revoke the old one)')
    .option('--ttl <duration>', 'lifetime such as 90d (default: until revoked)')
    .option('--name <label>', 'a label for the key')
    .action(async (name: string, flags: { ttl?: string; name?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      const created = await ctx.api.post<CreatedAgentKey>(path(name, '/keys'), {
        ttl: checkTtl('--ttl', flags.ttl),
        name: flags.name,
      });
      ctx.out.result(
        created,
        () =>
          `${created.api_key}\n\nKey ${created.id} of agent "${name}" (expires ${created.expires_at ?? 'never'}).\nThis is the only time it is shown.`,
      );
    });

  withClientOptions(key.command('list <agent>'))
    .description('list the agent’s API keys (never the keys themselves)')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<Items<AgentKeyView>>(path(name, '/keys'));
      ctx.out.result(items, () =>
        table(
          ['ID', 'NAME', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'],
          items.map((k) => [k.id, k.name, k.status, k.created_at, k.expires_at, k.last_used_at]),
        ),
      );
    });

  withClientOptions(key.command('revoke <agent> <key-id>'))
    .description('revoke one API key; refused from the very next request')
    .action(async (name: string, keyId: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const revoked = await ctx.api.delete<AgentKeyView>(path(name, `/keys/${encodeURIComponent(keyId)}`));
      ctx.out.result(revoked, () => `Revoked key ${revoked.id} of agent "${name}".`);
    });

  const jwks = agent.command('jwks').description('public keys for signed JWT assertions');

  withClientOptions(jwks.command('set <agent>'))
    .description('register the agent’s public JWK set (or one public JWK) from a file, or a JWKS URL')
    .option('--file <path>', 'a JSON file with the public JWK set ("-" reads standard input)')
    .option('--url <url>', 'an https URL that serves the agent’s public JWK set')
    .action(async (name: string, flags: { file?: string; url?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      if ((flags.file === undefined) === (flags.url === undefined))
        throw new InputError('give either --file or --url');
      let body: Record<string, unknown>;
      if (flags.file !== undefined) {
        const text = flags.file === '-' ? await ctx.readStdin() : readFileSync(flags.file, 'utf8');
        try {
          body = { jwks: JSON.parse(text) as unknown };
        } catch {
          throw new InputError(`${flags.file === '-' ? 'standard input' : flags.file} is not JSON`);
        }
      } else body = { jwks_url: flags.url };
      const updated = await ctx.api.put<AgentView>(path(name, '/jwks'), body);
      ctx.out.result(updated, () => `Agent "${updated.name}" JWT keys: ${describeJwks(updated)}.`);
    });

  withClientOptions(jwks.command('clear <agent>'))
    .description('remove the agent’s public keys; its JWT assertions are refused afterwards')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const updated = await ctx.api.delete<AgentView>(path(name, '/jwks'));
      ctx.out.result(updated, () => `Cleared the JWT keys of agent "${updated.name}".`);
    });

  withClientOptions(agent.command('bind <agent>'))
    .description('map workload tokens of a trusted issuer with these exact claims to the agent')
    .requiredOption('--issuer <name>', 'a trusted issuer (see `tokenvault issuer list`)')
    .option(
      '--claim <name=value>',
      'a claim the token must carry with exactly this value; repeatable',
      collect,
    )
    .action(async (name: string, flags: { issuer: string; claim?: string[] }, command: Command) => {
      const ctx = contextFor(command, io);
      const created = await ctx.api.post<BindingView>(path(name, '/bindings'), {
        issuer: flags.issuer,
        claims: parseClaims(flags.claim),
      });
      ctx.out.result(
        created,
        () => `Bound ${flags.issuer} tokens to agent "${name}" (binding ${created.id}).`,
      );
    });

  withClientOptions(agent.command('unbind <agent> <binding-id>'))
    .description('delete a workload binding')
    .action(async (name: string, bindingId: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      await ctx.api.delete(path(name, `/bindings/${encodeURIComponent(bindingId)}`));
      ctx.out.result({ deleted: bindingId }, () => `Deleted binding ${bindingId} of agent "${name}".`);
    });

  withClientOptions(agent.command('bindings <agent>'))
    .description('list the agent’s workload bindings')
    .action(async (name: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<Items<BindingView>>(path(name, '/bindings'));
      ctx.out.result(items, () =>
        table(
          ['ID', 'ISSUER', 'CLAIMS', 'CREATED'],
          items.map((b) => [
            b.id,
            b.issuer,
            Object.entries(b.claims)
              .map(([k, v]) => `${k}=${v}`)
              .join(' '),
            b.created_at,
          ]),
        ),
      );
    });
};
