/**
 * The code of the PKCS#11 worker thread (pkcs11Worker.ts), plain CommonJS evaluated in the worker:
 * no TypeScript loader is needed there. It answers two kinds of message on its port:
 *
 * - `{ method, args }`: one Cryptoki call of the binding (slot list, sessions, find, generate…);
 * - `{ op, args }`: a whole mechanism sequence in one message (init + single-part call), so a wrap,
 *   an unwrap, a MAC and a login each cost one request and one answer.
 *
 * Secret bytes never travel in a message (a structured clone is a copy nobody can wipe). They sit
 * in `secret`, a Uint8Array over a SharedArrayBuffer both threads see: the DEK to encrypt and the
 * PIN are read from it by the worker and zeroed here as soon as the call returns; a decrypted DEK
 * is written into it by the token and the caller copies it out and zeroes it. A message may carry
 * `secret` to replace the buffer when a larger one was needed (a long PIN).
 *
 * pkcs11js takes the PIN of C_Login only as a JS string: that string exists in this thread for the
 * length of the call and cannot be wiped (nor can the copy the binding makes); it is never made on
 * the caller's thread. The binding module is `workerData.binding` (pkcs11js; tests pass one that
 * hangs or injects faults, which must export PKCS11 and Pkcs11Error as pkcs11js does).
 */
export const PKCS11_WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { port, flag } = workerData;
let secret = workerData.secret;
// A binding that does not load is every call's answer, not a worker that never says it is ready.
let pkcs11js = { Pkcs11Error: class {} };
let api = null;
let loadError = null;
try {
  pkcs11js = require(workerData.binding);
  api = new pkcs11js.PKCS11();
} catch (e) {
  loadError = e;
}
const toBuffers = (v) =>
  v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
  : Array.isArray(v) ? v.map(toBuffers)
  : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toBuffers(x)]))
  : v;
// The Cryptoki function being called: a failure names it (pkcs11js errors often do not), so the
// caller tells a C_DecryptInit refusal from a C_Decrypt one.
let calling = null;
const call = (method, ...args) => {
  calling = method;
  return api[method](...args);
};
// A Buffer over the shared bytes, not a copy of them.
const shared = (length) => Buffer.from(secret.buffer, secret.byteOffset, length);
const ops = {
  encryptSecret(session, mechanism, key, length, outBytes) {
    try {
      call('C_EncryptInit', session, mechanism, key);
      return Buffer.from(call('C_Encrypt', session, shared(length), Buffer.alloc(outBytes)));
    } finally {
      secret.fill(0, 0, length);
    }
  },
  decryptSecret(session, mechanism, key, data, outBytes) {
    try {
      call('C_DecryptInit', session, mechanism, key);
      return call('C_Decrypt', session, data, shared(outBytes)).length;
    } catch (e) {
      secret.fill(0, 0, outBytes);
      throw e;
    }
  },
  sign(session, mechanism, key, data, outBytes) {
    call('C_SignInit', session, mechanism, key);
    return Buffer.from(call('C_Sign', session, data, Buffer.alloc(outBytes)));
  },
  login(session, userType, length) {
    try {
      call('C_Login', session, userType, shared(length).toString('utf8'));
    } finally {
      secret.fill(0, 0, length);
    }
  },
};
port.on('message', (message) => {
  if (message.secret !== undefined) secret = message.secret;
  calling = null;
  let reply;
  try {
    if (loadError !== null) throw loadError;
    const args = toBuffers(message.args);
    reply = { value: message.op !== undefined ? ops[message.op](...args) : call(message.method, ...args) };
  } catch (e) {
    reply = { error: { message: String(e && e.message), code: e && e.code, method: calling, pkcs11: e instanceof pkcs11js.Pkcs11Error } };
  }
  port.postMessage(reply);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
// Ready: the caller's first call deadline starts after the thread is up, not while it boots.
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
`;
