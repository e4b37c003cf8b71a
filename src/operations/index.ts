export { custodianHint, NAME_PREFIX, parseCustodianArg, parseKeyRef, parseScopeArg } from './identityArgs.js';
export type {
  ByteStreams,
  CliShape,
  InitResult,
  LocalFiles,
  Opens,
  Operation,
  OperationHost,
  OperationKind,
  Permission,
  Progress,
  StoreAccess,
} from './operation.js';
export {
  type AnyOperation,
  OPERATIONS,
  type OperationName,
  type OutputOf,
  operationNamed,
} from './operations.js';
export { type Plain, plain } from './plain.js';
