export * from './decideScope.js';
export * from './decideSystemKey.js';
export * from './errors.js';
export * from './events.js';
export * from './identities.js';
export type * from './json.js';
export * from './keyDigests.js';
export * from './keyState.js';
export * from './scopeState.js';
