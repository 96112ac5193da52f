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
