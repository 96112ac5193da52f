import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { AdminTokenView, CreatedAdminToken, Items } from '../http/schemas/response-types.js';
import { pino } from 'pino';
import { adminRoles, isAdminRole } from '../admin/admin-roles.js';
import { resetRootToken } from '../admin/root-token-bootstrap.js';
import { loadAuditChainKey } from '../audit/audit-keys.js';
import { createAuditWriter } from '../audit/audit-writer.js';
import type { Config } from '../config/config-schema.js';
import { loadConfig } from '../config/load-config.js';
import { loadRootKey } from '../crypto/master-key.js';
import { createPlatformKeyProvider } from '../crypto/platform-key-provider.js';
import { createWebhookKeyProvider } from '../crypto/webhook-key-provider.js';
import { createDataKeyService } from '../keys/data-key-service.js';
import type { KeyProviders } from '../keys/key-providers.js';
import { vaultStateRepo } from '../keys/vault-state-repo.js';
import { systemClock } from '../lib/clock.js';
import { parseDuration } from '../lib/duration.js';
import { openStore, sqliteFileName, type Store } from '../store/database.js';
import { type CliIo, contextFor, withClientOptions } from './command-context.js';
import { createOutput, table } from './output.js';
import { InputError } from './secret-input.js';

/**
 * Whoever runs `admin reset-root` must hold what the server itself needs to open the vault's secrets:
 * the master key in platform mode (it must open the stored keyring), the webhook's URL and secret in
 * webhook mode (the webhook must answer). Access to the database alone is not enough.
 */
const proveKeyAccess = async (config: Config, store: Store): Promise<KeyProviders> => {
  const mode = await vaultStateRepo.getMode(store.db);
  if (!mode) {
    throw new InputError(
      `The store at ${store.location} has never been started; \`tokenvault serve\` creates the root token on its first start.`,
    );
  }
  if (mode === 'platform') {
    const rootKey = loadRootKey({ masterKey: config.masterKey, dataDir: config.dataDir, create: false });
    const platform = createPlatformKeyProvider({ rootKey: rootKey.key, db: store.db, clock: systemClock });
    await platform.initialize();
    return { platform };
  }
  if (!config.kmsWebhookUrl || !config.kmsWebhookSecret) {
    throw new InputError(
      'The vault is in webhook mode: set TOKENVAULT_KMS_WEBHOOK_URL and TOKENVAULT_KMS_WEBHOOK_SECRET.',
    );
  }
  const webhook = createWebhookKeyProvider({
    url: config.kmsWebhookUrl,
    secret: config.kmsWebhookSecret,
    timeoutMs: config.kmsWebhookTimeoutMs,
    clock: systemClock,
  });
  await webhook.check();
  return { webhook };
};

/** Revokes the root token(s) and writes a new one to the data dir, directly on the store. */
const resetRoot = async (config: Config): Promise<{ path: string; revoked: number }> => {
  if (!config.databaseUrl && !existsSync(join(config.dataDir, sqliteFileName))) {
    throw new InputError(
      `No vault store in ${config.dataDir}: pass the server's --data-dir (or --database-url for PostgreSQL).`,
    );
  }
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 2 });
  const logger = pino({ level: 'error' }, process.stderr);
  const audit = createAuditWriter({ store, clock: systemClock, logger });
  try {
    const providers = await proveKeyAccess(config, store);
    // Its event continues the keyed audit chain, like the server's.
    const dataKeys = createDataKeyService({ db: store.db, providers, clock: systemClock });
    audit.useChainKey(
      await loadAuditChainKey({ store, dataKeys, clock: systemClock, logger: { info: () => {} } }),
    );
    const reset = await resetRootToken({
      db: store.db,
      dialect: store.dialect,
      clock: systemClock,
      audit,
      dataDir: config.dataDir,
    });
    await store.durable();
    return reset;
  } finally {
    await audit.close();
    await store.close();
  }
};

export const registerAdminCommand = (program: Command, io: CliIo): void => {
  const admin = program.command('admin').description('administer the vault');

  admin
    .command('reset-root')
    .description(
      'revoke the root admin token and write a new one to <data-dir>/admin-token; runs on the store ' +
        'directly (the server may be stopped) and needs the master key (or the key webhook)',
    )
    .option('--data-dir <dir>', "the server's data dir (env TOKENVAULT_DATA_DIR; default ./.tokenvault)")
    .option('--database-url <url>', 'PostgreSQL URL of the store (env TOKENVAULT_DATABASE_URL)')
    .option('--json', 'print JSON instead of text')
    .action(async (flags: { dataDir?: string; databaseUrl?: string; json?: boolean }) => {
      const config = loadConfig({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl }, io.env);
      const reset = await resetRoot(config);
      const out = createOutput(Boolean(flags.json), io);
      out.result(
        { path: reset.path, revoked_root_tokens: reset.revoked },
        () =>
          `New root admin token written to ${reset.path} (mode 0600); ${reset.revoked} old root token(s) revoked.\n` +
          'Restarting the server is not needed: the old token fails on its next use.',
      );
    });

  const token = admin.command('token').description('admin tokens');

  withClientOptions(token.command('create <name>'))
    .description(
      'create an admin token; it is printed once, store it now. Never of a wider role or a longer ' +
        'life than the token creating it',
    )
    .requiredOption(
      '--role <role>',
      `what it may do: ${adminRoles.join(' | ')} (admin: everything; operator: credentials, agents, ` +
        'grants, issuers; approver: approvals only; auditor: read-only)',
    )
    .option('--ttl <duration>', 'lifetime such as 12h or 30d (default: until revoked)')
    .action(async (name: string, flags: { role: string; ttl?: string }, command: Command) => {
      const ctx = contextFor(command, io);
      if (!isAdminRole(flags.role)) {
        throw new InputError(`--role "${flags.role}" is not a role; use one of ${adminRoles.join(', ')}`);
      }
      const ttlSeconds = flags.ttl === undefined ? undefined : parseDuration(flags.ttl);
      if (flags.ttl !== undefined && ttlSeconds === undefined) {
        throw new InputError(`--ttl "${flags.ttl}" is not a duration; use forms like 90m, 12h, 30d`);
      }
      const created = await ctx.api.post<CreatedAdminToken>('/v1/admin/tokens', {
        name,
        role: flags.role,
        ttl_seconds: ttlSeconds,
      });
      ctx.out.result(
        created,
        () =>
          `${created.token}\n\nAdmin token "${created.name}" (id ${created.id}, role ${created.role}, expires ${created.expires_at ?? 'never'}).\nThis is the only time it is shown.`,
      );
    });

  withClientOptions(token.command('list'))
    .description('list admin tokens (never the tokens themselves)')
    .action(async (_flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const { items } = await ctx.api.get<Items<AdminTokenView>>('/v1/admin/tokens');
      ctx.out.result(items, () =>
        table(
          ['ID', 'NAME', 'ROLE', 'ROOT', 'CREATED', 'EXPIRES', 'REVOKED', 'LAST USED'],
          items.map((t) => [
            t.id,
            t.name,
            t.role,
            t.root ? 'yes' : '',
            t.created_at,
            t.expires_at,
            t.revoked_at,
            t.last_used_at,
          ]),
        ),
      );
    });

  withClientOptions(token.command('revoke <id>'))
    .description('revoke an admin token; it fails on its very next use')
    .action(async (id: string, _flags: unknown, command: Command) => {
      const ctx = contextFor(command, io);
      const revoked = await ctx.api.delete<AdminTokenView>(`/v1/admin/tokens/${encodeURIComponent(id)}`);
      ctx.out.result(revoked, () => `Revoked admin token "${revoked.name}" (${revoked.id}).`);
    });
};
