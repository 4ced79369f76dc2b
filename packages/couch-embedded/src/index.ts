/**
 * @fieldvault/couch-embedded: the embedded CouchDB-compatible store (express-pouchdb over
 * PouchDB/LevelDB) run as a supervised child process on a loopback port that answers only
 * requests carrying its per-start credential, for `npm start`, dev and tests. Production uses a
 * real Apache CouchDB 3.x through `COUCHDB_URL` instead.
 */
export { startEmbeddedCouch } from './embedded-couch.js';
export type {
  EmbeddedCouch,
  EmbeddedCouchCrash,
  EmbeddedCouchCredential,
  EmbeddedCouchEvents,
  EmbeddedCouchLogger,
  StartEmbeddedCouchOptions,
} from './embedded-couch.js';
