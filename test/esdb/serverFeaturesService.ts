import type { SupportedMethods } from '@eventstore/db-client/generated/serverfeatures_pb.js';
import serverFeaturesPb from '@eventstore/db-client/generated/serverfeatures_pb.js';
import type * as grpc from '@grpc/grpc-js';
import type { ServerContext } from './serverContext.js';

/** The version the test server claims; the wire protocol it speaks is the v1 one of 21.10 and later. */
export const SERVER_VERSION = '24.10.0';

const STREAMS_SERVICE = 'event_store.client.streams.streams';

/**
 * ServerFeatures.GetSupportedMethods: the client asks once per connection and uses BatchAppend only
 * when it is listed (as on a server of 21.10 or later).
 */
export function handleGetSupportedMethods(
  context: ServerContext,
  batchAppend: boolean,
  callback: grpc.sendUnaryData<SupportedMethods>,
): void {
  context.countCall('GetSupportedMethods');
  const methods = ['read', 'append', 'delete', 'tombstone', ...(batchAppend ? ['batchappend'] : [])];
  const supported = new serverFeaturesPb.SupportedMethods().setEventStoreServerVersion(SERVER_VERSION);
  for (const method of methods) {
    supported.addMethods(
      new serverFeaturesPb.SupportedMethod().setServiceName(STREAMS_SERVICE).setMethodName(method),
    );
  }
  supported.addMethods(
    new serverFeaturesPb.SupportedMethod()
      .setServiceName('event_store.client.gossip.gossip')
      .setMethodName('read'),
  );
  callback(null, supported);
}
