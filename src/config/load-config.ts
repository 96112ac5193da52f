import { type Config, type SettingName, type SettingSpec, settings } from './config-schema.js';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `The configuration has ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Builds the config from flags (already parsed, as strings keyed by setting name) over `TOKENVAULT_*`
 * variables over defaults. Every problem is collected and reported at once; the result is frozen.
 */
export const loadConfig = (
  flags: Partial<Record<SettingName, string | number | boolean | undefined>>,
  env: NodeJS.ProcessEnv = process.env,
): Config => {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const invalid = new Set<SettingName>();

  for (const [name, spec] of Object.entries(settings) as [SettingName, SettingSpec<unknown>][]) {
    const fromFlag = flags[name];
    const raw = fromFlag !== undefined ? String(fromFlag) : env[spec.env];
    const source = fromFlag !== undefined ? spec.flag : spec.env;
    if (raw === undefined || raw === '') {
      values[name] = spec.default;
      continue;
    }
    try {
      values[name] = spec.parse(raw);
    } catch (error) {
      // The value itself is never echoed: it may be a secret.
      invalid.add(name);
      problems.push(`${source} ${(error as Error).message}`);
    }
  }

  for (const key of Object.keys(env)) {
    if (key.startsWith('TOKENVAULT_') && !knownEnv.has(key) && !clientEnv.has(key)) {
      problems.push(`${key} is not a setting (known: ${[...knownEnv].sort().join(', ')})`);
    }
  }

  // Cross-setting checks only speak about settings that parsed; the others are reported already.
  const webhookInvalid = invalid.has('kmsWebhookUrl') || invalid.has('kmsWebhookSecret');
  if (
    !webhookInvalid &&
    values.vaultMode === 'webhook' &&
    (!values.kmsWebhookUrl || !values.kmsWebhookSecret)
  ) {
    problems.push('webhook mode needs TOKENVAULT_KMS_WEBHOOK_URL and TOKENVAULT_KMS_WEBHOOK_SECRET');
  }
  if (!webhookInvalid && Boolean(values.kmsWebhookUrl) !== Boolean(values.kmsWebhookSecret)) {
    problems.push(
      'TOKENVAULT_KMS_WEBHOOK_URL and TOKENVAULT_KMS_WEBHOOK_SECRET go together: set both or neither',
    );
  }

  const eventsInvalid = invalid.has('eventsWebhookUrl') || invalid.has('eventsWebhookSecret');
  if (!eventsInvalid && Boolean(values.eventsWebhookUrl) !== Boolean(values.eventsWebhookSecret)) {
    problems.push(
      'TOKENVAULT_EVENTS_WEBHOOK_URL and TOKENVAULT_EVENTS_WEBHOOK_SECRET go together: set both or neither',
    );
  }

  const tlsInvalid = invalid.has('tlsCertFile') || invalid.has('tlsKeyFile');
  if (!tlsInvalid && Boolean(values.tlsCertFile) !== Boolean(values.tlsKeyFile)) {
    problems.push(
      'TOKENVAULT_TLS_CERT_FILE and TOKENVAULT_TLS_KEY_FILE (--tls-cert-file, --tls-key-file) go together: set both or neither',
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(values) as Config;
};

const knownEnv = new Set(Object.values(settings).map((s) => s.env));

/** Variables read by the CLI and the tooling, not by the server. */
const clientEnv = new Set([
  'TOKENVAULT_ADDR',
  'TOKENVAULT_TOKEN',
  'TOKENVAULT_NAMESPACE',
  'TOKENVAULT_KMS_KEY',
  'TOKENVAULT_KMS_SECRET',
  'TOKENVAULT_TEST_DATABASE_URL',
  'TOKENVAULT_REQUIRE_POSTGRES',
  'TOKENVAULT_BENCH_DATABASE_URL',
]);

/** The config with every secret setting masked, safe to log. */
export const describeConfig = (config: Config): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(config)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => {
        const spec = settings[name as SettingName] as SettingSpec<unknown>;
        return [name, spec.secret && value !== undefined ? '(set)' : value];
      }),
  );
