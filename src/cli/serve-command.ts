import type { Command } from 'commander';
import { type SettingName, settings } from '../config/config-schema.js';
import { loadConfig } from '../config/load-config.js';
import { createVault } from '../main.js';
import type { CliIo } from './command-context.js';

export const registerServeCommand = (program: Command, io: CliIo): void => {
  const serve = program
    .command('serve')
    .description('run the vault server (SQLite in ./.tokenvault unless --database-url is given)');
  for (const spec of Object.values(settings)) {
    // A switch (a boolean default) may be given bare: `--access-log` is `--access-log true`.
    const value = 'default' in spec && typeof spec.default === 'boolean' ? '[value]' : '<value>';
    serve.option(`${spec.flag} ${value}`, `${spec.description} [env ${spec.env}]`);
  }
  serve.action(async (flags: Record<string, string>) => {
    const config = loadConfig(
      Object.fromEntries((Object.keys(settings) as SettingName[]).map((name) => [name, flags[name]])),
      io.env,
    );
    const vault = await createVault(config);
    let url: string;
    try {
      url = await vault.listen();
    } catch (error) {
      // Nothing would ever be served: close the store (and the key job) and exit non-zero, rather than
      // stay alive listening on nothing.
      await vault.stop();
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'EADDRINUSE'
          ? 'the port is already in use (another vault or program?); stop it or choose another --port'
          : code === 'EACCES'
            ? 'permission denied (ports below 1024 need privileges); choose another --port'
            : (error as Error).message;
      throw new Error(`cannot listen on ${config.host}:${config.port}: ${why}`);
    }
    // The handlers first: Node installs a signal handler only with its first listener, and a SIGTERM
    // sent the moment "listening on" is read would otherwise end the process without a clean stop.
    const stopped = new Promise<void>((resolve) => {
      const shutdown = (signal: string) => {
        io.stderr.write(`${signal} received: finishing requests in flight, then stopping\n`);
        const force = setTimeout(() => {
          io.stderr.write('shutdown timed out; exiting\n');
          vault.dropLogs();
          process.exit(1);
        }, config.shutdownTimeoutMs);
        force.unref();
        vault.stop().then(resolve, (error: unknown) => {
          io.stderr.write(`error while stopping: ${(error as Error).message}\n`);
          process.exitCode = 1;
          resolve();
        });
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
    });
    // The token line comes first: whoever waits for "listening on" has everything by then.
    if (vault.adminTokenPath) {
      io.stderr.write(
        `Root admin token written to ${vault.adminTokenPath} (mode 0600). The CLI on this machine uses it.\n`,
      );
    }
    const where = vault.store.dialect === 'sqlite' ? `SQLite: ${vault.store.location}` : 'PostgreSQL';
    io.stderr.write(`Token Vault (${where}) listening on ${url}\n`);
    await stopped;
    // Everything is closed. A log write still blocked on a pipe nobody reads would keep the process
    // alive for ever (it cannot be cancelled), so the process ends here rather than when it is idle.
    process.exit();
  });
};
