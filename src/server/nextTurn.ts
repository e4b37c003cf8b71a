/**
 * The requests of one event-loop turn, run together: a promise that resolves in this turn's check
 * phase (setImmediate), shared by every request that waits on it in the turn.
 *
 * Why: under load a turn's poll phase parses many requests at once. Each then ran its cryptography
 * (OpenSSL: the key derivation's HMACs, the AES-GCM set-up) between another request's parsing,
 * routing and socket writes, where each OpenSSL call cost several times its hot-loop price
 * (BENCHMARKS.md, service, fourth session). Waiting for the check phase runs the turn's operations
 * back to back, and their answers go out together: on the bench, the server CPU per request fell
 * by about half for encrypt and by a third for decrypt and resolve. The wait is the rest of the
 * current turn, nothing more: an idle server runs a lone request at once.
 */
let turn: Promise<void> | null = null;

export function nextTurn(): Promise<void> {
  turn ??= new Promise<void>((resolve) => {
    setImmediate(() => {
      turn = null;
      resolve();
    });
  });
  return turn;
}
