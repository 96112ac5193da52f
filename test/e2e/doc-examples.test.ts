import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanEnv, type ServerProcess, startServer } from '../helpers/cli.js';
import { createTempDataDir, type TempDataDir } from '../helpers/sqlite.js';
import { type DocBlock, extractBlocks, shellScript } from './doc-examples.js';

/**
 * Every runnable example of the README and docs/, run as written against a real vault (`tokenvault
 * serve` on SQLite, one fresh vault per document), in document order, as a reader following along
 * would: the shell blocks of the quick starts through `./bin/tokenvault`, the JavaScript blocks as ES
 * modules in a child `node`, importing `token-vault/sdk` and `jose` as an application would. An example
 * that breaks, or prints `undefined` where a value was promised, fails here.
 *
 * What the reader supplies: the secrets the examples read from the environment, the agent key that
 * `agent create` printed (as VAULT_TOKEN and TOKENVAULT_AGENT_KEY), and the vault's address
 * (TOKENVAULT_ADDR: the test's vault listens on a free port, not 8200).
 */

const root = fileURLToPath(new URL('../../', import.meta.url));
const slackPrefix = 'xoxb-docs-example';
const secrets = {
  SLACK_BOT_TOKEN: `${slackPrefix}-4711`,
  NEW_TOKEN: `${slackPrefix}-rotated-4712`,
  DB_PASSWORD: 'warehouse-docs-example-pw',
};
const githubPat = 'ghp_docsexample0000000000000000000000';
/** Documents whose shell blocks are a walk-through to run; elsewhere they are reference. */
const walkThroughs = new Set(['README.md', 'docs/agents-quickstart.md']);

const documents = ['README.md', ...readdirSync(join(root, 'docs')).map((f) => `docs/${f}`)]
  .filter((file) => file.endsWith('.md'))
  .map((file) => ({ file, blocks: extractBlocks(file, readFileSync(join(root, file), 'utf8')) }));

const runs = (file: string, block: DocBlock) =>
  block.skip === undefined && (block.lang === 'js' || (block.lang === 'sh' && walkThroughs.has(file)));

const run = (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, input = '') =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });

/** A reader's working directory: `./bin/tokenvault`, the packages an agent app imports, a PAT file. */
const workspace = (dir: string) => {
  symlinkSync(join(root, 'bin'), join(dir, 'bin'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(root, join(dir, 'node_modules', 'token-vault'));
  symlinkSync(join(root, 'node_modules', 'jose'), join(dir, 'node_modules', 'jose'));
  writeFileSync(join(dir, 'github-pat.txt'), `${githubPat}\n`, { mode: 0o600 });
  mkdirSync(join(dir, 'examples'));
};

describe('the README’s and docs’ examples, run as written', () => {
  it('finds the examples, and every skipped one says why', () => {
    const all = documents.flatMap((d) => d.blocks.map((b) => ({ file: d.file, block: b })));
    const js = all.filter(({ block }) => block.lang === 'js');
    expect(js.length).toBeGreaterThanOrEqual(5);
    expect(all.filter(({ file, block }) => runs(file, block)).length).toBeGreaterThanOrEqual(10);
    for (const { block } of all) if (block.skip !== undefined) expect(block.skip).not.toBe('');
  });

  for (const { file, blocks } of documents.filter((d) => d.blocks.some((b) => runs(d.file, b)))) {
    describe(file, () => {
      let dir: TempDataDir | undefined;
      let server: ServerProcess | undefined;
      let env: NodeJS.ProcessEnv = {};

      const ready = async () => {
        if (server) return;
        dir = await createTempDataDir();
        workspace(dir.dir);
        server = await startServer([], { cwd: dir.dir, env: cleanEnv() });
        env = cleanEnv({ ...secrets, HOME: dir.dir, TOKENVAULT_ADDR: server.url });
      };

      afterAll(async () => {
        await server?.stop('SIGKILL');
        await dir?.cleanup();
      });

      for (const block of blocks.filter((b) => runs(file, b))) {
        it(`${block.where} (${block.lang})`, async () => {
          await ready();
          const cwd = dir!.dir;
          if (block.lang === 'sh') {
            const { script } = shellScript(block.code);
            const result = await run('bash', ['-euo', 'pipefail', '-c', script], cwd, env);
            expect(result.code, `${block.where} failed:\n${result.stderr}${result.stdout}`).toBe(0);
            // No command ever prints a stored secret.
            for (const secret of [...Object.values(secrets), githubPat]) {
              expect(result.stdout + result.stderr).not.toContain(secret);
            }
            // The key `agent create` printed is what the reader hands the agent.
            const key = /"api_key":\s*"(tv_agent_[^"]+)"/.exec(result.stdout)?.[1];
            if (key) env = { ...env, VAULT_TOKEN: key, TOKENVAULT_AGENT_KEY: key };
            return;
          }
          const script = join(cwd, 'examples', `${block.where.replace(/[^A-Za-z0-9]+/g, '-')}.mjs`);
          writeFileSync(script, block.code);
          const result = await run(process.execPath, [script], cwd, env);
          expect(result.code, `${block.where} failed:\n${result.stderr}`).toBe(0);
          expect(result.stderr).toBe('');
          expect(result.stdout, `${block.where} printed undefined`).not.toMatch(/\bundefined\b/);
          if (/credentials\/slack|getCredential\('slack'/.test(block.code)) {
            expect(result.stdout, `${block.where} did not get the slack token`).toContain(slackPrefix);
          }
        }, 90_000);
      }
    });
  }
});
