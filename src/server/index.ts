export { registerCacheMetrics } from '../cache/cacheCollectors.js';
export type { AccessLog, AccessLogEntry } from './accessLog.js';
export { stderrAccessLog } from './accessLog.js';
export type { AuthOptions } from './authenticate.js';
export type { TokenChecker } from './authentication.js';
export { createServer, type KeyledgerServer, type ServerOptions, type TlsFiles } from './createServer.js';
export { DUE_ROTATION_ACTOR, DueRotationTimer } from './dueRotationTimer.js';
export { isLoopback, parseListen, requireTlsOffLoopback, urlOf } from './listenAddress.js';
