import { isObservable, type Observable } from 'rxjs';
import { authorize, custodiansAllowed, type Principal } from '../domain/grants.js';
import type { ByteStreams, Operation } from '../operations/operation.js';
import { parseInput } from '../operations/operationInput.js';
import type { ServerHost } from './serverHost.js';

export interface Checked {
  readonly input: Record<string, unknown>;
  readonly prepared: unknown;
  /** The custodian the grant was checked on (null: ledger-wide, or named by the content). */
  readonly custodian: string | null;
}

/**
 * Everything that happens before the operation runs, in the order a refusal writes nothing: the
 * schema (400), the operation's own checks (400), then the principal's grant (403). An operation
 * whose custodian comes from the content (decrypt without `custodian`) is checked again by its
 * host once the content names it.
 */
export function checkRequest(operation: Operation, raw: unknown, principal: Principal): Checked {
  const { input, prepared } = parseInput(operation, raw);
  const custodian = operation.custodianOf(input);
  const fromContent = custodian === null && operation.custodianFromContent === true;
  // Named by the content: checked by the host once known; a principal who may do it for no
  // custodian at all is refused before anything is read.
  if (operation.aboutCaller === true) return { input, prepared, custodian };
  if (!fromContent || nothingAllowed(principal, operation)) {
    authorize(principal, operation.permission, custodian);
  }
  return { input, prepared, custodian };
}

function nothingAllowed(principal: Principal, operation: Operation): boolean {
  const allowed = custodiansAllowed(principal.grants, operation.permission);
  return allowed !== '*' && allowed.size === 0;
}

/** Runs a checked unary or bytes operation on the request's host. */
export async function runChecked(
  operation: Operation,
  checked: Checked,
  host: ServerHost,
  streams?: ByteStreams,
): Promise<unknown> {
  const result = (
    operation.run as (p: unknown, h: ServerHost, s?: ByteStreams) => Promise<unknown> | Observable<unknown>
  )(checked.prepared, host, streams);
  if (isObservable(result)) throw new TypeError(`${operation.name} is not a unary operation`);
  return result;
}
