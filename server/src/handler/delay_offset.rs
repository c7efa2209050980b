//! GET_BROKER_EPOCH_CACHE (1007): the epoch tables (`replication/epoch.rs`) as the
//! reference's `EpochEntryCache`.
//!
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

/// GET_BROKER_EPOCH_CACHE (1007): every log's epoch entries as the reference's
/// `EpochEntryCache`, offsets as global log offsets (the log id in bits 56..62), log by
/// log, oldest first; the last entry of each log ends at `i64::MAX` (open). `maxOffset`:
/// the highest log end. An unreadable epoch file answers SYSTEM_ERROR with the reason.
pub async fn broker_epoch_cache(shard: &Rc<Shard>, h: &Header) -> Response {
    use ramjet_proto::controller::{EpochEntry, EpochEntryCache};
    let store = shard.config.store_path.clone();
    let loaded =
        glommio::executor().spawn_blocking(move || crate::replication::epoch::load(&store)).await;
    let file = match loaded {
        Ok(file) => file,
        Err(reason) => {
            let mut header = success(h);
            header.code = ramjet_proto::codes::response::SYSTEM_ERROR;
            header.remark = Some(reason);
            return Response::new(header);
        }
    };
    let ends = crate::replication::positions(&shard.peers).await.unwrap_or_default();
    let logs = shard.log_count as usize;
    // Guarded: the file is read from disk (a log or position out of range reads as -1).
    let global = |log: usize, position: u64| {
        if log < logs && position < (1u64 << 56) {
            ramjet_storage::log_offset_of(log as u32, position)
        } else {
            -1
        }
    };
    let mut cache = EpochEntryCache {
        cluster_name: shard.config.cluster.clone(),
        broker_name: shard.config.broker_name.clone(),
        broker_id: shard.config.broker_id,
        epoch_list: Vec::new(),
        max_offset: ends.iter().enumerate().map(|(l, p)| global(l, p.end)).max().unwrap_or(0),
    };
    for (log, table) in file.logs.iter().enumerate().take(logs) {
        for (i, entry) in table.iter().enumerate() {
            cache.epoch_list.push(EpochEntry {
                epoch: i32::try_from(entry.epoch).unwrap_or(i32::MAX),
                start_offset: global(log, entry.start),
                end_offset: table.get(i + 1).map_or(i64::MAX, |next| global(log, next.start)),
            });
        }
    }
    Response {
        header: success(h),
        body: ramjet_proto::body::to_json(&cache).into(),
        parts: Box::default(),
    }
}
