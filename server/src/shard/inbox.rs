//! A shard's inbox: the loop that serves [`ShardMsg`]s from other shards (forwarded
//! requests, typed operations, snapshots, pushes) until Shutdown.
//!
//! Lives on: every shard, as its executor's last task (`runtime::run_shard`).

use std::rc::Rc;

use super::{Shard, ShardMsg};
use crate::handler::{execute, RequestContext};

/// Serves messages from other shards until Shutdown; returns its acknowledgement.
pub async fn serve(shard: Rc<Shard>, rx: flume::Receiver<ShardMsg>) -> Option<flume::Sender<()>> {
    while let Ok(msg) = rx.recv_async().await {
        match msg {
            ShardMsg::Request { frame, peer, origin, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let resp = execute(&shard, frame, RequestContext { peer, origin }).await;
                    let _ = reply.send(resp);
                })
                .detach();
            }
            ShardMsg::Dispatch { frame, peer, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(crate::handler::serve_request(&shard, frame, peer).await);
                })
                .detach();
            }
            ShardMsg::Topics { table, ack } => {
                *shard.topics.borrow_mut() = table;
                let _ = ack.send(());
            }
            ShardMsg::Subscriptions { table } => *shard.subscriptions.borrow_mut() = table,
            ShardMsg::ConnectionClosed { peer } => {
                crate::handler::client::connection_closed(&shard, peer)
            }
            ShardMsg::Push { peer, header, body } => {
                shard.push_with_body(shard.id, peer, header, body)
            }
            ShardMsg::CallClient { peer, header, body, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let answer =
                        crate::handler::consumer_relay::call_local(&shard, peer, header, body)
                            .await;
                    let _ = reply.send(answer);
                })
                .detach();
            }
            ShardMsg::PushToProducer { group, header, body } => {
                shard.push_to_producer(&group, header, body)
            }
            ShardMsg::Append { batch, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(shard.append_local(batch).await);
                })
                .detach();
            }
            ShardMsg::ReadQueue { read, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(shard.read_local(&read).await);
                })
                .detach();
            }
            ShardMsg::CreateTopic { config, reply } => {
                // Spawned: publishing waits for every shard's acknowledgement.
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(shard.create_topic_here(config).await);
                })
                .detach();
            }
            ShardMsg::Ops { query, reply } => {
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(crate::shard_ops::answer(&shard, query).await);
                })
                .detach();
            }
            ShardMsg::Replica(request) => crate::replication::on_shard(&shard, request),
            ShardMsg::InstallOffsets { offsets } => {
                let mut table = shard.offsets.borrow_mut();
                for (topic, group, queue_id, offset) in offsets {
                    let log = shard.log_for(&topic, queue_id);
                    if shard.logs.contains_key(&log) {
                        table.set(log, &group, &topic, queue_id, offset);
                    }
                }
            }
            ShardMsg::Shutdown { done } => return Some(done),
        }
    }
    None
}
