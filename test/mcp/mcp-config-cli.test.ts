import { PassThrough, Readable } from 'node:stream';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli-main.js';
import { addAgent, type TestAgent } from '../retrieval/retrieval-fixtures.js';
import { startTestVault, type TestVault } from '../helpers/vault.js';

/** `tokenvault mcp config`, run in-process against a listening vault, and a client that uses its output. */
describe('tokenvault mcp config', () => {
  let t: TestVault;
  let addr: string;
  let agent: TestAgent;

  beforeAll(async () => {
    t = await startTestVault();
    addr = await t.vault.listen();
    agent = await addAgent(t, 'config-agent');
  });
  afterAll(async () => t?.stop());

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
    return { code, out, err };
  };

  it.each([
    [
      'claude',
      {
        mcpServers: {
          'token-vault': { type: 'http', headers: { Authorization: 'Bearer ${TOKENVAULT_AGENT_KEY}' } },
        },
      },
    ],
    [
      'cursor',
      { mcpServers: { 'token-vault': { headers: { Authorization: 'Bearer ${env:TOKENVAULT_AGENT_KEY}' } } } },
    ],
    [
      'vscode',
      {
        servers: {
          'token-vault': { type: 'http', headers: { Authorization: 'Bearer ${input:tokenvault-agent-key}' } },
        },
      },
    ],
  ])('prints the %s configuration with a placeholder, never the key', async (client, expected) => {
    const { code, out, err } = await cli([
      'mcp',
      'config',
      '--agent',
      agent.name,
      '--client',
      client,
      '--json',
    ]);
    expect(code, err).toBe(0);
    const printed = JSON.parse(out) as { url: string; config: Record<string, unknown>; includesKey: boolean };
    expect(printed.url).toBe(`${addr}/mcp`);
    expect(printed.config).toMatchObject(expected);
    expect(printed.includesKey).toBe(false);
    expect(out).not.toContain(agent.apiKey);
  });

  it('prints text for people, with where it goes and what to set', async () => {
    const { code, out } = await cli(['mcp', 'config', '--agent', agent.name, '--client', 'claude']);
    expect(code).toBe(0);
    expect(out).toContain('.mcp.json');
    expect(out).toContain(`claude mcp add --transport http 'token-vault' '${addr}/mcp'`);
    expect(out).toContain('TOKENVAULT_AGENT_KEY');
  });

  it('puts the key in only when the operator pipes it in, and a client connects with what it printed', async () => {
    const { code, out, err } = await cli(
      [
        'mcp',
        'config',
        '--agent',
        agent.name,
        '--client',
        'generic',
        '--key-stdin',
        '--url',
        'http://vault.example:9000',
        '--json',
      ],
      `${agent.apiKey}\n`,
    );
    expect(code, err).toBe(0);
    const printed = JSON.parse(out) as {
      config: { url: string; headers: Record<string, string> };
      includesKey: boolean;
    };
    expect(printed.includesKey).toBe(true);
    expect(printed.config.url).toBe('http://vault.example:9000/mcp');
    expect(printed.config.headers.Authorization).toBe(`Bearer ${agent.apiKey}`);

    // The same configuration, pointed at the listening vault, works as it is.
    const client = new Client({ name: 'from-config', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', addr), {
        requestInit: { headers: printed.config.headers },
      }),
    );
    try {
      expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('list_credentials');
    } finally {
      await client.close();
    }
  });

  it('refuses an unknown client and an unknown agent', async () => {
    const badClient = await cli(['mcp', 'config', '--agent', agent.name, '--client', 'emacs']);
    expect(badClient.code).toBe(2);
    expect(badClient.err).toContain('unknown --client');
    const badAgent = await cli(['mcp', 'config', '--agent', 'nobody', '--client', 'cursor', '--json']);
    expect(badAgent.code).toBe(1);
    expect((JSON.parse(badAgent.err) as { error: { code: string } }).error.code).toBe('agent_not_found');
  });
});
