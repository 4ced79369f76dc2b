export * from './errors.js';
export * from './ids.js';
export * from './validate.js';
export * from './hlc.js';
export * from './key-record.js';
export * from './record.js';
export { compareVersions, conflictId, mergeRecords, normalizeRecord } from './merge.js';
export * from './form.js';
export * from './password-policy.js';
