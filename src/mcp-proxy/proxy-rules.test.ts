import { describe, expect, it } from 'vitest';
import { isVaultError } from '../errors/vault-error.js';
import { toolPermitted, validateProxyConfig } from './proxy-rules.js';

const codeOf = (run: () => unknown): string | undefined => {
  try {
    run();
    return undefined;
  } catch (error) {
    return isVaultError(error) ? error.code : 'not a VaultError';
  }
};

const http = {
  url: 'https://mcp.example.com/mcp',
  credential: 'github',
  injections: [{ in: 'header' as const, name: 'Authorization', template: 'Bearer {{access_token}}' }],
};

describe('MCP proxy configuration', () => {
  it('takes a URL upstream with a header template, streamable-http by default', () => {
    const config = validateProxyConfig(http);
    expect(config).toMatchObject({
      transport: 'streamable-http',
      url: 'https://mcp.example.com/mcp',
      command: null,
    });
  });

  it('takes a stdio command with arguments and an environment variable', () => {
    const config = validateProxyConfig({
      command: 'node',
      args: ['server.js', '--stdio'],
      credential: 'github',
      injections: [{ in: 'env', name: 'GITHUB_TOKEN', template: '{{token}}' }],
    });
    expect(config).toMatchObject({ transport: 'stdio', command: 'node', args: ['server.js', '--stdio'] });
  });

  it.each([
    ['both a URL and a command', { ...http, command: 'node' }, 'invalid_mcp_proxy'],
    ['neither', { ...http, url: undefined }, 'invalid_mcp_proxy'],
    ['a URL with a password', { ...http, url: 'https://u:p@mcp.example.com/' }, 'invalid_mcp_proxy'],
    ['a file URL', { ...http, url: 'file:///etc/passwd' }, 'invalid_mcp_proxy'],
    ['stdio transport for a URL', { ...http, transport: 'stdio' }, 'invalid_mcp_proxy'],
    [
      'a CR/LF in a header template',
      {
        ...http,
        injections: [
          { in: 'header' as const, name: 'Authorization', template: 'Bearer {{token}}\r\nX-Evil: 1' },
        ],
      },
      'invalid_injection',
    ],
    [
      'a hop-by-hop header',
      { ...http, injections: [{ in: 'header' as const, name: 'Connection', template: '{{token}}' }] },
      'invalid_injection',
    ],
    [
      'the MCP session header',
      { ...http, injections: [{ in: 'header' as const, name: 'Mcp-Session-Id', template: '{{token}}' }] },
      'invalid_injection',
    ],
    [
      'a template without a field',
      { ...http, injections: [{ in: 'header' as const, name: 'Authorization', template: 'Bearer x' }] },
      'invalid_injection',
    ],
    [
      'a malformed placeholder',
      { ...http, injections: [{ in: 'header' as const, name: 'X-Key', template: '{{ bad-name }}' }] },
      'invalid_injection',
    ],
    [
      'an env variable for an HTTP upstream',
      { ...http, injections: [{ in: 'env' as const, name: 'TOKEN', template: '{{token}}' }] },
      'invalid_injection',
    ],
    ['no injection', { ...http, injections: [] }, 'invalid_injection'],
    [
      'a header twice',
      { ...http, injections: [http.injections[0]!, { ...http.injections[0]!, name: 'authorization' }] },
      'invalid_injection',
    ],
    ['a bad tool name', { ...http, denyTools: ['no spaces'] }, 'invalid_mcp_proxy'],
  ])('refuses %s', (_what, input, code) => {
    expect(codeOf(() => validateProxyConfig(input))).toBe(code);
  });

  it('refuses PATH or LD_PRELOAD as an injected variable of a stdio child', () => {
    for (const name of ['PATH', 'LD_PRELOAD', 'NODE_OPTIONS']) {
      expect(
        codeOf(() =>
          validateProxyConfig({
            command: 'node',
            credential: 'c',
            injections: [{ in: 'env', name, template: '{{t}}' }],
          }),
        ),
      ).toBe('invalid_injection');
    }
  });

  it('lets deny win over allow, with * matching any run', () => {
    const lists = { allowTools: ['get_*', 'echo'], denyTools: ['get_secret*'] };
    expect(toolPermitted(lists, 'echo')).toBe(true);
    expect(toolPermitted(lists, 'get_issue')).toBe(true);
    expect(toolPermitted(lists, 'get_secret_value')).toBe(false);
    expect(toolPermitted(lists, 'delete_repo')).toBe(false);
    expect(toolPermitted({ allowTools: [], denyTools: ['a.b'] }, 'aXb')).toBe(true);
    expect(toolPermitted({ allowTools: [], denyTools: [] }, 'anything')).toBe(true);
  });
});
