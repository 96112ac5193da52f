import { describe, expect, it } from 'vitest';
import { settings } from './config-schema.js';
import { ConfigError, describeConfig, loadConfig } from './load-config.js';

const problemsOf = (run: () => unknown): string[] => {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
};

describe('loadConfig', () => {
  it('needs nothing: the zero-config default is SQLite in ./.tokenvault on 127.0.0.1:8200, platform mode', () => {
    const config = loadConfig({}, {});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8200,
      dataDir: './.tokenvault',
      vaultMode: 'platform',
    });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.masterKey).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('has no default for any secret setting', () => {
    for (const spec of Object.values(settings)) {
      if ('secret' in spec && spec.secret) expect('default' in spec, spec.env).toBe(false);
    }
  });

  it('takes flags over TOKENVAULT_* variables', () => {
    const config = loadConfig({ port: '9000' }, { TOKENVAULT_PORT: '9100', TOKENVAULT_HOST: '0.0.0.0' });
    expect(config.port).toBe(9000);
    expect(config.host).toBe('0.0.0.0');
  });

  it('reports every problem at once, naming the variable or flag, never echoing a value', () => {
    const problems = problemsOf(() =>
      loadConfig(
        { port: '99999' },
        {
          TOKENVAULT_DATABASE_URL: 'mysql://user:hunter2@db/x',
          TOKENVAULT_LOG_LEVEL: 'loud',
          TOKENVAULT_KMS_WEBHOOK_SECRET: 'short-hunter2',
          TOKENVAULT_PROT: '8200',
        },
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^--port must be a port number/),
        expect.stringMatching(/^TOKENVAULT_DATABASE_URL must be a postgres:\/\/ URL/),
        expect.stringMatching(/^TOKENVAULT_LOG_LEVEL must be one of/),
        expect.stringMatching(/^TOKENVAULT_KMS_WEBHOOK_SECRET must be at least 32 characters/),
        expect.stringMatching(/^TOKENVAULT_PROT is not a setting/),
      ]),
    );
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('needs both webhook settings for webhook mode, and refuses plain http off loopback', () => {
    expect(problemsOf(() => loadConfig({ vaultMode: 'webhook' }, {}))).toEqual([
      expect.stringMatching(
        /webhook mode needs TOKENVAULT_KMS_WEBHOOK_URL and TOKENVAULT_KMS_WEBHOOK_SECRET/,
      ),
    ]);
    const problems = problemsOf(() =>
      loadConfig(
        {},
        {
          TOKENVAULT_KMS_WEBHOOK_URL: 'http://kms.example.com',
          TOKENVAULT_KMS_WEBHOOK_SECRET: 's'.repeat(40),
        },
      ),
    );
    expect(problems).toEqual([expect.stringMatching(/TOKENVAULT_KMS_WEBHOOK_URL is not usable: .*https/)]);
  });

  it('reports a master key of the wrong size with every other problem, without echoing it', () => {
    const problems = problemsOf(() => loadConfig({ masterKey: 'short', bodyLimit: 'abc' }, {}));
    expect(problems).toEqual([
      expect.stringMatching(/^--master-key must be exactly 32 bytes/),
      expect.stringMatching(/^--body-limit must be a whole number/),
    ]);
    expect(problems.join('\n')).not.toContain('short');
  });

  it('masks secret settings when described for the log', () => {
    const config = loadConfig({}, { TOKENVAULT_MASTER_KEY: `${'A'.repeat(43)}=` });
    expect(describeConfig(config).masterKey).toBe('(set)');
    expect(JSON.stringify(describeConfig(config))).not.toContain('AAAA');
  });
});
