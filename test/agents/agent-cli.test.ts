import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli-main.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';
import { audience, newSigningKey, startAuthProbe } from './agent-fixtures.js';
import { startOidcIssuer, type TestIssuer } from './oidc-issuer.js';

/** The `agent` and `issuer` commands against a listening vault, run in-process as a person would. */
describe('tokenvault agent and issuer commands', () => {
  let t: TestVault;
  let addr: string;
  let issuer: TestIssuer;

  beforeAll(async () => {
    t = await startTestVault({ settings: { audience, outboundAllow: '127.0.0.1' } });
    addr = await t.vault.listen();
    issuer = await startOidcIssuer({ 'ci-main': { repository: 'acme/app' } });
  });

  afterAll(async () => {
    await issuer?.stop();
    await t?.stop();
  });

  const cli = async (args: string[], input = '') => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await runCli(['node', 'tokenvault', ...args], {
      stdout,
      stderr,
      stdin: Readable.from([input]),
      env: { TOKENVAULT_ADDR: addr, TOKENVAULT_TOKEN: t.rootToken },
    });
    process.exitCode = undefined;
    return { code, stdout: out, stderr: err };
  };

  it('creates an agent, printing {"id","name","api_key"} and nothing else on stdout', async () => {
    const created = await cli(['agent', 'create', 'agent-42', '--description', 'the seed agent']);
    expect(created.code, created.stderr).toBe(0);
    const printed = JSON.parse(created.stdout) as Record<string, string>;
    expect(Object.keys(printed)).toEqual(['id', 'name', 'api_key']);
    expect(printed.api_key).toMatch(/^tv_agent_/);
    expect(created.stderr).toMatch(/not shown again/);
    const probe = await startAuthProbe(t, { now: () => new Date() });
    expect((await probe.whoami(printed.api_key!)).body).toMatchObject({
      agentId: printed.id,
      method: 'api_key',
    });
    await probe.app.close();

    const listed = await cli(['agent', 'list']);
    expect(listed.stdout).toMatch(/^NAME\s+ID\s+STATUS/);
    expect(listed.stdout).toMatch(/\nagent-42\s+\S+\s+active/);
    expect(listed.stdout).not.toContain('tv_agent_');
    const shown = await cli(['agent', 'show', 'agent-42', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'agent-42', description: 'the seed agent' });
  });

  it('refuses a taken name with the vault’s code, exit 1', async () => {
    const again = await cli(['agent', 'create', 'agent-42']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/\(agent_exists, request /);
    expect(again.stdout).toBe('');
  });

  it('creates, lists and revokes keys', async () => {
    const created = await cli([
      'agent',
      'key',
      'create',
      'agent-42',
      '--ttl',
      '90d',
      '--name',
      'ci',
      '--json',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; api_key: string; expires_at: string };
    expect(key.api_key).toMatch(/^tv_agent_/);
    expect(key.expires_at).not.toBeNull();
    const listed = await cli(['agent', 'key', 'list', 'agent-42']);
    expect(listed.stdout).toMatch(new RegExp(`${key.id}\\s+ci\\s+active`));
    expect(listed.stdout).not.toContain('tv_agent_');
    expect((await cli(['agent', 'key', 'revoke', 'agent-42', key.id])).stdout).toContain(
      `Revoked key ${key.id}`,
    );
    expect((await cli(['agent', 'key', 'list', 'agent-42'])).stdout).toMatch(
      new RegExp(`${key.id}\\s+ci\\s+revoked`),
    );
    const badTtl = await cli(['agent', 'key', 'create', 'agent-42', '--ttl', 'soon']);
    expect(badTtl.code).toBe(2);
  });

  it('registers public keys from a file or stdin, refuses a private key, and clears them', async () => {
    const key = await newSigningKey('cli-key');
    const file = join(t.dataDir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [key.publicJwk] }));
    const set = await cli(['agent', 'jwks', 'set', 'agent-42', '--file', file]);
    expect(set.stdout).toContain('1 key(s): cli-key');
    const fromStdin = await cli(
      ['agent', 'jwks', 'set', 'agent-42', '--file', '-'],
      JSON.stringify(key.publicJwk),
    );
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    const privateSet = await cli(
      ['agent', 'jwks', 'set', 'agent-42', '--file', '-'],
      JSON.stringify({ ...key.publicJwk, d: 'c2VjcmV0' }),
    );
    expect(privateSet.code).toBe(1);
    expect(privateSet.stderr).toMatch(/private/);
    const url = await cli(['agent', 'jwks', 'set', 'agent-42', '--url', 'https://keys.example.com/jwks']);
    expect(url.stdout).toContain('https://keys.example.com/jwks');
    expect((await cli(['agent', 'jwks', 'clear', 'agent-42'])).code).toBe(0);
  });

  it('trusts an issuer and binds its workload tokens to the agent', async () => {
    const trusted = await cli(['issuer', 'trust', 'ci', '--issuer', issuer.issuer]);
    expect(trusted.code, trusted.stderr).toBe(0);
    expect((await cli(['issuer', 'list'])).stdout).toMatch(
      new RegExp(`ci\\s+${issuer.issuer}\\s+${audience}`),
    );
    const bound = await cli([
      'agent',
      'bind',
      'agent-42',
      '--issuer',
      'ci',
      '--claim',
      'sub=ci-main',
      '--claim',
      'repository=acme/app',
      '--json',
    ]);
    expect(bound.code, bound.stderr).toBe(0);
    const binding = JSON.parse(bound.stdout) as { id: string };
    const probe = await startAuthProbe(t, { now: () => new Date() });
    expect((await probe.whoami(await issuer.token('ci-main', audience))).body).toMatchObject({
      method: 'oidc',
      agentName: 'agent-42',
    });
    expect((await cli(['agent', 'bindings', 'agent-42'])).stdout).toContain(
      'repository=acme/app sub=ci-main',
    );
    expect((await cli(['agent', 'unbind', 'agent-42', binding.id])).code).toBe(0);
    expect((await probe.whoami(await issuer.token('ci-main', audience))).status).toBe(401);
    await probe.app.close();
    expect((await cli(['agent', 'bind', 'agent-42', '--issuer', 'ci'])).code).toBe(2);
    expect((await cli(['issuer', 'rm', 'ci'])).stdout).toContain('No longer trusting issuer "ci"');
  });

  it('disables, enables and removes the agent', async () => {
    expect((await cli(['agent', 'disable', 'agent-42'])).stdout).toContain('Disabled agent "agent-42"');
    expect((await cli(['agent', 'enable', 'agent-42'])).stdout).toContain('Enabled agent "agent-42"');
    expect((await cli(['agent', 'rm', 'agent-42'])).stdout).toContain('Deleted agent "agent-42"');
    const gone = await cli(['agent', 'show', 'agent-42']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(/agent_not_found/);
  });
});
