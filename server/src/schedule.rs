//! Delay levels: messages with a `DELAY` property wait in `SCHEDULE_TOPIC_XXXX` and are
//! delivered to their real topic and queue when due (RocketMQ's ScheduleMessageService).
//!
//! Lives on: the owner shard of each schedule queue (`queueId = level - 1`). One delivery
//! task per level reads its queue in order; an entry's tags code is its delivery time, so
//! the task looks at the head entry only and sleeps until it is due (or until an append
//! to the queue wakes it). Delivery progress per level is a consumer offset of the
//! reserved group [`DELIVERY_GROUP`], persisted with the other offsets (every 5 s and at a
//! clean stop), so a restart delivers every due message from where it was: nothing lost,
//! nothing early, and duplicates only for the last few seconds before a crash (the
//! reference's bound, its `flushDelayOffsetInterval` is 10 s).

use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ramjet_proto::message::{self, property, MessageMeta, StoredMessage};
use ramjet_storage::{AppendBatch, GetRequest, GetStatus};
use tracing::{debug, warn};

use crate::clock::now_ms;
use crate::error::BrokerError;
use crate::shard::Shard;
use crate::topic::SCHEDULE_TOPIC;

/// `messageDelayLevel` default: `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`.
pub const DELAY_LEVELS_MS: [i64; 18] = [
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 180_000, 240_000, 300_000, 360_000, 420_000,
    480_000, 540_000, 600_000, 1_200_000, 1_800_000, 3_600_000, 7_200_000,
];
/// The reserved consumer group whose offsets record delivery progress per level.
pub const DELIVERY_GROUP: &str = "%SCHEDULE_DELIVERY%";
/// Entries read per step.
const DELIVERY_BATCH_MAX: u32 = 256;
/// Longest sleep between looks at a level's queue.
const IDLE_WAIT_MS: u64 = 1_000;

/// Longest timer delay accepted (the reference's `timerMaxDelaySec`, 3 days).
pub const TIMER_DELAY_MS_MAX: i64 = 3 * 24 * 3_600_000;

/// The level a timer message with `remaining_ms` to go is parked in: the longest level
/// that does not pass its due time (level 1 when under a second: the reference's timer
/// precision is 1 s too). A message waits at most `log2`-like few levels: each delivery
/// from a level re-parks it for what remains, so its cost does not grow with the number
/// of pending messages.
pub fn timer_level(remaining_ms: i64) -> i32 {
    let fitting = DELAY_LEVELS_MS.iter().rposition(|&d| d <= remaining_ms);
    fitting.map_or(1, |i| i as i32 + 1)
}

/// The absolute delivery time a 5.x timer message asks for (`TIMER_DELIVER_MS`, or
/// `TIMER_DELAY_SEC` / `TIMER_DELAY_MS` from `now_ms`), if any.
pub fn timer_deliver_ms(properties: &[u8], now_ms: i64) -> Option<i64> {
    let num = |name: &str| {
        message::property_value(properties, name).and_then(|v| v.trim().parse::<i64>().ok())
    };
    num(property::TIMER_DELIVER_MS)
        .or_else(|| {
            num(property::TIMER_DELAY_SEC).map(|s| now_ms.saturating_add(s.saturating_mul(1000)))
        })
        .or_else(|| num(property::TIMER_DELAY_MS).map(|ms| now_ms.saturating_add(ms)))
}

/// Turns a timer message's properties into a delay-level parking: `TIMER_DELIVER_MS` made
/// absolute and `DELAY` set to [`timer_level`]. `None` when the message has no timer or
/// is already due. `Err` when the delay passes [`TIMER_DELAY_MS_MAX`].
pub fn timer_properties(properties: &[u8], now_ms: i64) -> Result<Option<Vec<u8>>, BrokerError> {
    let Some(deliver) = timer_deliver_ms(properties, now_ms) else {
        return Ok(None);
    };
    let remaining = deliver - now_ms;
    if remaining > TIMER_DELAY_MS_MAX {
        return Err(BrokerError::IllegalMessage(format!(
            "timer delay {remaining} ms is over the maximum {TIMER_DELAY_MS_MAX} ms"
        )));
    }
    if remaining <= 0 {
        return Ok(None);
    }
    let p = message::set_property(properties, property::TIMER_DELIVER_MS, &deliver.to_string());
    Ok(Some(message::set_property(
        &p,
        property::DELAY_TIME_LEVEL,
        &timer_level(remaining).to_string(),
    )))
}

/// Highest delay level.
pub fn max_level() -> i32 {
    DELAY_LEVELS_MS.len() as i32
}

/// The delay of `level` (capped at the highest level), in ms.
pub fn delay_ms(level: i32) -> i64 {
    let idx = (level.clamp(1, max_level()) - 1) as usize;
    DELAY_LEVELS_MS.get(idx).copied().unwrap_or(1_000)
}

/// The delay level a message asks for (`DELAY` > 0), if any.
pub fn requested_level(properties: &[u8]) -> Option<i32> {
    message::property_value(properties, property::DELAY_TIME_LEVEL)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|l| *l > 0)
        .map(|l| l.min(max_level()))
}

/// Tags code of a replayed record: the delivery time for schedule entries (store time plus
/// the level's delay), the tags hash otherwise. Given to storage for recovery.
pub fn tags_code_of(m: &StoredMessage) -> i64 {
    if &m.topic[..] == SCHEDULE_TOPIC.as_bytes() {
        let level = requested_level(&m.properties).unwrap_or(1);
        return m.store_timestamp + delay_ms(level);
    }
    ramjet_storage::config::tags_code_from_tags(m)
}

/// Properties of a message parked for `level`: its real topic and queue recorded.
pub fn parked_properties(properties: &[u8], real_topic: &str, real_queue_id: i32) -> Vec<u8> {
    let p = message::set_property(properties, property::REAL_TOPIC, real_topic);
    message::set_property(&p, property::REAL_QUEUE_ID, &real_queue_id.to_string())
}

/// Delivers level `level`'s due messages forever.
pub async fn delivery_loop(shard: Rc<Shard>, level: i32) {
    let queue_id = level - 1;
    let Some(store) = shard.store_for(SCHEDULE_TOPIC, queue_id).cloned() else {
        return;
    };
    let log = shard.log_for(SCHEDULE_TOPIC, queue_id);
    loop {
        let stored = shard.offsets.borrow().get(log, DELIVERY_GROUP, SCHEDULE_TOPIC, queue_id);
        let offset = stored.unwrap_or(0).max(store.min_offset(SCHEDULE_TOPIC, queue_id));
        let get = GetRequest {
            topic: SCHEDULE_TOPIC,
            queue_id,
            queue_offset: offset,
            max_count: DELIVERY_BATCH_MAX,
            max_bytes: 4 * 1024 * 1024,
            tags_filter: None,
        };
        let result = match store.get_messages(get).await {
            Ok(r) => r,
            Err(e) => {
                warn!(level, error = %e, "schedule read failed");
                glommio::timer::sleep(Duration::from_millis(IDLE_WAIT_MS)).await;
                continue;
            }
        };
        if result.status != GetStatus::Found {
            if matches!(result.status, GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly) {
                let next = result.next_offset.max(result.min_offset);
                shard.offsets.borrow_mut().set(log, DELIVERY_GROUP, SCHEDULE_TOPIC, queue_id, next);
            }
            wait_for_append(&shard, queue_id, IDLE_WAIT_MS).await;
            continue;
        }
        // Every due entry of this step is re-put at once (in order: tasks start in spawn
        // order and each reaches its append before yielding), then awaited in order;
        // progress moves past the ones that succeeded before the first failure.
        let now = now_ms() as i64;
        let mut wait_ms = 0;
        let mut deliveries = Vec::new();
        for (record, due) in result.messages.iter().zip(&result.tags_codes) {
            if *due > now {
                wait_ms = (*due - now) as u64;
                break;
            }
            let (shard, record) = (shard.clone(), record.clone());
            deliveries.push(glommio::spawn_local(async move { deliver(&shard, &record).await }));
        }
        let mut next = offset;
        for delivery in deliveries {
            match delivery.await {
                Ok(()) => next += 1,
                Err(e) => {
                    warn!(level, error = %e, "scheduled delivery failed; retrying");
                    wait_ms = IDLE_WAIT_MS;
                    break;
                }
            }
        }
        if next != offset {
            shard.offsets.borrow_mut().set(log, DELIVERY_GROUP, SCHEDULE_TOPIC, queue_id, next);
        }
        if wait_ms > 0 {
            glommio::timer::sleep(Duration::from_millis(wait_ms.min(IDLE_WAIT_MS))).await;
        }
    }
}

async fn wait_for_append(shard: &Shard, queue_id: i32, max_ms: u64) {
    let waiter = shard.long_poll.borrow_mut().park_internal(SCHEDULE_TOPIC, queue_id);
    let timer = glommio::timer::sleep(Duration::from_millis(max_ms));
    match waiter {
        Some(w) => futures_lite::future::or(w, timer).await,
        None => timer.await,
    }
}

/// Re-puts one parked message to its real topic and queue, `DELAY` removed.
async fn deliver(shard: &Rc<Shard>, record: &Bytes) -> Result<(), BrokerError> {
    let m = match message::decode_record(record, false) {
        Ok(m) => m,
        Err(e) => {
            // It will never decode: waiting on it would stop the whole level.
            warn!(error = %e, "undecodable parked record skipped");
            return Ok(());
        }
    };
    let Some(topic) = m.property(property::REAL_TOPIC) else {
        warn!(offset = m.physical_offset, "parked message without REAL_TOPIC dropped");
        return Ok(());
    };
    let queue_id: i32 =
        m.property(property::REAL_QUEUE_ID).and_then(|q| q.parse().ok()).unwrap_or(0);
    if shard.topic_table().get(&topic).is_none() {
        warn!(%topic, "scheduled message for a topic that no longer exists dropped");
        return Ok(());
    }
    let now = now_ms() as i64;
    if let Some(deliver) = timer_deliver_ms(&m.properties, now).filter(|d| *d > now) {
        // A timer message not due yet: park it again for what remains.
        let level = timer_level(deliver - now);
        let props =
            message::set_property(&m.properties, property::DELAY_TIME_LEVEL, &level.to_string());
        let mut batch = match reput_batch(shard, &m, SCHEDULE_TOPIC, level - 1, &props) {
            Ok(b) => b,
            Err(e) => return skip_unencodable(&m, &e),
        };
        batch.tags_codes = vec![now + delay_ms(level)];
        return shard.append_routed(batch).await.map(|_| ());
    }
    let properties = message::remove_properties(&m.properties, &[property::DELAY_TIME_LEVEL]);
    let batch = match reput_batch(shard, &m, &topic, queue_id, &properties) {
        Ok(b) => b,
        Err(e) => return skip_unencodable(&m, &e),
    };
    debug!(%topic, queue_id, "delivering scheduled message");
    shard.append_routed(batch).await.map(|_| ())
}

/// A parked message that can never be re-put (its record would not encode) is dropped
/// with a warning rather than retried forever, which would stop its whole level.
fn skip_unencodable(m: &StoredMessage, e: &BrokerError) -> Result<(), BrokerError> {
    warn!(offset = m.physical_offset, error = %e, "scheduled message that cannot be re-put dropped");
    Ok(())
}

/// A record copying `m` (body, flag, sysflag, born host and time, reconsume times) to
/// `topic`/`queue_id` with `properties`.
///
/// # Errors
/// `IllegalMessage` when the record cannot be encoded: properties grown past 32767 bytes
/// (a re-put adds a property or two to what the client sent), or a topic too long.
pub fn reput_batch(
    shard: &Shard,
    m: &StoredMessage,
    topic: &str,
    queue_id: i32,
    properties: &[u8],
) -> Result<AppendBatch, BrokerError> {
    let meta = MessageMeta {
        queue_id,
        flag: m.flag,
        sys_flag: m.sys_flag,
        born_timestamp: m.born_timestamp,
        born_host: m.born_host,
        store_host: shard.store_host,
        reconsume_times: m.reconsume_times,
        prepared_transaction_offset: m.prepared_transaction_offset,
    };
    let tags = message::property_value(properties, property::TAGS);
    let mut records = BytesMut::with_capacity(message::record_len(
        &meta,
        m.body.len(),
        topic.len(),
        properties.len(),
    ));
    message::encode_record(&mut records, &meta, &m.body, topic, properties)
        .map_err(|e| BrokerError::IllegalMessage(format!("cannot re-put to {topic}: {e}")))?;
    Ok(AppendBatch {
        topic: topic.to_string(),
        queue_id,
        records,
        tags_codes: vec![tags.as_deref().map_or(0, message::tags_code)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_park_in_the_longest_level_that_does_not_pass_their_due_time() {
        assert_eq!(timer_level(500), 1);
        assert_eq!(timer_level(1_000), 1);
        assert_eq!(timer_level(7_000), 2);
        assert_eq!(timer_level(65_000), 5);
        assert_eq!(timer_level(TIMER_DELAY_MS_MAX), 18);
        let p = message::encode_properties([("TIMER_DELAY_MS", "1500")]);
        let parked = timer_properties(&p, 10_000).expect("ok").expect("parked");
        assert_eq!(message::property_value(&parked, "TIMER_DELIVER_MS").as_deref(), Some("11500"));
        assert_eq!(message::property_value(&parked, "DELAY").as_deref(), Some("1"));
        let p = message::encode_properties([("TIMER_DELAY_SEC", "40")]);
        let parked = timer_properties(&p, 0).expect("ok").expect("parked");
        assert_eq!(message::property_value(&parked, "DELAY").as_deref(), Some("4"));
        let due = message::encode_properties([("TIMER_DELIVER_MS", "5")]);
        assert_eq!(timer_properties(&due, 10).expect("ok"), None);
        let far = message::encode_properties([("TIMER_DELAY_SEC", "999999999")]);
        assert!(timer_properties(&far, 0).is_err());
    }

    #[test]
    fn levels_follow_the_reference_table_and_cap_at_the_highest() {
        assert_eq!(delay_ms(1), 1_000);
        assert_eq!(delay_ms(3), 10_000);
        assert_eq!(delay_ms(18), 7_200_000);
        assert_eq!(delay_ms(99), 7_200_000);
        let p = message::encode_properties([("DELAY", "4")]);
        assert_eq!(requested_level(&p), Some(4));
        assert_eq!(requested_level(&message::encode_properties([("DELAY", "0")])), None);
        assert_eq!(requested_level(&message::encode_properties([("DELAY", "-1")])), None);
        assert_eq!(requested_level(&message::encode_properties([("DELAY", "40")])), Some(18));
    }
}
