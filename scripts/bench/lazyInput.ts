import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';

const BLOCK = 1024 * 1024;
/** The size fs and pipe streams read: what a client streaming a file would send. */
const PIECE = 64 * 1024;
const block = randomBytes(BLOCK);

/**
 * `total` bytes of input generated lazily, so the input itself costs no memory: one random 1 MiB
 * block handed out in 64 KiB pieces. It yields to the event loop every 64 pieces: in-memory
 * streams can otherwise run on microtasks alone and starve timers (an rss sampler).
 */
export async function* lazyInput(total: number): AsyncGenerator<Buffer> {
  let sent = 0;
  let pieces = 0;
  while (sent < total) {
    const offset = sent % BLOCK;
    const n = Math.min(PIECE, BLOCK - offset, total - sent);
    yield block.subarray(offset, offset + n);
    sent += n;
    if (++pieces % 64 === 0) await yieldToLoop();
  }
}
