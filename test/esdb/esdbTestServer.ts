import gossipGrpc from '@eventstore/db-client/generated/gossip_grpc_pb.js';
import serverFeaturesGrpc from '@eventstore/db-client/generated/serverfeatures_grpc_pb.js';
import streamsGrpc from '@eventstore/db-client/generated/streams_grpc_pb.js';
import * as grpc from '@grpc/grpc-js';
import { handleAppend } from './appendService.js';
import { handleBatchAppend } from './batchAppendService.js';
import { handleDelete, handleTombstone } from './deleteService.js';
import { EventLog } from './eventLog.js';
import { handleGossipRead } from './gossipService.js';
import { handleRead } from './readService.js';
import { ServerContext } from './serverContext.js';
import { serverUnavailableError } from './serverErrors.js';
import { handleGetSupportedMethods } from './serverFeaturesService.js';
import { writeStartupSystemEvents } from './systemEvents.js';

/**
 * A protocol-level EventStoreDB test server: the v1 gRPC protocol (Streams, ServerFeatures, Gossip)
 * served from the client package's own generated descriptors, over an in-memory log that follows the
 * server's rules. For tests only; binds 127.0.0.1 without TLS.
 *
 * Modelled: Read (stream and `$all`, both directions, start/end/revision/position, count, string or
 * structured UUIDs; subscriptions with confirmation → catch-up → caughtUp → live; `$all` filters by
 * stream-name or event-type prefix/regex with checkpoints every maxSearchWindow × multiplier events
 * scanned and one when catch-up ends), Append, BatchAppend (correlation ids, multi-request batches,
 * google.rpc.Status details), Delete (soft), Tombstone, GetSupportedMethods, Gossip.Read (one LEADER);
 * expected revision ANY/NO_STREAM/STREAM_EXISTS/exact; idempotent re-append; log-offset positions
 * (commit == prepare); system events in `$all` (a new `$epoch-information` on every start);
 * `$maxCount`/`$maxAge`/`$tb` on stream reads; soft delete and recreate; stop()/start().
 *
 * Not modelled: authentication, ACLs and `$acl`, TLS, persistent subscriptions, projections, the
 * operations/users/monitoring services, resolveLinkTos (no link events exist), scavenging, followers
 * and `not-leader`, append deadlines and maximum append size, backpressure and fellBehind, `$all`
 * reads from a position that is not a record's start (the server rejects those; here they round up),
 * the bounded id cache that limits real idempotency checks under ANY.
 */

export interface EsdbTestServerOptions {
  /**
   * Advertise /event_store.client.streams.streams/batchappend in ServerFeatures (default true). When
   * false, GetSupportedMethods lists no batchappend, so the client uses Streams.Append.
   */
  readonly batchAppend?: boolean;
  /** Port to bind on 127.0.0.1 (default 0 = any free port). */
  readonly port?: number;
}

export interface EsdbTestServer {
  readonly port: number;
  /** `esdb://127.0.0.1:${port}?tls=false` */
  readonly connectionString: string;
  /** `esdb+discover://127.0.0.1:${port}?tls=false` (Gossip.Read answers with this node as LEADER) */
  readonly discoverConnectionString: string;
  /** Simulates the server going down: ends every open call (live subscriptions get an UNAVAILABLE error), stops listening. The data is kept. */
  stop(): Promise<void>;
  /** Comes back on the same port with the same data. */
  start(): Promise<void>;
  /** Stops for good (idempotent). */
  close(): Promise<void>;
  /** How many times each gRPC method was called, keyed by method name like 'Append', 'BatchAppend', 'Read', 'Delete', 'Tombstone', 'GetSupportedMethods', 'Gossip.Read'. */
  callCount(method: string): number;
}

export async function startEsdbTestServer(options: EsdbTestServerOptions = {}): Promise<EsdbTestServer> {
  const server = new TestServer(options.batchAppend ?? true, options.port ?? 0);
  await server.start();
  return server;
}

/** How long stop() lets ended calls flush their status before cutting the connections. */
const GRACEFUL_SHUTDOWN_MS = 1000;

class TestServer implements EsdbTestServer {
  readonly #context = new ServerContext(new EventLog());
  readonly #batchAppend: boolean;
  readonly #instanceId = crypto.randomUUID();
  #port: number;
  #server: grpc.Server | undefined;
  #starts = 0;
  #closed = false;
  /** Serialises start/stop/close so a test calling them back to back sees them in order. */
  #transition: Promise<void> = Promise.resolve();

  constructor(batchAppend: boolean, port: number) {
    this.#batchAppend = batchAppend;
    this.#port = port;
  }

  get port(): number {
    return this.#port;
  }

  get connectionString(): string {
    return `esdb://127.0.0.1:${this.#port}?tls=false`;
  }

  get discoverConnectionString(): string {
    return `esdb+discover://127.0.0.1:${this.#port}?tls=false`;
  }

  callCount(method: string): number {
    return this.#context.callCount(method);
  }

  start(): Promise<void> {
    return this.#serialise(async () => {
      if (this.#closed) throw new Error('the EventStoreDB test server is closed');
      if (this.#server !== undefined) return;
      const server = this.#createServer();
      this.#port = await new Promise<number>((resolve, reject) => {
        server.bindAsync(`127.0.0.1:${this.#port}`, grpc.ServerCredentials.createInsecure(), (error, port) =>
          error ? reject(error) : resolve(port),
        );
      });
      this.#server = server;
      writeStartupSystemEvents(this.#context.log, this.#starts, `127.0.0.1:${this.#port}`);
      this.#starts += 1;
    });
  }

  stop(): Promise<void> {
    return this.#serialise(() => this.#shutdown());
  }

  close(): Promise<void> {
    return this.#serialise(async () => {
      this.#closed = true;
      await this.#shutdown();
    });
  }

  async #shutdown(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#context.abortAll(serverUnavailableError());
    // Graceful first, so the UNAVAILABLE statuses just sent reach the clients; then cut what is left.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, GRACEFUL_SHUTDOWN_MS);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #serialise(step: () => Promise<void>): Promise<void> {
    const next = this.#transition.then(step);
    this.#transition = next.catch(() => {});
    return next;
  }

  #createServer(): grpc.Server {
    const context = this.#context;
    const server = new grpc.Server();
    server.addService(streamsGrpc.StreamsService, {
      read: (call: Parameters<typeof handleRead>[1]) => handleRead(context, call),
      append: (call: Parameters<typeof handleAppend>[1], callback: Parameters<typeof handleAppend>[2]) =>
        handleAppend(context, call, callback),
      delete: (call: Parameters<typeof handleDelete>[1], callback: Parameters<typeof handleDelete>[2]) =>
        handleDelete(context, call, callback),
      tombstone: (
        call: Parameters<typeof handleTombstone>[1],
        callback: Parameters<typeof handleTombstone>[2],
      ) => handleTombstone(context, call, callback),
      batchAppend: (call: Parameters<typeof handleBatchAppend>[1]) => handleBatchAppend(context, call),
    });
    server.addService(serverFeaturesGrpc.ServerFeaturesService, {
      getSupportedMethods: (_call: unknown, callback: Parameters<typeof handleGetSupportedMethods>[2]) =>
        handleGetSupportedMethods(context, this.#batchAppend, callback),
    });
    server.addService(gossipGrpc.GossipService, {
      read: (_call: unknown, callback: Parameters<typeof handleGossipRead>[2]) =>
        handleGossipRead(context, { instanceId: this.#instanceId, port: this.#port }, callback),
    });
    return server;
  }
}
