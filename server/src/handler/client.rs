//! HEART_BEAT (34), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38).
//!
//! Run on shard 0, which owns the client registry. Consumer subscriptions learned from
//! heartbeats are published to every shard as an immutable snapshot, so a pull that
//! carries no subscription is filtered with its group's, as the reference does when the
//! pull's sysFlag has no subscription bit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use ramjet_proto::body::{
    self, Connection, ConsumerConnection, ConsumerListBody, HeartbeatData, LockBatchRequestBody,
    LockBatchResponseBody,
};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, GetConsumerListByGroupRequestHeader, NotifyConsumerIdsChangedRequestHeader,
    UnregisterClientRequestHeader,
};
use ramjet_proto::{Frame, Header};
use tracing::warn;

use super::sql_filter::GroupSubscription;
use super::{error, error_response, field_error, success, RequestContext};
use crate::client_registry::{ClientChannel, MembershipChange};
use crate::clock::now_ms;
use crate::net::connection::Response;
use crate::shard::{Shard, ShardMsg};

/// Subscription expressions by (group, topic). Immutable once published.
#[derive(Debug, Default, PartialEq)]
pub struct SubscriptionTable {
    /// group → topic → sub expression (`*`, `TagA || TagB`, a SQL92 selector) and, for
    /// SQL92, its compiled filter. Nested so a pull looks its group and topic up by `&str`
    /// (no key strings built per request).
    by_group: HashMap<String, HashMap<String, GroupSubscription>>,
}

impl SubscriptionTable {
    /// The subscription of `group` to `topic`.
    pub fn get(&self, group: &str, topic: &str) -> Option<&GroupSubscription> {
        self.by_group.get(group)?.get(topic)
    }

    /// Whether `group` subscribes to `topic`.
    pub fn contains(&self, group: &str, topic: &str) -> bool {
        self.get(group, topic).is_some()
    }

    /// Whether `group` subscribes to anything.
    pub fn has_group(&self, group: &str) -> bool {
        self.by_group.contains_key(group)
    }

    /// Every (group, topic) pair.
    pub fn keys(&self) -> impl Iterator<Item = (&String, &String)> {
        self.by_group.iter().flat_map(|(g, topics)| topics.keys().map(move |t| (g, t)))
    }

    /// The topics `group` subscribes to.
    pub fn topics_of(&self, group: &str) -> impl Iterator<Item = &String> {
        self.by_group.get(group).into_iter().flat_map(|topics| topics.keys())
    }

    fn insert(&mut self, group: String, topic: String, sub: GroupSubscription) {
        self.by_group.entry(group).or_default().insert(topic, sub);
    }
}

/// HEART_BEAT: records the client, creates `%RETRY%<group>` topics, publishes
/// subscriptions when they changed.
pub async fn heartbeat(shard: &Rc<Shard>, frame: &Frame, ctx: RequestContext) -> Response {
    let h = &frame.header;
    let hb: HeartbeatData = match body::from_json(&frame.body) {
        Ok(hb) => hb,
        Err(e) => return error(h, response::SYSTEM_ERROR, format!("bad heartbeat body: {e}")),
    };
    let groups: Vec<String> = hb.consumer_data_set.iter().map(|c| c.group_name.clone()).collect();
    let channel = ClientChannel {
        shard: ctx.origin,
        addr: ctx.peer.to_string(),
        serialize_type: h.serialize_type,
        language: h.language.name().to_string(),
        version: h.version,
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let change = zero.clients.borrow_mut().heartbeat(hb, channel, now_ms());
    let change = match change {
        Ok(c) => c,
        Err(e) => return error_response(h, &e),
    };
    for group in &groups {
        ensure_retry_topic(shard, group).await;
    }
    publish_subscriptions(shard).await;
    notify_changes(shard, &change);
    Response::new(success(h))
}

/// Sends NOTIFY_CONSUMER_IDS_CHANGED (one-way) to every member of each changed group, so
/// clients rebalance at once instead of at their next periodic rebalance.
pub fn notify_changes(shard: &Shard, change: &MembershipChange) {
    for group in &change.changed_groups {
        let Some(zero) = shard.zero.as_ref() else { return };
        let members = zero.clients.borrow().consumer_channels(group);
        for (_, ch) in members {
            let Ok(peer) = ch.addr.parse::<SocketAddr>() else { continue };
            let mut header =
                Header::request(request::NOTIFY_CONSUMER_IDS_CHANGED, 0, ch.serialize_type);
            header.set_oneway();
            NotifyConsumerIdsChangedRequestHeader { consumer_group: group.clone() }
                .encode(&mut header.ext_fields);
            shard.push(ch.shard, peer, header);
        }
    }
}

/// GET_CONSUMER_CONNECTION_LIST.
pub fn consumer_connections(shard: &Shard, h: &Header) -> Response {
    let group = match h.ext_fields.req_str("consumerGroup") {
        Ok(g) => g.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let clients = zero.clients.borrow();
    let members = clients.consumer_channels(&group);
    let Some(data) = clients.consumer_data(&group) else {
        return error(
            h,
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", ramjet_proto::text::clip_echo(&group)),
        );
    };
    let body = ConsumerConnection {
        connection_set: members
            .into_iter()
            .map(|(id, ch)| Connection {
                client_id: id,
                client_addr: ch.addr,
                language: ch.language,
                version: ch.version,
            })
            .collect(),
        subscription_table: data
            .subscription_data_set
            .iter()
            .map(|s| (s.topic.clone(), s.clone()))
            .collect(),
        consume_type: data.consume_type,
        message_model: data.message_model,
        consume_from_where: data.consume_from_where,
    };
    Response { header: success(h), body: body::to_json(&body).into(), parts: Box::default() }
}

/// LOCK_BATCH_MQ.
pub fn lock_batch(shard: &Shard, frame: &Frame) -> Response {
    let h = &frame.header;
    let req: LockBatchRequestBody = match body::from_json(&frame.body) {
        Ok(r) => r,
        Err(e) => return error(h, response::SYSTEM_ERROR, format!("bad lock body: {e}")),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let granted =
        zero.locks.borrow_mut().lock(&req.consumer_group, &req.client_id, &req.mq_set, now_ms());
    let body = LockBatchResponseBody { lock_ok_mq_set: granted };
    Response { header: success(h), body: body::to_json(&body).into(), parts: Box::default() }
}

/// UNLOCK_BATCH_MQ.
pub fn unlock_batch(shard: &Shard, frame: &Frame) -> Response {
    let h = &frame.header;
    let req: LockBatchRequestBody = match body::from_json(&frame.body) {
        Ok(r) => r,
        Err(e) => return error(h, response::SYSTEM_ERROR, format!("bad unlock body: {e}")),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    zero.locks.borrow_mut().unlock(&req.consumer_group, &req.client_id, &req.mq_set);
    Response::new(success(h))
}

async fn ensure_retry_topic(shard: &Rc<Shard>, group: &str) {
    let retry = ramjet_proto::topic_names::retry_topic(group);
    if shard.topic_table().get(&retry).is_some() {
        return;
    }
    if let Err(e) = shard.create_topic(&crate::shard::topics::one_queue_topic(&retry)).await {
        warn!(topic = %retry, code = e.response_code(), remark = %e, "retry topic creation failed");
    }
}

async fn publish_subscriptions(shard: &Rc<Shard>) {
    let mut table = SubscriptionTable::default();
    {
        let Some(zero) = shard.zero.as_ref() else { return };
        let clients = zero.clients.borrow();
        let previous = shard.subscriptions.borrow().clone();
        let compile = shard.config.enable_property_filter;
        for (group, topic, expr, kind) in clients.subscriptions() {
            let sub = GroupSubscription::new(expr, &kind, compile, previous.get(&group, &topic));
            table.insert(group, topic, sub);
        }
    }
    let changed = **shard.subscriptions.borrow() != table;
    if !changed {
        return;
    }
    let table = Arc::new(table);
    *shard.subscriptions.borrow_mut() = table.clone();
    for (i, peer) in shard.peers.iter().enumerate() {
        if i != shard.id {
            let _ = peer.send_async(ShardMsg::Subscriptions { table: table.clone() }).await;
        }
    }
}

/// UNREGISTER_CLIENT.
pub fn unregister(shard: &Shard, h: &Header) -> Response {
    let req = match UnregisterClientRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let change = zero.clients.borrow_mut().unregister(&req.client_id);
    notify_changes(shard, &change);
    Response::new(success(h))
}

/// GET_CONSUMER_LIST_BY_GROUP.
pub fn consumer_list(shard: &Shard, h: &Header) -> Response {
    let req = match GetConsumerListByGroupRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let ids = zero.clients.borrow().consumer_ids(&req.consumer_group);
    if ids.is_empty() {
        return error(
            h,
            response::SYSTEM_ERROR,
            format!("no consumer for this group, {}", req.consumer_group),
        );
    }
    Response {
        header: success(h),
        body: body::to_json(&ConsumerListBody { consumer_id_list: ids }).into(),
        parts: Box::default(),
    }
}

/// A client connection ended: on shard 0 forget its clients now; elsewhere tell shard 0.
pub fn connection_closed(shard: &Rc<Shard>, peer: SocketAddr) {
    if let Some(zero) = shard.zero.as_ref() {
        let change = zero.clients.borrow_mut().connection_closed(&peer.to_string());
        notify_changes(shard, &change);
        return;
    }
    // Heartbeats were recorded on shard 0 under this peer address; tell it. A full
    // channel only delays the cleanup to shard 0's expiry scan.
    let _ = shard.peers[0].try_send(ShardMsg::ConnectionClosed { peer });
}
