import { describe, expect, it } from 'vitest';
import { mcpClientConfig, mcpClients } from './mcp-client-config.js';

const base = {
  serverName: 'token-vault',
  url: 'https://vault.example.com/mcp',
  header: 'Authorization',
  prefix: 'Bearer ',
  keyVariable: 'TOKENVAULT_AGENT_KEY',
  keyDescription: 'Token Vault agent key',
};

describe('mcpClientConfig', () => {
  it.each(mcpClients)('holds no key for %s unless one is given', (client) => {
    const placeholder = mcpClientConfig({ ...base, client });
    expect(placeholder.includesKey).toBe(false);
    expect(JSON.stringify(placeholder)).not.toContain('tv_agent_');
    const withKey = mcpClientConfig({ ...base, client, key: 'tv_agent_secret' });
    expect(withKey.includesKey).toBe(true);
    expect(JSON.stringify(withKey.config)).toContain('Bearer tv_agent_secret');
  });

  it('quotes the Claude Code command for the shell', () => {
    const config = mcpClientConfig({ ...base, client: 'claude', serverName: "it's", key: "a'b" });
    expect(config.command).toBe(
      `claude mcp add --transport http 'it'\\''s' 'https://vault.example.com/mcp' --header 'Authorization: Bearer a'\\''b'`,
    );
  });

  it('declares the VS Code prompt as a password, and none when the key is given', () => {
    const prompted = mcpClientConfig({ ...base, client: 'vscode' }).config as { inputs: unknown[] };
    expect(prompted.inputs).toEqual([
      {
        type: 'promptString',
        id: 'tokenvault-agent-key',
        description: 'Token Vault agent key',
        password: true,
      },
    ]);
    expect(mcpClientConfig({ ...base, client: 'vscode', key: 'k' }).config).not.toHaveProperty('inputs');
  });
});
