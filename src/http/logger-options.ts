import type { LoggerOptions } from 'pino';

/**
 * Paths pino censors wherever they appear in a log line. Request bodies and headers are never logged
 * in the first place (see the serializers); this is the second line of defence.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-tokenvault-signature"]',
  'headers.authorization',
  'authorization',
  'token',
  'secret',
  'password',
  'api_key',
  'access_token',
  'refresh_token',
  'masterKey',
  'databaseUrl',
  'kmsWebhookSecret',
  '*.token',
  '*.secret',
  '*.password',
  '*.api_key',
  '*.access_token',
  '*.refresh_token',
  '*.authorization',
  '*.masterKey',
  '*.databaseUrl',
  '*.kmsWebhookSecret',
];

export const loggerOptions = (level: string): LoggerOptions => ({
  level,
  base: { service: 'tokenvault' },
  timestamp: () => `,"time":"${new Date().toISOString()}"`,
  redact: { paths: redactPaths, censor: '[redacted]' },
  serializers: {
    req: (req: { method: string; url: string }) => ({
      method: req.method,
      // The query string can carry anything a client put there; keep only the path.
      path: req.url.split('?')[0],
    }),
    res: (res: { statusCode: number }) => ({ status: res.statusCode }),
  },
});

export type LogFormat = 'json' | 'text';

/**
 * `auto` is what an operator expects of a server started by hand (as Vault does): short human lines
 * on a terminal, where the start-up lines the README shows must stay readable, and JSON lines as soon
 * as the output goes to a pipe or a file, where a log shipper reads it.
 */
export const chooseLogFormat = (setting: 'auto' | LogFormat, stdoutIsTty: boolean): LogFormat =>
  setting === 'auto' ? (stdoutIsTty ? 'text' : 'json') : setting;

const levelNames: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has, or that a terminal reader does not need. */
const omitted = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

const textValue = (value: unknown): string => {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value) {
    // An error: its message here; the stack only at debug, through the JSON format.
    const { type, message } = value as { type?: unknown; message?: unknown };
    return JSON.stringify(typeof type === 'string' ? `${type}: ${String(message)}` : String(message));
  }
  return JSON.stringify(value) ?? String(value);
};

/**
 * One JSON log line (as pino writes it, already redacted) as one human line:
 * `2026-06-01T12:00:00.000Z [INFO]  message key=value …`. A line that is not a JSON object is passed
 * through unchanged, so nothing is ever lost to the formatting.
 */
export const renderTextLine = (line: string): string => {
  let entry: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return line;
    entry = parsed as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = levelNames[entry.level as number] ?? String(entry.level);
  const fields = Object.entries(entry)
    .filter(([key, value]) => !omitted.has(key) && value !== undefined)
    .map(([key, value]) => ` ${key}=${textValue(value)}`)
    .join('');
  const time = typeof entry.time === 'string' ? `${entry.time} ` : '';
  return `${time}${`[${level}]`.padEnd(8)}${typeof entry.msg === 'string' ? entry.msg : ''}${fields}\n`;
};
