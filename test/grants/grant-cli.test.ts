import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, runCli } from '../helpers/cli.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { addAgent, addCredential } from '../retrieval/retrieval-fixtures.js';

/** `tokenvault grant …` and `tokenvault revoke-all` as a person runs them (real processes, real HTTP). */
describe('grant CLI', () => {
  let t: TestVault;
  let url: string;

  const cli = (args: string[], input?: string) =>
    runCli([...args, '--addr', url], {
      cwd: t.dataDir,
      env: cleanEnv({ TOKENVAULT_TOKEN: t.rootToken }),
      input,
    });

  beforeAll(async () => {
    t = await startTestVault();
    url = await t.vault.listen();
    await addCredential(t, {
      name: 'slack',
      type: 'api_key',
      secret: { api_key: 'x' },
      scopes: ['read', 'write'],
    });
    await addCredential(t, {
      name: 'calendar',
      type: 'bearer',
      secret: { token: 'y' },
      scopes: ['events.readonly'],
    });
    await addAgent(t, 'agent-42');
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('needs exactly one of --ttl and --until-revoked, and says which is missing', async () => {
    const neither = await cli(['grant', 'create', '--agent', 'agent-42', '--credential', 'slack']);
    expect(neither.code).toBe(2);
    expect(neither.stderr).toContain(
      'say how long the grant lasts: --ttl 1h..30d (for example --ttl 7d), or --until-revoked',
    );
    const both = await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'slack',
      '--ttl',
      '1h',
      '--until-revoked',
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('not both');
    const tooLong = await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'slack',
      '--ttl',
      '31d',
    ]);
    // Checked before the request, so that the message names this command's flags.
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(
      'error: --ttl must be 1h..30d; 31d is too long. For a standing grant use --until-revoked\n',
    );
  });

  it('creates, lists, shows and revokes a grant', async () => {
    const created = await cli([
      'grant',
      'create',
      '--agent',
      'agent-42',
      '--credential',
      'slack',
      '--scope',
      'read',
      '--ttl',
      '7d',
      '--reveal',
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Granted agent "agent-42" the credential "slack".');
    expect(created.stdout).toMatch(/reveal:\s+yes/);
    const listed = await cli(['grant', 'list']);
    expect(listed.stdout).toMatch(/^ID\s+AGENT\s+CREDENTIAL\s+SCOPES\s+REVEAL\s+STATUS\s+EXPIRES/);
    expect(listed.stdout).toMatch(/agent-42\s+slack\s+read\s+yes\s+active/);
    const [grant] = JSON.parse((await cli(['grant', 'list', '--agent', 'agent-42', '--json'])).stdout) as {
      id: string;
    }[];
    const shown = await cli(['grant', 'show', grant!.id]);
    expect(shown.stdout).toMatch(/scopes:\s+read/);
    const noTarget = await cli(['grant', 'revoke']);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('exactly one');
    const revoked = await cli(['grant', 'revoke', grant!.id]);
    expect(revoked.stdout).toContain(`Revoked grant ${grant!.id} (agent-42 → slack).`);
    expect((await cli(['grant', 'list'])).stdout).toContain('No live grants.');
    expect((await cli(['grant', 'list', '--all'])).stdout).toMatch(/agent-42\s+slack\s+read\s+yes\s+revoked/);
  });

  it('imports the seed document from a file and from stdin', async () => {
    const seed = { agent_id: 'agent-42', allowed_credentials: ['slack:read', 'calendar:events.readonly'] };
    const file = join(t.dataDir, 'policy.json');
    writeFileSync(file, JSON.stringify(seed));
    const fromFile = await cli(['grant', 'import', file, '--ttl', '1d', '--reveal']);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toContain('Imported 2 grant(s).');
    const fromStdin = await cli(
      ['grant', 'import', '-', '--until-revoked', '--json'],
      JSON.stringify([seed]),
    );
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const result = JSON.parse(fromStdin.stdout) as {
      items: { credential_name: string; scopes: string[] }[];
      replaced_grant_ids: string[];
    };
    expect(result.items.map((g) => [g.credential_name, g.scopes])).toEqual([
      ['slack', ['read']],
      ['calendar', ['events.readonly']],
    ]);
    expect(result.replaced_grant_ids).toHaveLength(2);
    const badJson = await cli(['grant', 'import', '-', '--until-revoked'], '{"agent_id": ');
    expect(badJson.code).toBe(2);
    expect(badJson.stderr).toContain('standard input is not valid JSON');
  });

  it('revoke-all refuses without --yes when stdin is not a terminal, explaining why', async () => {
    const refused = await cli(['revoke-all']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'This revokes EVERY grant and EVERY agent API key in namespace "default"',
    );
    expect(refused.stderr).toContain(
      'Standard input is not a terminal, so there is no one to ask: run it again with --yes',
    );
    expect((await cli(['grant', 'list'])).stdout).not.toContain('No live grants');
    const done = await cli(['revoke-all', '--yes', '--json']);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({
      namespace: 'default',
      grants_revoked: 2,
      agent_keys_revoked: 1,
    });
    expect((await cli(['grant', 'list'])).stdout).toContain('No live grants');
  });
});
