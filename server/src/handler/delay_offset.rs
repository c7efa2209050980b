//! GET_ALL_DELAY_OFFSET (45): the delivery progress of every delay level, as the
//! reference's `DelayOffsetSerializeWrapper` (`{"offsetTable":{"level":offset}}`), for a
//! slave's metadata sync.
//!
//! Runs on the accepting shard and gathers every shard: progress is kept as consumer
//! offsets of the reserved group `%SCHEDULE_DELIVERY%` on `SCHEDULE_TOPIC_XXXX` queue
//! `level - 1` (`schedule.rs`), on each queue's owner.

use std::collections::BTreeMap;
use std::rc::Rc;

use ramjet_proto::Header;
use serde::{Deserialize, Serialize};

use super::success;
use crate::net::connection::Response;
use crate::schedule::DELIVERY_GROUP;
use crate::shard::Shard;
use crate::shard_ops::{gather, OpsQuery, OpsReply};
use crate::topic::SCHEDULE_TOPIC;

/// The body: delay level → next queue offset to deliver.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelayOffsets {
    /// Level (1-based) → offset.
    #[serde(default)]
    pub offset_table: BTreeMap<i32, i64>,
}

/// The `topic@group` key of the delivery progress.
pub fn delivery_key() -> String {
    format!("{SCHEDULE_TOPIC}@{DELIVERY_GROUP}")
}

/// GET_ALL_DELAY_OFFSET.
pub async fn all_delay_offsets(shard: &Rc<Shard>, h: &Header) -> Response {
    let key = delivery_key();
    let mut table = DelayOffsets::default();
    for reply in gather(shard, OpsQuery::AllOffsets).await {
        if let OpsReply::Offsets(entries) = reply {
            for (k, queue_id, offset) in entries {
                if k == key {
                    table.offset_table.insert(queue_id + 1, offset);
                }
            }
        }
    }
    Response {
        header: success(h),
        body: ramjet_proto::body::to_json(&table).into(),
        parts: Box::default(),
    }
}
