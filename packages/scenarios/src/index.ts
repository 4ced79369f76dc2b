/**
 * @fieldvault/scenarios — multi-server scenarios end to end (issue 6): `Scenario` starts real
 * server processes and SDK phones and tears them down; the four RapidFTR flows are tests on it;
 * `simulate` runs seeded random sequences of actions and checks invariants after every step.
 */
export type { ScenarioOptions, ScenarioUser } from './scenario.js';
export { Scenario, teardownAll } from './scenario.js';
export type { OfflineView, PhoneDatabase, PhoneProcessResult, PhoneState } from './phone.js';
export { FAST_KDF, Phone, allRecords, idsOf } from './phone.js';
export type { PhoneProcessArgs, PhoneProcessKill } from './phone-process.js';
export { KeyBook } from './key-book.js';
export type { SimulationOptions, SimulationReport, StepReport } from './simulation/simulate.js';
export { simulate } from './simulation/simulate.js';
export { formatReport, reproduceCommand } from './simulation/report.js';
export type { Action } from './simulation/model.js';
export type { Violation } from './simulation/invariants.js';
