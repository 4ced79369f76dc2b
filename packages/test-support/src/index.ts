/**
 * @fieldvault/test-support — fixtures shared by the test suites (not shipped): real server
 * processes (`startServerProcess`), a PNG maker, file listings and snapshots.
 */
export type { DeviceAction, ServerProcess, ServerProcessOptions } from './server-process.js';
export { ADMIN_PASSWORD, startServerProcess } from './server-process.js';
export type { SnapshotOptions } from './files.js';
export { filesContaining, filesUnder, snapshot } from './files.js';
export { png } from './png.js';
