import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/lib/clock.js';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addCredential, grant } from './retrieval-fixtures.js';

/**
 * The seed article's client snippet, verbatim, as a real CommonJS script in a child `node` process,
 * against a vault listening on 127.0.0.1; admin steps go through the real `tokenvault` CLI.
 *
 * About `require('node-fetch')`: the article was written for node-fetch 2 (CommonJS). The project has
 * node-fetch 3, which is ESM-only; on Node ≥ 20.19 `require()` of it returns the module namespace
 * object, not the function, so the first line alone would give "fetch is not a function". The script
 * therefore runs in a directory whose `node_modules/node-fetch` is the CommonJS adapter node-fetch 3's
 * own README gives for CommonJS users, `(...args) => import('node-fetch').then(({default: fetch}) =>
 * fetch(...args))`, pointed at the real node-fetch 3 of this repository: the snippet's text is
 * unchanged and its requests are made by node-fetch 3 itself. The second form drops the `require`
 * line, so the same function uses Node's global `fetch`.
 */

const SNIPPET_REQUIRE_LINE = "const fetch = require('node-fetch');";
const SNIPPETS = {
  // Seed article 000, "Example: Agent requesting a credential from a vault API".
  article: `async function getSlackToken(agentId, vaultUrl, vaultToken) { const response = await fetch(\`\${vaultUrl}/v1/agents/\${agentId}/credentials/slack\`, { headers: { 'Authorization': \`Bearer \${vaultToken}\` } }); if (!response.ok) { throw new Error(\`Failed to fetch token: \${response.statusText}\`); } const data = await response.json(); return data.access_token; }`,
  // The same article, later section: the shorter variant.
  short: `async function getSlackToken(agentId, vaultUrl, vaultToken) { const res = await fetch(\`\${vaultUrl}/v1/agents/\${agentId}/credentials/slack\`, { headers: { 'Authorization': \`Bearer \${vaultToken}\` } }); if (!res.ok) throw new Error('Failed to fetch credential'); const data = await res.json(); return data.access_token; }`,
};

const seedsDir = fileURLToPath(new URL('../../../shared/seeds/', import.meta.url));
/** The article's snippet lines, copied into the repository so that a fresh clone checks them too. */
const articleCopy = fileURLToPath(new URL('./fixtures/seed-article-000-snippets.txt', import.meta.url));
const slackSecret = 'xoxb-seed-snippet-secret-42';
const start = '2026-06-01T12:00:00.000Z';

const driver = `
getSlackToken(process.env.AGENT_ID, process.env.VAULT_URL, process.env.VAULT_TOKEN).then(
  (token) => process.stdout.write(JSON.stringify({ ok: true, token })),
  (error) => process.stdout.write(JSON.stringify({ ok: false, message: error.message })),
);
`;

type Form = 'node-fetch' | 'global fetch';
type Variant = keyof typeof SNIPPETS;

const runNode = (script: string, cwd: string, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [script], { cwd, env: cleanEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });

describe('the seed article’s snippet, verbatim, against a listening vault', () => {
  let t: TestVault;
  let url: string;
  let dir: string;
  const clock = fixedClock(start);
  const agents: Record<string, { id: string; api_key: string }> = {};

  const cli = async (args: string[], input?: string) => {
    const result = await runCli([...args, '--addr', url], {
      cwd: dir,
      env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }),
      input,
    });
    expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  };

  const snippet = async (form: Form, variant: Variant, agent: string, token: string) => {
    const script = join(dir, `${variant}-${form === 'node-fetch' ? 'node-fetch' : 'global'}.cjs`);
    const body = form === 'node-fetch' ? `${SNIPPET_REQUIRE_LINE} ${SNIPPETS[variant]}` : SNIPPETS[variant];
    writeFileSync(script, `${body}\n${driver}`);
    const result = await runNode(script, dir, { AGENT_ID: agent, VAULT_URL: url, VAULT_TOKEN: token });
    expect(result.stderr).toBe('');
    return JSON.parse(result.stdout) as { ok: true; token: string } | { ok: false; message: string };
  };

  const everyForm = async (agent: string, token: string) =>
    Promise.all(
      (['node-fetch', 'global fetch'] as const).flatMap((form) =>
        (Object.keys(SNIPPETS) as Variant[]).map(async (variant) => ({
          form,
          variant,
          result: await snippet(form, variant, agent, token),
        })),
      ),
    );

  beforeAll(async () => {
    t = await startTestVault({ clock });
    url = await t.vault.listen();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    dir = join(t.dataDir, 'agent-app');
    // The CommonJS adapter for node-fetch 3 (see above), resolving to this repository's node-fetch 3.
    const realNodeFetch = pathToFileURL(createRequire(import.meta.url).resolve('node-fetch')).href;
    expect(
      JSON.parse(readFileSync(join(fileURLToPath(realNodeFetch), '../../package.json'), 'utf8')).version,
    ).toMatch(/^3\./);
    mkdirSync(join(dir, 'node_modules', 'node-fetch'), { recursive: true });
    writeFileSync(
      join(dir, 'node_modules', 'node-fetch', 'package.json'),
      '{"name":"node-fetch","main":"index.js"}\n',
    );
    writeFileSync(
      join(dir, 'node_modules', 'node-fetch', 'index.js'),
      `module.exports = (...args) => import(${JSON.stringify(realNodeFetch)}).then(({ default: fetch }) => fetch(...args));\n`,
    );

    await cli(
      ['credential', 'add', 'slack', '--type', 'api_key', '--secret-stdin', '--scopes', 'read,write'],
      `${slackSecret}\n`,
    );
    for (const name of ['agent-42', 'agent-9']) {
      agents[name] = JSON.parse(await cli(['agent', 'create', name])) as { id: string; api_key: string };
    }
    await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'slack',
      '--until-revoked',
      '--reveal',
    ]);
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('is copied exactly from the seed article (its copy in test/retrieval/fixtures)', () => {
    const copy = readFileSync(articleCopy, 'utf8');
    for (const text of Object.values(SNIPPETS)) expect(copy).toContain(`${SNIPPET_REQUIRE_LINE} ${text}`);
  });

  it.skipIf(!existsSync(seedsDir))('has a copy whose snippet lines are the seed article’s own', () => {
    const article = readdirSync(seedsDir)
      .filter((f) => f.startsWith('000_'))
      .map((f) => readFileSync(join(seedsDir, f), 'utf8'))
      .join('\n');
    const snippetLines = readFileSync(articleCopy, 'utf8')
      .split('\n')
      .filter((line) => line.startsWith(SNIPPET_REQUIRE_LINE));
    expect(snippetLines).toHaveLength(2);
    for (const line of snippetLines) expect(article).toContain(line);
  });

  it('returns the secret of a reveal grant for agent-42, with node-fetch and with global fetch', async () => {
    for (const { form, variant, result } of await everyForm('agent-42', agents['agent-42']!.api_key)) {
      expect(result, `${form} / ${variant}`).toEqual({ ok: true, token: slackSecret });
    }
    // node-fetch 3 made the first form's requests (its User-Agent), Node's fetch the second's.
    const agentsSeen = await t.vault.store.db
      .selectFrom('audit_events')
      .select('user_agent')
      .where('action', '=', 'credential.retrieve')
      .where('decision', '=', 'allow')
      .execute();
    expect(agentsSeen.map((e) => e.user_agent).sort()).toEqual(['node', 'node', 'node-fetch', 'node-fetch']);
    // By id too: {agentId} is the id or the name.
    expect(
      await snippet('global fetch', 'article', agents['agent-42']!.id, agents['agent-42']!.api_key),
    ).toEqual({
      ok: true,
      token: slackSecret,
    });
  });

  it('is refused, the same way, for a credential with no grant and one that does not exist', async () => {
    await cli(['agent', 'create', 'agent-42', '--namespace', 'elsewhere']).then((out) => {
      agents.elsewhere = JSON.parse(out) as { id: string; api_key: string };
    });
    const noGrant = await snippet('node-fetch', 'article', 'agent-9', agents['agent-9']!.api_key);
    // In "elsewhere" no credential named slack exists at all.
    const noCredential = await snippet('node-fetch', 'article', 'agent-42', agents.elsewhere!.api_key);
    expect(noGrant).toEqual({ ok: false, message: 'Failed to fetch token: Forbidden' });
    expect(noCredential).toEqual(noGrant);
    const bodies = await Promise.all(
      [agents['agent-9']!, agents.elsewhere!].map(async (agent, i) => {
        const response = await fetch(
          `${url}/v1/agents/${i === 0 ? 'agent-9' : 'agent-42'}/credentials/slack`,
          {
            headers: { authorization: `Bearer ${agent.api_key}` },
          },
        );
        const body = (await response.json()) as {
          error: { code: string; message: string; request_id: string };
        };
        return {
          status: response.status,
          code: body.error.code,
          message: body.error.message,
          keys: Object.keys(body.error),
        };
      }),
    );
    expect(bodies[0]).toEqual(bodies[1]);
    expect(bodies[0]).toMatchObject({ status: 403, code: 'credential_not_granted' });
  });

  it('is refused for another agent’s id in the path, and for a disabled agent', async () => {
    const mismatch = await snippet('global fetch', 'article', 'agent-9', agents['agent-42']!.api_key);
    expect(mismatch).toEqual({ ok: false, message: 'Failed to fetch token: Forbidden' });
    await cli(['agent', 'create', 'agent-off']).then((out) => {
      agents['agent-off'] = JSON.parse(out) as { id: string; api_key: string };
    });
    await cli([
      'grant',
      'create',
      '--agent',
      'agent-off',
      '--credential',
      'slack',
      '--ttl',
      '1d',
      '--reveal',
    ]);
    expect((await snippet('global fetch', 'short', 'agent-off', agents['agent-off']!.api_key)).ok).toBe(true);
    await cli(['agent', 'disable', 'agent-off']);
    expect(await snippet('global fetch', 'short', 'agent-off', agents['agent-off']!.api_key)).toEqual({
      ok: false,
      message: 'Failed to fetch credential',
    });
  });

  it('is refused once the grant expires (injected clock)', async () => {
    const temp = await startTestVault({ clock, dataDir: undefined });
    try {
      // A second vault sharing the clock, so this test moves time without disturbing the others.
      const tempUrl = await temp.vault.listen();
      await addCredential(temp, { name: 'slack', type: 'api_key', secret: { api_key: slackSecret } });
      const created = await temp.request('POST', '/v1/admin/agents', { body: { name: 'agent-42' } });
      const key = (created.body as { api_key: string }).api_key;
      await grant(temp, { agent: 'agent-42', credential: 'slack', ttl: '1h', reveal: true });
      const run = () =>
        runNode(join(dir, 'article-node-fetch.cjs'), dir, {
          AGENT_ID: 'agent-42',
          VAULT_URL: tempUrl,
          VAULT_TOKEN: key,
        });
      expect(JSON.parse((await run()).stdout)).toEqual({ ok: true, token: slackSecret });
      clock.set(new Date(Date.parse(start) + 3_600_000));
      expect(JSON.parse((await run()).stdout)).toEqual({
        ok: false,
        message: 'Failed to fetch token: Forbidden',
      });
      const events = await temp.vault.store.db
        .selectFrom('audit_events')
        .select(['decision', 'reason'])
        .where('action', '=', 'credential.retrieve')
        .orderBy('seq')
        .execute();
      expect(events).toEqual([
        { decision: 'allow', reason: 'ok' },
        { decision: 'deny', reason: 'grant_expired' },
      ]);
    } finally {
      clock.set(start);
      await temp.stop();
    }
  });

  it('is refused on the very next request after `grant revoke`', async () => {
    const listed = JSON.parse(await cli(['grant', 'list', '--agent', 'agent-42', '--json'])) as {
      id: string;
    }[];
    expect(listed).toHaveLength(1);
    await cli(['grant', 'revoke', listed[0]!.id]);
    for (const { form, variant, result } of await everyForm('agent-42', agents['agent-42']!.api_key)) {
      expect(result.ok, `${form} / ${variant}`).toBe(false);
    }
    const response = await fetch(`${url}/v1/agents/agent-42/credentials/slack`, {
      headers: { authorization: `Bearer ${agents['agent-42']!.api_key}` },
    });
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('grant_revoked');
  });

  it('is refused on the very next request after `revoke-all`, until a new key and grant', async () => {
    await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'slack',
      '--ttl',
      '30d',
      '--reveal',
    ]);
    expect((await snippet('global fetch', 'article', 'agent-42', agents['agent-42']!.api_key)).ok).toBe(true);
    const out = await cli(['revoke-all', '--yes']);
    expect(out).toMatch(/Revoked \d+ grant\(s\) and \d+ agent key\(s\) in namespace "default"/);
    expect(await snippet('node-fetch', 'article', 'agent-42', agents['agent-42']!.api_key)).toEqual({
      ok: false,
      message: 'Failed to fetch token: Unauthorized',
    });
    const newKey = JSON.parse(await cli(['agent', 'key', 'create', 'agent-42', '--json'])) as {
      api_key: string;
    };
    expect(await snippet('node-fetch', 'article', 'agent-42', newKey.api_key)).toEqual({
      ok: false,
      message: 'Failed to fetch token: Forbidden',
    });
    await cli(['grant', 'create', '--agent', 'agent-42', '--credential', 'slack', '--ttl', '1h', '--reveal']);
    expect(await snippet('node-fetch', 'article', 'agent-42', newKey.api_key)).toEqual({
      ok: true,
      token: slackSecret,
    });
  });
});
