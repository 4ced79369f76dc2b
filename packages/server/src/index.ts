/**
 * @fieldvault/server: Fastify plugins (auth, users, devices/keys, sessions, audit), the CouchDB
 * repository over nano, and `buildApp(config)` that composes them.
 */
export { buildApp } from './app.js';
export { resolveConfig, ServerConfigSchema, ARGON2_RECOMMENDED_FLOOR, DB_PREFIX_PATTERN } from './config.js';
export type { BuildAppInput, RuntimeOptions, ServerConfig, ServerConfigInput } from './config.js';
export { CouchRepository, createCouchRepository, DATABASES } from './couch/index.js';
export type { CouchRepositoryOptions } from './couch/index.js';
export { AUDIT_EVENTS, DEVICE_STATUSES, ROLES } from './couch/records.js';
export type { AuditEventType, DeviceStatus, Role } from './couch/records.js';
export { ChallengeBodySchema, ChallengeResponseSchema, LoginBodySchema, LoginResponseSchema } from './auth/schemas.js';
export { REDACT_PATHS } from './http/logger.js';
export { parseStrictJson } from './http/strict-json.js';
export { COUCH_USER_PATTERN, checkCouchLogin, detectCouch, setupCouch } from './couch/index.js';
export type { CouchFlavour, CouchSetupOptions, CouchSetupResult } from './couch/index.js';
