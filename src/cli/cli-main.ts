import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/load-config.js';
import { packageVersion } from '../main.js';
import { registerAdminCommand } from './admin-token-command.js';
import { registerAgentCommand } from './agent-command.js';
import { registerApprovalCommand } from './approval-command.js';
import { registerAuditCommand } from './audit-command.js';
import { ApiError } from './api-client.js';
import type { CliIo } from './command-context.js';
import { registerCredentialCommand } from './credential-command.js';
import { registerGrantCommand } from './grant-command.js';
import { registerIssuerCommand } from './issuer-command.js';
import { registerKeysCommand } from './keys-command.js';
import { registerMcpCommand } from './mcp-command.js';
import { registerConnectCommand } from './connect-command.js';
import { registerOAuthCommand } from './oauth-command.js';
import { registerPolicyCommand } from './policy-command.js';
import { registerProxyCommand } from './proxy-command.js';
import { InputError } from './secret-input.js';
import { registerServeCommand } from './serve-command.js';
import { registerWebhookKmsCommand } from './webhook-kms-command.js';

export const buildProgram = (io: CliIo): Command => {
  const program = new Command('tokenvault')
    .description('Token Vault: a credential vault and broker for AI agents')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride();
  registerServeCommand(program, io);
  registerCredentialCommand(program, io);
  registerAdminCommand(program, io);
  registerKeysCommand(program, io);
  registerAgentCommand(program, io);
  registerIssuerCommand(program, io);
  registerGrantCommand(program, io);
  registerAuditCommand(program, io);
  registerOAuthCommand(program, io);
  registerMcpCommand(program, io);
  registerPolicyCommand(program, io);
  registerConnectCommand(program, io);
  registerProxyCommand(program, io);
  registerApprovalCommand(program, io);
  registerWebhookKmsCommand(program);
  for (const command of program.commands) command.exitOverride();
  return program;
};

/** Runs the CLI and returns the exit code: 0 ok, 1 the vault refused or failed, 2 bad usage. */
export const runCli = async (argv: string[], io: CliIo = process): Promise<number> => {
  const program = buildProgram(io);
  const json = argv.includes('--json');
  const fail = (code: string, message: string, exit: number, extra: Record<string, unknown> = {}) => {
    io.stderr.write(
      json ? `${JSON.stringify({ error: { code, message, ...extra } })}\n` : `error: ${message}\n`,
    );
    return exit;
  };
  try {
    await program.parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ApiError) {
      // With --json the code and the request id have their own fields; people read them in the line.
      const message = json
        ? error.message
        : `${error.message} (${error.code}${error.requestId ? `, request ${error.requestId}` : ''})`;
      return fail(error.code, message, 1, { status: error.status, request_id: error.requestId });
    }
    if (error instanceof InputError) return fail('invalid_input', error.message, 2);
    if (error instanceof ConfigError)
      return fail('invalid_config', error.message, 2, { problems: error.problems });
    return fail('internal_error', (error as Error).message, 1);
  }
};
