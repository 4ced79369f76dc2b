/** @fieldvault/load — the load test behind `npm run load` (see docs/performance.md). */
export type { LoadOptions, LoadReport, EndpointRow, Phase } from './run.js';
export { formatReport, runLoad } from './run.js';
export type { HoldingCheck } from './invariant.js';
export { checkHolding } from './invariant.js';
export type { PhoneOutcome } from './messages.js';
export { syntheticJpeg } from './photo.js';
export type { PhoneDisk } from './disk.js';
export { directoryBreakdown, directoryBytes, phoneDisk } from './disk.js';
export type { Placement } from './placement.js';
export { placePhones } from './placement.js';
