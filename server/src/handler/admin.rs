//! Topic administration: UPDATE_AND_CREATE_TOPIC (17), DELETE_TOPIC_IN_BROKER (215),
//! GET_ALL_TOPIC_CONFIG (21). All run on shard 0, the topic table's owner; the change
//! itself (persist, publish to every shard, re-register) is the shard's typed topic API
//! (`shard/topics.rs`), which internal callers (auto-creation, retry and DLQ topics) use
//! directly.

use std::rc::Rc;

use ramjet_proto::body;
use ramjet_proto::header::{CommandHeader, CreateTopicRequestHeader};
use ramjet_proto::Header;

use super::{error_response, field_error, success};
use crate::net::connection::Response;
use crate::shard::topics::checked_config;
use crate::shard::Shard;

/// UPDATE_AND_CREATE_TOPIC.
pub async fn create_topic(shard: &Rc<Shard>, h: &Header) -> Response {
    let req = match CreateTopicRequestHeader::decode(&h.ext_fields) {
        Ok(r) => r,
        Err(e) => return field_error(h, &e),
    };
    let created = match checked_config(&req) {
        Ok(config) => shard.create_topic_here(config).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(()) => Response::new(success(h)),
        Err(e) => error_response(h, &e),
    }
}

/// DELETE_TOPIC_IN_BROKER: forgets the topic's config (its stored data ages out).
pub async fn delete_topic(shard: &Rc<Shard>, h: &Header) -> Response {
    let topic = match h.ext_fields.req_str("topic") {
        Ok(t) => t.to_string(),
        Err(e) => return field_error(h, &e),
    };
    match shard.delete_topic_here(&topic).await {
        Ok(()) => Response::new(success(h)),
        Err(e) => error_response(h, &e),
    }
}

/// GET_ALL_TOPIC_CONFIG.
pub fn all_topic_config(shard: &Shard, h: &Header) -> Response {
    let table = shard.topic_table();
    Response {
        header: success(h),
        body: body::to_json(&table.to_wrapper()).into(),
        parts: Box::default(),
    }
}
