// PostgreSQL for the benchmark: the operator's server (TOKENVAULT_BENCH_DATABASE_URL, an admin URL whose
// role may CREATE DATABASE), or a throwaway server started here on 127.0.0.1 when `initdb` exists.
// Either way each benchmark gets its own fresh database, dropped at the end.

import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** Newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/<major>/bin, else `initdb` on PATH. */
const findPgBin = () => {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^\d+$/.test(d))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  for (const major of majors) {
    const dir = join(root, major, 'bin');
    if (['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(dir, b)))) return dir;
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const initdb = which.stdout.trim();
  return which.status === 0 && initdb ? initdb.replace(/\/initdb$/, '') : undefined;
};

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/**
 * Starts a throwaway server. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
 * user (from `/`, so that user never needs the working directory). Durability settings are left at
 * their defaults (fsync and synchronous_commit on), the same promise the SQLite store makes with
 * `synchronous = FULL`.
 */
const startThrowaway = async (binDir, log) => {
  const asRoot = process.getuid?.() === 0;
  const run = (cmd, args) => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
    return execFileSync(file, argv, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  };
  const root = mkdtempSync(join(tmpdir(), 'tokenvault-bench-pg.'));
  const dataDir = join(root, 'data');
  const logFile = join(root, 'server.log');
  const password = randomBytes(18).toString('hex');
  const pwFile = join(root, 'pwfile');
  writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(root, uid, gid);
    chownSync(pwFile, uid, gid);
  }

  let started = false;
  const stop = async () => {
    if (started) {
      try {
        run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30']);
      } catch {
        try {
          run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '30']);
        } catch {
          log(`could not stop the PostgreSQL server in ${dataDir}; stop it by hand`);
        }
      }
      started = false;
    }
    rmSync(root, { recursive: true, force: true });
  };

  try {
    run(join(binDir, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'postgres',
      `--pwfile=${pwFile}`,
      '-E',
      'UTF8',
      '--locale=C',
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      '--no-sync',
    ]);
    const conf = `\n# tokenvault bench: loopback only, private socket\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${root}'\nmax_connections = 100\n`;
    writeFileSync(
      join(dataDir, 'postgresql.conf'),
      readFileSync(join(dataDir, 'postgresql.conf'), 'utf8') + conf,
    );
    let port;
    for (let attempt = 1; attempt <= 5 && !port; attempt++) {
      const candidate = await freePort();
      try {
        started = true;
        run(join(binDir, 'pg_ctl'), [
          'start',
          '-D',
          dataDir,
          '-l',
          logFile,
          '-w',
          '-t',
          '60',
          '-o',
          `-p ${candidate}`,
        ]);
        port = candidate;
      } catch {
        log(`PostgreSQL did not start on port ${candidate} (attempt ${attempt} of 5)`);
        try {
          run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate']);
        } catch {
          // It never started; the next attempt starts afresh.
        }
        started = false;
      }
    }
    if (!port) throw new Error(`could not start PostgreSQL; see ${logFile}`);
    const version = execFileSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' }).trim();
    return {
      adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      source: `throwaway server (${version}) on 127.0.0.1:${port}, default durability`,
      postmasterPid: () => Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
};

/**
 * The PostgreSQL server to benchmark against, or `{ skipped }` with the reason. `stop()` is safe to
 * call twice and must run even when the benchmark fails.
 */
export const openPostgres = async (log) => {
  const given = process.env.TOKENVAULT_BENCH_DATABASE_URL;
  let server;
  if (given) {
    server = {
      adminUrl: given,
      source: 'TOKENVAULT_BENCH_DATABASE_URL',
      postmasterPid: undefined,
      stop: async () => {},
    };
  } else {
    const binDir = findPgBin();
    if (!binDir) {
      return {
        skipped:
          'PostgreSQL skipped: TOKENVAULT_BENCH_DATABASE_URL is unset and no initdb was found (install the postgresql package, or point the variable at an admin URL).',
      };
    }
    server = await startThrowaway(binDir, log);
  }

  const withAdmin = async (sql) => {
    const client = new pg.Client({ connectionString: server.adminUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const databases = [];
  return {
    source: server.source,
    postmasterPid: server.postmasterPid,
    /** A new empty database (hex name, so it needs no escaping) and its URL. */
    async createDatabase() {
      const name = `tv_bench_${randomBytes(6).toString('hex')}`;
      await withAdmin(`CREATE DATABASE "${name}"`);
      databases.push(name);
      const url = new URL(server.adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    async stop() {
      for (const name of databases.splice(0)) {
        await withAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
      }
      await server.stop();
    },
  };
};
