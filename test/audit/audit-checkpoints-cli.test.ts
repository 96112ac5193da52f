import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/** `tokenvault audit verify --checkpoints FILE` and `audit public-key` through the real CLI and server. */
describe('tokenvault audit checkpoints', { timeout: 90_000 }, () => {
  let dir: TempDataDir;
  let server: ServerProcess;
  let file: string;
  const env = cleanEnv();

  const cli = (args: string[], input?: string) =>
    runCli(args, { cwd: dir.dir, env: { ...env, TOKENVAULT_ADDR: server.url }, input });

  const inDb = <T>(use: (db: SQLite.Database) => T): T => {
    const db = new SQLite(join(dir.dir, '.tokenvault', 'tokenvault.db'));
    try {
      db.pragma('busy_timeout = 5000');
      return use(db);
    } finally {
      db.close();
    }
  };
  const headSeq = () => inDb((db) => (db.prepare('select seq from audit_head').get() as { seq: number }).seq);
  const shippedSeqs = () =>
    readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { seq: number }).seq);

  const lastShipped = () => {
    try {
      return shippedSeqs().at(-1);
    } catch {
      return undefined; // not written yet
    }
  };

  beforeAll(async () => {
    dir = await createTempDataDir();
    file = join(dir.dir, 'checkpoints.jsonl');
    server = await startServer([], {
      cwd: dir.dir,
      env: {
        ...env,
        TOKENVAULT_AUDIT_CHECKPOINT_EVENTS: '1',
        TOKENVAULT_AUDIT_CHECKPOINT_SECONDS: '0',
        TOKENVAULT_AUDIT_CHECKPOINT_FILE: file,
      },
    });
    for (const name of ['one', 'two', 'three']) {
      expect(
        (await cli(['credential', 'add', name, '--type', 'api_key', '--secret-stdin'], `s-${name}\n`)).code,
      ).toBe(0);
    }
    // The writer looks at the head once a second.
    const head = headSeq();
    const deadline = Date.now() + 10_000;
    while (lastShipped() !== head && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lastShipped()).toBe(head);
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await dir?.cleanup();
  });

  it('prints the public key that signs them', async () => {
    const printed = await cli(['audit', 'public-key', '--json']);
    expect(printed.code, printed.stderr).toBe(0);
    const jwk = JSON.parse(printed.stdout) as { kty: string; crv: string; kid: string };
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    const line = JSON.parse(readFileSync(file, 'utf8').trim().split('\n')[0]!) as { key_id: string };
    expect(line.key_id).toBe(jwk.kid);
  });

  it('detects a truncation against the shipped file that plain verify cannot see', async () => {
    const ok = await cli(['audit', 'verify', '--checkpoints', file]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);

    const keep = headSeq() - 2;
    inDb((db) => {
      const { hash } = db.prepare('select hash from audit_events where seq = ?').get(keep) as {
        hash: string;
      };
      db.prepare('delete from audit_events where seq > ?').run(keep);
      db.prepare('update audit_head set seq = ?, hash = ? where id = 1').run(keep, hash);
      db.prepare('delete from audit_checkpoints').run();
    });

    const plain = await cli(['audit', 'verify']);
    expect(plain.code, plain.stdout + plain.stderr).toBe(0);
    const anchored = await cli(['audit', 'verify', '--checkpoints', file]);
    expect(anchored.code).toBe(1);
    expect(anchored.stdout).toMatch(/FAILED at event \d+: truncated/);
  });
});
