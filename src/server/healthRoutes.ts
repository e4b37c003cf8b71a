import type { FastifyInstance } from 'fastify';
import type { Ledger } from '../ledger/ledger.js';
import type { EventStore } from '../store/eventStore.js';

/** How long /readyz waits for the store and for this process's view to catch up. */
const READY_WAIT_MS = 2000;

function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * `/healthz`: the process answers. `/readyz`: the store answers and this process's view has applied
 * everything in it (a load balancer sends no request to a server that would answer from a stale
 * view, or fail on a store that is down).
 */
export function registerHealthRoutes(app: FastifyInstance, ledger: Ledger, store: EventStore): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    let head: bigint | 'timeout';
    try {
      head = await within(store.headPosition(), READY_WAIT_MS);
    } catch {
      head = 'timeout';
    }
    if (head === 'timeout') {
      reply.code(503);
      return { status: 'unavailable', reason: 'store-unreachable', position: String(ledger.position) };
    }
    if (ledger.position < head) {
      const caughtUp = await within(
        ledger.waitForPosition(head).then(() => true),
        READY_WAIT_MS,
      ).catch(() => false);
      if (caughtUp !== true) {
        reply.code(503);
        return {
          status: 'unavailable',
          reason: 'catching-up',
          position: String(ledger.position),
          head: String(head),
        };
      }
    }
    return { status: 'ready', position: String(ledger.position), head: String(head) };
  });
}
