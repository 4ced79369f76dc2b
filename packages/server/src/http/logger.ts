import type { FastifyServerOptions } from 'fastify';
import type { LogStream } from '../config.js';

/** Field names whose values are secret wherever they appear in a log object. */
const SECRET_FIELDS = [
  'password',
  'newPassword',
  'currentPassword',
  'passwordHash',
  'key',
  'dbKey',
  'kek',
  'sealed',
  'wrapped',
  'token',
  'resetToken',
  'setupToken',
  'signature',
  'challenge',
  'authorization',
  'cookie',
];

/** pino redaction paths: request headers, plus the secret fields at the top level and two levels down. */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
];

export function loggerOptions(level: string, stream: LogStream | undefined): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    ...(stream === undefined ? {} : { stream }),
  };
}
