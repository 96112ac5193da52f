import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';

/** `tokenvault audit …` through the real CLI against a real server (run `npm run build` first). */
// Each CLI run starts a Node process; give the file room on a busy machine.
describe('tokenvault audit', { timeout: 90_000 }, () => {
  let dir: TempDataDir;
  let server: ServerProcess;
  const env = cleanEnv();

  const cli = (args: string[], input?: string) =>
    runCli(args, { cwd: dir.dir, env: { ...env, TOKENVAULT_ADDR: server.url }, input });

  /** Tampering straight in the database file, as someone with disk access would. */
  const tamper = (statement: string) => {
    const db = new SQLite(join(dir.dir, '.tokenvault', 'tokenvault.db'));
    try {
      db.pragma('busy_timeout = 5000');
      return db.prepare(statement).run();
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    dir = await createTempDataDir();
    server = await startServer([], { cwd: dir.dir, env });
    expect(
      (await cli(['credential', 'add', 'slack', '--type', 'api_key', '--secret-stdin'], 'xoxb-cli-1\n')).code,
    ).toBe(0);
    expect(
      (await cli(['credential', 'add', 'slack', '--type', 'api_key', '--secret-stdin'], 'xoxb-cli-2\n')).code,
    ).toBe(1);
    expect((await cli(['credential', 'update', 'slack', '--description', 'chat'])).code).toBe(0);
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await dir?.cleanup();
  });

  it('lists events as a table, newest first, and as JSON with filters', async () => {
    const listed = await cli(['audit', 'list']);
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^SEQ\s+TIME\s+ACTOR\s+ACTION\s+TARGET\s+DECISION\s+REASON\s+CLIENT$/);
    expect(lines[1]).toMatch(
      /^4\s+\S+\s+admin:\S+\s+credential\.update\s+credential:slack\s+allow\s+ok\s+127\.0\.0\.1$/,
    );
    expect(lines[2]).toMatch(/credential\.create\s+credential:slack\s+deny\s+credential_exists/);

    const denied = await cli(['audit', 'list', '--json', '--decision', 'deny']);
    const events = JSON.parse(denied.stdout) as { decision: string; reason: string }[];
    expect(events).toEqual([expect.objectContaining({ decision: 'deny', reason: 'credential_exists' })]);

    const recent = await cli(['audit', 'list', '--json', '--since', '1h', '--action', 'credential.create']);
    expect((JSON.parse(recent.stdout) as unknown[]).length).toBe(2);
    const none = await cli(['audit', 'list', '--json', '--until', '2000-01-01T00:00:00Z']);
    expect(JSON.parse(none.stdout)).toEqual([]);

    const bad = await cli(['audit', 'list', '--since', 'yesterday']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--since');
  });

  it('exports JSONL to standard output and CSV to a file', async () => {
    const jsonl = await cli(['audit', 'export', '--format', 'jsonl']);
    expect(jsonl.code).toBe(0);
    const events = jsonl.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { seq: number; action: string });
    // 1 is the root token, created by the system on first start.
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(events[0]).toMatchObject({ action: 'admin_token.create' });

    const file = join(dir.dir, 'audit.csv');
    const csv = await cli(['audit', 'export', '--format', 'csv', '--output', file]);
    expect(csv.code).toBe(0);
    expect(csv.stderr).toContain(`Exported the audit log to ${file}`);
    const rows = readFileSync(file, 'utf8').trim().split('\r\n');
    expect(rows[0]).toMatch(/^seq,id,time,namespace,actor_type/);
    expect(rows).toHaveLength(5);

    const wrong = await cli(['audit', 'export', '--format', 'xml']);
    expect(wrong.code).toBe(2);
    expect(existsSync(join(dir.dir, 'xml'))).toBe(false);
  });

  it('verifies an untouched log, exit 0', async () => {
    const verified = await cli(['audit', 'verify']);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('OK: 4 event(s) verified');
  });

  it('fails with exit 1 naming the event after a row is edited, then after one is deleted', async () => {
    const id = (
      JSON.parse((await cli(['audit', 'list', '--json'])).stdout) as { seq: number; id: string }[]
    ).find((e) => e.seq === 3)!.id;
    tamper("update audit_events set reason = 'ok', decision = 'allow' where seq = 3");
    const edited = await cli(['audit', 'verify']);
    expect(edited.code).toBe(1);
    expect(edited.stdout).toContain(`FAILED at event 3 (id ${id}): altered`);
    expect(edited.stdout).toContain('2 event(s) before it check out');

    const asJson = await cli(['audit', 'verify', '--json']);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({
      ok: false,
      first_bad: { seq: 3, id, problem: 'altered' },
    });

    tamper('delete from audit_events where seq = 3');
    const deleted = await cli(['audit', 'verify']);
    expect(deleted.code).toBe(1);
    expect(deleted.stdout).toContain('FAILED at event 3: missing');
    expect(deleted.stdout).toContain('event 3 was removed');
  });
});
