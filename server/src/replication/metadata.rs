//! A slave's metadata sync: topics, consumer offsets, delay progress and subscription
//! groups follow the master, so a consumer that moves to the slave resumes where it was
//! (the reference's `SlaveSynchronize`).
//!
//! Lives on: shard 0 of a SLAVE (the owner of topics and subscription groups). Every
//! [`SYNC_INTERVAL`] it asks the master's broker address (learnt from registration, or
//! `haMasterAddress` with the port less one) over remoting:
//!
//! | request | installed |
//! |---|---|
//! | GET_ALL_TOPIC_CONFIG (21) | the topic table, when it differs: persisted, published to every shard, re-registered |
//! | GET_ALL_CONSUMER_OFFSET (43) | every offset, on the queue's owner shard (`ShardMsg::InstallOffsets`) |
//! | GET_ALL_DELAY_OFFSET (45) | as offsets of `%SCHEDULE_DELIVERY%` on `SCHEDULE_TOPIC_XXXX` |
//! | GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201) | each group that differs (none removed, as the reference) |
//!
//! A failed round is logged once and retried at the next interval. While the master sends
//! topics and groups in-band (a version 3 master, `feed.rs`), the rounds copy only offsets
//! and delay progress: a table fetched before an in-band change must not undo it.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use ramjet_proto::admin_body::{ConsumerOffsetSerializeWrapper, SubscriptionGroupWrapper};
use ramjet_proto::body::{self, TopicConfigSerializeWrapper};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, Header, SerializeType};
use tracing::{info, warn};

use crate::durable_file::write_file_durably;
use crate::handler::delay_offset::{delivery_key, DelayOffsets};
use crate::register::Outbound;
use crate::shard::{Shard, ShardMsg};
use crate::topic::{TopicTable, SCHEDULE_TOPIC};

/// Pause between two sync rounds.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(3);
/// Deadline of one request to the master.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The master's broker (remoting) address from its HA address: the HA port is the
/// listen port + 1.
pub fn broker_addr_of_ha(ha: &str) -> Option<String> {
    let (host, port) = ha.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_sub(1)?))
}

/// Syncs forever.
pub async fn sync_loop(shard: Rc<Shard>) {
    let mut conn: Option<(String, Outbound)> = None;
    let mut last_error: Option<String> = None;
    loop {
        glommio::timer::sleep(SYNC_INTERVAL).await;
        let Some(master) = shard.replica.master_addr.borrow().clone() else { continue };
        if conn.as_ref().is_some_and(|(addr, _)| *addr != master) {
            conn = None;
        }
        match sync_once(&shard, &master, &mut conn).await {
            Ok(()) => last_error = None,
            Err(reason) => {
                conn = None;
                if last_error.as_deref() != Some(reason.as_str()) {
                    warn!(%master, %reason, "metadata sync from the master failed; retrying");
                    last_error = Some(reason);
                }
            }
        }
    }
}

async fn call(
    shard: &Shard,
    conn: &mut Option<(String, Outbound)>,
    master: &str,
    code: i32,
) -> Result<Frame, String> {
    if conn.is_none() {
        // Signed with the broker's own account when it has one (a master with ACL on).
        let credentials = shard.config.inner_credentials.clone();
        let c =
            Outbound::connect(master, credentials).await.map_err(|e| format!("connect: {e}"))?;
        *conn = Some((master.to_string(), c));
    }
    let Some((_, c)) = conn.as_mut() else { return Err("no connection".into()) };
    let header = Header::request(code, 0, SerializeType::RocketMq);
    let frame = crate::replication::io::within(CALL_TIMEOUT, c.call(header, &[]))
        .await
        .ok_or_else(|| format!("request {code} timed out"))?
        .map_err(|e| format!("request {code}: {e}"))?;
    if frame.header.code != response::SUCCESS {
        let remark = frame.header.remark.unwrap_or_default();
        return Err(format!("request {code}: code {} {remark}", frame.header.code));
    }
    Ok(frame)
}

async fn sync_once(
    shard: &Rc<Shard>,
    master: &str,
    conn: &mut Option<(String, Outbound)>,
) -> Result<(), String> {
    let topics = call(shard, conn, master, request::GET_ALL_TOPIC_CONFIG).await?;
    let topics: TopicConfigSerializeWrapper =
        body::from_json(&topics.body).map_err(|e| format!("topics: {e}"))?;
    install_topics(shard, topics).await?;
    let offsets = call(shard, conn, master, request::GET_ALL_CONSUMER_OFFSET).await?;
    let offsets: ConsumerOffsetSerializeWrapper =
        body::from_json(&offsets.body).map_err(|e| format!("offsets: {e}"))?;
    let delays = call(shard, conn, master, request::GET_ALL_DELAY_OFFSET).await?;
    let delays: DelayOffsets = body::from_json(&delays.body).map_err(|e| format!("delays: {e}"))?;
    install_offsets(shard, offsets, delays).await;
    let groups = call(shard, conn, master, request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG).await?;
    let groups: SubscriptionGroupWrapper =
        body::from_json(&groups.body).map_err(|e| format!("groups: {e}"))?;
    install_groups(shard, groups).await
}

async fn install_topics(
    shard: &Rc<Shard>,
    wrapper: TopicConfigSerializeWrapper,
) -> Result<(), String> {
    let Some(manager) = shard.zero.as_ref().map(|z| &z.topic_manager) else { return Ok(()) };
    if shard.replica.metadata_in_band.get() {
        return Ok(());
    }
    let table = TopicTable::from_map(wrapper.topic_config_table, wrapper.data_version);
    let count = table.len();
    let change = manager.borrow_mut().replace(table);
    if let Some(seq) = change {
        shard.persist_topics(seq).await.map_err(|e| e.to_string())?;
        info!(topics = count, "topic table copied from the master");
    }
    Ok(())
}

async fn install_offsets(
    shard: &Rc<Shard>,
    offsets: ConsumerOffsetSerializeWrapper,
    delays: DelayOffsets,
) {
    let mut by_shard: HashMap<usize, Vec<(String, String, i32, i64)>> = HashMap::new();
    let mut table = offsets.offset_table;
    let delivery = table.entry(delivery_key()).or_default();
    for (level, offset) in delays.offset_table {
        delivery.insert(level - 1, offset);
    }
    for (key, queues) in table {
        let Some((topic, group)) = key.split_once('@') else { continue };
        for (queue_id, offset) in queues {
            if topic == SCHEDULE_TOPIC && !(0..18).contains(&queue_id) {
                continue;
            }
            by_shard.entry(shard.shard_for(topic, queue_id)).or_default().push((
                topic.to_string(),
                group.to_string(),
                queue_id,
                offset,
            ));
        }
    }
    for (target, offsets) in by_shard {
        let _ = shard.peers[target].send_async(ShardMsg::InstallOffsets { offsets }).await;
    }
}

async fn install_groups(
    shard: &Rc<Shard>,
    wrapper: SubscriptionGroupWrapper,
) -> Result<(), String> {
    let Some(zero) = shard.zero.as_ref() else { return Ok(()) };
    if shard.replica.metadata_in_band.get() {
        return Ok(());
    }
    let mut last = None;
    for (_, config) in wrapper.subscription_group_table {
        // A group past subscriptionGroupMaxCount is refused (and reported) here too.
        if let Ok(Some(bytes)) = zero.subscription_groups.borrow_mut().upsert(config) {
            last = Some(bytes);
        }
    }
    if let Some(bytes) = last {
        let path = zero.subscription_groups.borrow().path().to_path_buf();
        write_file_durably(path.clone(), bytes)
            .await
            .map_err(|e| format!("persisting {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_port_is_the_ha_port_less_one() {
        assert_eq!(broker_addr_of_ha("127.0.0.1:10912").as_deref(), Some("127.0.0.1:10911"));
        assert_eq!(broker_addr_of_ha("nohost"), None);
        assert_eq!(broker_addr_of_ha("h:0"), None);
    }
}
