import type { Command } from 'commander';
import { formatDuration } from '../lib/duration.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { registerOAuthAppCommand } from './oauth-app-command.js';
import { table } from './output.js';

interface ProviderView {
  name: string;
  display_name: string;
  kind: string;
  variant_of: string | null;
  parameters: string[];
  pkce: string;
  client_auth: string;
  tokens_expire: boolean;
  refresh_tokens: boolean;
  rotation: string;
  single_use_refresh_tokens: boolean;
  assumed_lifetime_seconds: number | null;
  idle_expiry_days: number | null;
  api_base_url: string | null;
}

/** How refresh behaves, in a few words: `rotating, single-use`, `fixed`, `no refresh`. */
const refreshOf = (p: ProviderView): string => {
  if (!p.refresh_tokens) return p.tokens_expire ? 'no refresh' : 'never expires';
  const rotation = { always: 'rotating', sometimes: 'may rotate', never: 'fixed' }[p.rotation] ?? p.rotation;
  const idle = p.idle_expiry_days ? `, idle ${p.idle_expiry_days}d` : '';
  return `${rotation}${p.single_use_refresh_tokens ? ', single-use' : ''}${idle}`;
};

export const registerOAuthCommand = (program: Command, io: CliIo): void => {
  const oauth = program.command('oauth').description('OAuth providers and apps');

  withClientOptions(oauth.command('providers'))
    .description('list the provider catalog: PKCE, refresh behaviour, assumed lifetime, API base URL')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<{ items: ProviderView[] }>('/v1/admin/oauth/providers');
      ctx.out.result(items, () =>
        table(
          ['NAME', 'PROVIDER', 'SETTINGS', 'PKCE', 'REFRESH', 'ASSUMED LIFETIME', 'API BASE URL'],
          items.map((p) => [
            p.name,
            p.display_name,
            p.parameters.join(',') || null,
            p.pkce,
            refreshOf(p),
            p.assumed_lifetime_seconds === null ? null : formatDuration(p.assumed_lifetime_seconds),
            p.api_base_url,
          ]),
        ),
      );
    });

  registerOAuthAppCommand(oauth, io);
};
