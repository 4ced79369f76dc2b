/**
 * @fieldvault/test-support — fixtures shared by the test suites and benches (not shipped): real
 * server processes (`launchServerProcess`, `startServerProcess`), the child side of a phone process
 * (`readChildPhoneArgs`, `childPhoneTransport`, `sayLine`, `killSelf`), a PNG maker, file listings and snapshots,
 * a stand-in server that names another server id (`startIdentityStandIn`), and a front that lends
 * the embedded store's credential to clients that bring their own (`startCredentialFront`).
 */
export type { DeviceAction, HttpAnswer, LaunchedServer, LaunchOptions, ServerProcess, ServerProcessOptions } from './server-process.js';
export { ADMIN_PASSWORD, launchServerProcess, startServerProcess } from './server-process.js';
export type { ChildPhoneArgs } from './child-phone.js';
export { childPhoneTransport, killSelf, readChildPhoneArgs, sayLine } from './child-phone.js';
export type { SnapshotOptions } from './files.js';
export { filesContaining, filesUnder, snapshot } from './files.js';
export { png } from './png.js';
export type { CredentialFront, FrontedStore } from './credential-front.js';
export { startCredentialFront } from './credential-front.js';
export type { IdentityStandIn } from './identity-stand-in.js';
export { startIdentityStandIn } from './identity-stand-in.js';
