//! Topic administration: UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215),
//! GET_ALL_TOPIC_CONFIG (21). All run on shard 0, the topic table's owner, which persists
//! the table, publishes the new snapshot to every shard (and waits until each has it, so
//! a client that created a topic can use it on any connection at once), then asks for a
//! re-registration with the NameServers.

use std::rc::Rc;

use ramjet_proto::body;
use ramjet_proto::codes::response;
use ramjet_proto::header::{CommandHeader, CreateTopicRequestHeader};
use ramjet_proto::Header;
use tracing::{info, warn};

use super::{error, error_response, field_error, success};
use crate::error::BrokerError;
use crate::net::connection::Response;
use crate::shard::{Shard, ShardMsg};
use crate::topic::{validate_topic_name, TopicTable, TOPIC_QUEUES_MAX};
use crate::util::write_file_durably;

/// UPDATE_AND_CREATE_TOPIC.
pub async fn create_topic(shard: &Rc<Shard>, h: &Header) -> Response {
    let req = match CreateTopicRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    if let Err(e) = validate_topic_name(&req.topic) {
        return error_response(h, &e);
    }
    let queues_ok = |n: i32| (0..=TOPIC_QUEUES_MAX).contains(&n);
    if !queues_ok(req.read_queue_nums)
        || !queues_ok(req.write_queue_nums)
        || !(0..8).contains(&req.perm)
    {
        return error(
            h,
            response::SYSTEM_ERROR,
            format!(
                "invalid queue numbers {}/{} or perm {} for topic {}",
                req.read_queue_nums, req.write_queue_nums, req.perm, req.topic
            ),
        );
    }
    let config = body::TopicConfig {
        topic_name: req.topic.clone(),
        read_queue_nums: req.read_queue_nums,
        write_queue_nums: req.write_queue_nums,
        perm: req.perm,
        topic_filter_type: req.topic_filter_type.clone(),
        topic_sys_flag: req.topic_sys_flag.unwrap_or(0),
        order: req.order,
    };
    let Some(manager) = shard.topic_manager.as_ref() else {
        return error(
            h,
            response::SYSTEM_ERROR,
            "topic change reached a shard that does not own topics",
        );
    };
    let change = manager.borrow_mut().upsert(config);
    match change {
        Some((table, json)) => {
            if let Err(e) = publish(shard, table, json).await {
                return error_response(h, &e);
            }
            info!(topic = %req.topic, queues = req.write_queue_nums, "topic created or updated");
        }
        None => {
            // Unchanged, but an earlier request may be publishing this very topic: wait for
            // it, so the answer never precedes every shard knowing the topic.
            let _ = shard.persist_lock.acquire_permit(1).await;
        }
    }
    Response::new(success(h))
}

/// DELETE_TOPIC_IN_BROKER: forgets the topic's config (its stored data ages out).
pub async fn delete_topic(shard: &Rc<Shard>, h: &Header) -> Response {
    let topic = match h.ext_fields.req_str("topic") {
        Ok(t) => t.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let Some(manager) = shard.topic_manager.as_ref() else {
        return error(
            h,
            response::SYSTEM_ERROR,
            "topic change reached a shard that does not own topics",
        );
    };
    let change = manager.borrow_mut().remove(&topic);
    if let Some((table, json)) = change {
        if let Err(e) = publish(shard, table, json).await {
            return error_response(h, &e);
        }
    }
    Response::new(success(h))
}

/// GET_ALL_TOPIC_CONFIG.
pub fn all_topic_config(shard: &Shard, h: &Header) -> Response {
    let table = shard.topic_table();
    Response { header: success(h), body: body::to_json(&table.to_wrapper()).into() }
}

/// Persists the table, installs it on every shard, and kicks the registration task.
pub(crate) async fn publish(
    shard: &Rc<Shard>,
    table: std::sync::Arc<TopicTable>,
    json: Vec<u8>,
) -> Result<(), BrokerError> {
    let path = match shard.topic_manager.as_ref() {
        Some(m) => m.borrow().path().to_path_buf(),
        None => return Err(BrokerError::System("no topic manager".into())),
    };
    // Persistence is serialised and always writes the newest table, so two concurrent
    // changes can never leave an older table on disk.
    let _permit = shard
        .persist_lock
        .acquire_permit(1)
        .await
        .map_err(|e| BrokerError::System(e.to_string()))?;
    let newest = shard.topic_manager.as_ref().map(|m| m.borrow().table());
    let json = match newest {
        Some(t) if !std::sync::Arc::ptr_eq(&t, &table) => body::to_json(&t.to_wrapper()),
        _ => json,
    };
    write_file_durably(path.clone(), json)
        .await
        .map_err(|e| BrokerError::System(format!("persisting {}: {e}", path.display())))?;
    *shard.topics.borrow_mut() = table.clone();
    for (i, peer) in shard.peers.iter().enumerate() {
        if i == shard.id {
            continue;
        }
        let (ack, done) = flume::bounded(1);
        if peer.send_async(ShardMsg::Topics { table: table.clone(), ack }).await.is_err() {
            warn!(shard = i, "shard gone while publishing topics");
            continue;
        }
        let _ = done.recv_async().await;
    }
    shard.register_kick.notify();
    Ok(())
}

/// Creates (or updates) a topic from any shard: directly on shard 0, else through it.
/// Returns once every shard has the new topic table.
///
/// # Errors
/// Why the creation was refused.
pub async fn create_topic_anywhere(
    shard: &Rc<Shard>,
    create: &ramjet_proto::header::CreateTopicRequestHeader,
) -> Result<(), BrokerError> {
    let mut header = Header::request(
        ramjet_proto::codes::request::UPDATE_AND_CREATE_TOPIC,
        0,
        ramjet_proto::SerializeType::RocketMq,
    );
    create.encode(&mut header.ext_fields);
    let resp = if shard.id == 0 {
        create_topic(shard, &header).await
    } else {
        let frame = ramjet_proto::Frame { header, body: bytes::Bytes::new() };
        shard
            .forward(0, frame, shard.store_host)
            .await
            .ok_or(BrokerError::ShardGone(0))?
    };
    if resp.header.code == response::SUCCESS {
        Ok(())
    } else {
        Err(BrokerError::Refused {
            code: resp.header.code,
            remark: resp.header.remark.unwrap_or_default(),
        })
    }
}

/// The request for a system-made topic with one read and write queue (retry, DLQ).
pub fn one_queue_topic(topic: &str) -> ramjet_proto::header::CreateTopicRequestHeader {
    ramjet_proto::header::CreateTopicRequestHeader {
        topic: topic.to_string(),
        default_topic: crate::topic::TBW102.into(),
        read_queue_nums: 1,
        write_queue_nums: 1,
        perm: crate::topic::PERM_READ | crate::topic::PERM_WRITE,
        topic_filter_type: "SINGLE_TAG".into(),
        topic_sys_flag: Some(0),
        order: false,
    }
}
