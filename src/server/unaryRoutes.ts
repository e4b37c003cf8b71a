import type { FastifyInstance } from 'fastify';
import type { AnyOperation } from '../operations/operations.js';
import { nextTurn } from './nextTurn.js';
import { principalOf } from './requestContext.js';
import { checkRequest, runChecked } from './runOperation.js';
import { hostFor, noteOperation, type ServerContext } from './serverContext.js';

/** `POST /v1/<name>`: the input as a JSON body, the result as the JSON answer. */
export function registerUnaryRoute(
  app: FastifyInstance,
  server: ServerContext,
  operation: AnyOperation,
): void {
  app.post(`/v1/${operation.name}`, async (request, reply) => {
    noteOperation(request, operation.name, null);
    const checked = checkRequest(operation, request.body, principalOf(request));
    noteOperation(request, operation.name, checked.custodian, checked.input);
    // Run with the other requests of this turn (nextTurn.ts: what it saves under load).
    await nextTurn();
    const result = await runChecked(operation, checked, hostFor(server, request, reply));
    reply.header('content-type', 'application/json; charset=utf-8');
    return JSON.stringify(result);
  });
}
