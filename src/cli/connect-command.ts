import type { Command } from 'commander';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';

interface ConnectLinkView {
  id: string;
  url: string;
  expires_at: string;
  user_code?: string;
  verification_uri?: string;
}

interface ConnectFlags {
  agent: string;
  user?: string;
  scopes?: string;
  grantTtl?: string;
  reveal?: boolean;
  credential?: string;
  device?: boolean;
  clientCredentials?: boolean;
}

/** `tokenvault connect APP --agent A --user U`: a consent link for one person, one agent, one app. */
export const registerConnectCommand = (program: Command, io: CliIo): void => {
  withClientOptions(program.command('connect <app>'))
    .description('make a short-lived, single-use link that connects a user’s account for an agent')
    .requiredOption('--agent <agent>', 'the agent (id or name) that gets the grant')
    .option('--user <user>', 'the end user: the credential’s subject (required unless --client-credentials)')
    .option('--scopes <list>', 'scopes to ask for (comma- or space-separated; default: the app’s)')
    .option('--grant-ttl <ttl>', 'how long the grant lives, e.g. 7d (default: until revoked)')
    .option('--reveal', 'let the agent read the token itself (default: proxy only)')
    .option('--credential <name>', 'the credential’s name (default: the app’s name)')
    .option('--device', 'use the device flow: a code to enter at the provider instead of a link')
    .option(
      '--client-credentials',
      'no user: the vault fetches the app’s own token now and renews it by itself',
    )
    .action(async (app: string, flags: ConnectFlags, command: Command) => {
      const ctx = contextFor(command, io);
      const link = await ctx.api.post<ConnectLinkView>('/v1/admin/connect', {
        app,
        agent: flags.agent,
        user: flags.user,
        scopes: flags.scopes?.split(/[\s,]+/).filter(Boolean),
        grant_ttl: flags.grantTtl,
        reveal: flags.reveal,
        credential: flags.credential,
        device: flags.device,
        client_credentials: flags.clientCredentials,
      });
      ctx.out.result(link, () =>
        flags.clientCredentials
          ? `Stored a client-credentials token for agent ${flags.agent}; the vault renews it before ${link.expires_at}.`
          : link.user_code
            ? `Have ${flags.user} enter the code ${link.user_code} at ${link.verification_uri}\n` +
              `(or open ${link.url}) before ${link.expires_at}.`
            : `Send this link to ${flags.user} (it works once, until ${link.expires_at}):\n${link.url}`,
      );
    });
};
