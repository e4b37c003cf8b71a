import type { ClusterInfo } from '@eventstore/db-client/generated/gossip_pb.js';
import gossipPb from '@eventstore/db-client/generated/gossip_pb.js';
import type * as grpc from '@grpc/grpc-js';
import { uuidMessage } from './protoConvert.js';
import type { ServerContext } from './serverContext.js';

export interface GossipNode {
  readonly instanceId: string;
  readonly port: number;
}

/** Gossip.Read: a one-node cluster whose only member, this node, is the alive LEADER. */
export function handleGossipRead(
  context: ServerContext,
  node: GossipNode,
  callback: grpc.sendUnaryData<ClusterInfo>,
): void {
  context.countCall('Gossip.Read');
  const member = new gossipPb.MemberInfo()
    .setInstanceId(uuidMessage(node.instanceId, false))
    .setTimeStamp((BigInt(Date.now()) * 10_000n).toString())
    .setState(gossipPb.MemberInfo.VNodeState.LEADER)
    .setIsAlive(true)
    .setHttpEndPoint(new gossipPb.EndPoint().setAddress('127.0.0.1').setPort(node.port));
  callback(null, new gossipPb.ClusterInfo().setMembersList([member]));
}
