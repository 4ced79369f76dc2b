export { CouchRepository, createCouchRepository, DATABASES } from './couch-repository.js';
export type { CouchRepositoryOptions, Mutation } from './couch-repository.js';
export { couchPlugin } from './plugin.js';
export * from './records.js';
