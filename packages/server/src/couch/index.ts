export { CouchRepository, createCouchRepository, DATABASES } from './couch-repository.js';
export type { CouchRepositoryOptions, Mutation } from './couch-repository.js';
export { couchPlugin } from './plugin.js';
export * from './records.js';
export { CouchBackupStore } from './backup-store.js';
export { CouchSignupStore } from './signup-store.js';
export { COUCH_USER_PATTERN, checkCouchLogin, detectCouch, setupCouch } from './setup.js';
export type { CouchFlavour, CouchSetupOptions, CouchSetupResult } from './setup.js';
