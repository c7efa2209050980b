//! Admin and statistics requests, as `mqadmin` sends them:
//!
//! | code | request | runs on |
//! |---|---|---|
//! | 12 | QUERY_MESSAGE (by key or unique key, from the index) | accepting shard, gathers every shard |
//! | 25 / 26 | UPDATE_BROKER_CONFIG / GET_BROKER_CONFIG | shard 0 / accepting shard |
//! | 28 | GET_BROKER_RUNTIME_INFO | accepting shard, gathers every shard |
//! | 43 | GET_ALL_CONSUMER_OFFSET | accepting shard, gathers every shard |
//! | 200 / 201 / 207 | subscription groups: create, list, delete | shard 0 |
//! | 202 | GET_TOPIC_STATS_INFO | accepting shard, gathers owners |
//! | 204 | GET_PRODUCER_CONNECTION_LIST | shard 0 (client registry) |
//! | 208 | GET_CONSUME_STATS | accepting shard, gathers owners |
//! | 222 | INVOKE_BROKER_TO_RESET_OFFSET | shard 0, resets on every owner |
//! | 315 | VIEW_BROKER_STATS_DATA | accepting shard, gathers every shard |
//!
//! Per-queue state is read and changed only on its owner shard, through
//! [`crate::shard_ops::gather`]. Errors map to the codes the reference answers with:
//! TOPIC_NOT_EXIST for an unknown topic, SYSTEM_ERROR (remark names the cause) otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use ramjet_proto::admin_body::{
    parse_properties_body, BrokerStatsData, BrokerStatsItem, ConsumeStats,
    ConsumerOffsetSerializeWrapper, ProducerConnection, ResetOffsetBody, SubscriptionGroupConfig,
    TopicStatsTable,
};
use ramjet_proto::body::{self, Connection, KvTable, MessageQueue};
use ramjet_proto::codes::{request, response};
use ramjet_proto::text::clip_echo;
use ramjet_proto::{Frame, Header};
use tracing::info;

use super::{error, error_response, field_error, success};
use crate::durable_file::write_file_durably;
use crate::metrics::{BrokerFacts, Rates, ShardSnapshot};
use crate::net::connection::Response;
use crate::shard::Shard;
use crate::shard_ops::{gather, OpsQuery, OpsReply};

fn with_body(h: &Header, body: impl Into<Bytes>) -> Response {
    Response { header: success(h), body: body.into(), parts: Box::default() }
}

/// Records one QUERY_MESSAGE returns at most, whatever `maxNum` asks (bounds the body).
pub const QUERY_MESSAGES_MAX: usize = 256;

/// QUERY_MESSAGE: messages by key (a word of KEYS) or, with ext `_UNIQUE_KEY_QUERY=true`,
/// by the client's unique id, from every shard's index. The body is the records back to
/// back, as the reference sends them; none found is QUERY_NOT_FOUND.
pub(super) async fn query_message(shard: &Rc<Shard>, h: &Header) -> Response {
    let ext = &h.ext_fields;
    let parsed = (|| {
        let topic = ext.req_str("topic")?.to_string();
        let key = ext.req_str("key")?.to_string();
        let max: i32 = ext.req_int("maxNum")?;
        let begin: i64 = ext.opt_int("beginTimestamp")?.unwrap_or(0);
        let end: i64 = ext.opt_int("endTimestamp")?.unwrap_or(i64::MAX);
        Ok::<_, ramjet_proto::FieldError>((topic, key, max, begin, end))
    })();
    let (topic, key, max, begin_ms, end_ms) = match parsed {
        Ok(p) => p,
        Err(e) => return field_error(h, &e),
    };
    let unique = ext.get("_UNIQUE_KEY_QUERY") == Some("true");
    let max_count = usize::try_from(max).unwrap_or(0).clamp(1, QUERY_MESSAGES_MAX);
    let query = OpsQuery::QueryMessage { topic, key, unique, max_count, begin_ms, end_ms };
    let mut records = Vec::new();
    for reply in gather(shard, query).await {
        match reply {
            OpsReply::Records(r) => records.extend(r),
            OpsReply::Failed(e) => return error(h, response::SYSTEM_ERROR, e),
            _ => {}
        }
    }
    records.truncate(max_count);
    if records.is_empty() {
        return error(
            h,
            response::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        );
    }
    let mut body = bytes::BytesMut::with_capacity(records.iter().map(|r| r.len()).sum());
    for r in &records {
        body.extend_from_slice(r);
    }
    let mut resp = with_body(h, body.freeze());
    resp.header.ext_fields.insert("indexLastUpdateTimestamp", crate::clock::now_ms().to_string());
    resp.header.ext_fields.insert("indexLastUpdatePhyoffset", "0");
    resp
}

pub(super) fn broker_config(shard: &Shard, h: &Header) -> Response {
    let live = shard.settings.borrow().clone();
    let props = crate::live_settings::properties(&shard.config, &live);
    let mut resp = with_body(h, crate::live_settings::to_properties_text(&props));
    let version = body::to_json(&shard.topic_table().data_version);
    resp.header.ext_fields.insert("version", String::from_utf8_lossy(&version).into_owned());
    resp
}

pub(super) async fn update_broker_config(shard: &Rc<Shard>, frame: &Frame) -> Response {
    let h = &frame.header;
    let props: BTreeMap<String, String> = parse_properties_body(&frame.body).into_iter().collect();
    if props.is_empty() {
        return error(h, response::SYSTEM_ERROR, "no key=value in the request body");
    }
    let current = shard.settings.borrow().clone();
    let next = match current.with(&props) {
        Ok(n) => Arc::new(n),
        Err(reason) => return error(h, response::SYSTEM_ERROR, reason),
    };
    for reply in gather(shard, OpsQuery::Settings(next)).await {
        if let OpsReply::Failed(e) = reply {
            return error(h, response::SYSTEM_ERROR, e);
        }
    }
    info!(?props, "broker config updated");
    Response::new(success(h))
}

fn snapshots(replies: Vec<OpsReply>) -> Vec<ShardSnapshot> {
    replies
        .into_iter()
        .filter_map(|r| match r {
            OpsReply::Metrics(s) => Some(*s),
            _ => None,
        })
        .collect()
}

/// GET_BROKER_RUNTIME_INFO: the reference's keys (as strings) plus ramjet's own.
pub(super) async fn runtime_info(shard: &Rc<Shard>, h: &Header) -> Response {
    let snaps = snapshots(gather(shard, OpsQuery::Metrics).await);
    let facts = crate::metrics::broker_facts(shard).await;
    let table = runtime_table(shard, &facts, &snaps);
    with_body(h, body::to_json(&KvTable { table: table.into_iter().collect() }))
}

fn runtime_table(
    shard: &Shard,
    f: &BrokerFacts,
    snaps: &[ShardSnapshot],
) -> BTreeMap<String, String> {
    let mut rates = Rates::default();
    let (mut put, mut put_bytes, mut get) = (0u64, 0u64, 0u64);
    let (mut end, mut unflushed, mut poisoned, mut conns) = (0u64, 0i64, 0, 0);
    let mut send = crate::metrics::HistogramSnapshot::default();
    for s in snaps {
        rates.merge(&s.rates);
        put += s.put_total;
        put_bytes += s.put_bytes_total;
        get += s.get_total;
        end += s.logs.iter().map(|l| l.end_position).sum::<u64>();
        unflushed += s.logs.iter().map(|l| l.unflushed_bytes).sum::<i64>();
        poisoned += s.logs.iter().filter(|l| l.poisoned).count();
        conns += s.connections;
        send.merge(&s.send_latency);
    }
    let tps = |r: [f64; 3]| format!("{:.2} {:.2} {:.2}", r[0], r[1], r[2]);
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let ratio = if f.disk_total_bytes == 0 {
        0.0
    } else {
        f.disk_total_bytes.saturating_sub(f.disk_free_bytes) as f64 / f.disk_total_bytes as f64
    };
    let secs = f.uptime_seconds as u64;
    let boot = crate::clock::now_ms().saturating_sub(secs * 1000);
    let avg = put_bytes.checked_div(put).unwrap_or(0);
    let pairs: Vec<(&str, String)> = vec![
        ("brokerVersionDesc", format!("ramjet {}", env!("CARGO_PKG_VERSION"))),
        ("putTps", tps(rates.put)),
        ("getTransferedTps", tps(rates.get)),
        ("getTotalTps", tps(rates.get)),
        ("getFoundTps", tps(rates.get)),
        ("getMissTps", "0.00 0.00 0.00".into()),
        ("msgPutTotalTodayNow", put.to_string()),
        ("msgGetTotalTodayNow", get.to_string()),
        ("msgPutTotalTodayMorning", "0".into()),
        ("msgGetTotalTodayMorning", "0".into()),
        ("msgPutTotalYesterdayMorning", "0".into()),
        ("msgGetTotalYesterdayMorning", "0".into()),
        ("putMessageTimesTotal", put.to_string()),
        ("putMessageSizeTotal", put_bytes.to_string()),
        ("putMessageAverageSize", avg.to_string()),
        ("commitLogDiskRatio", format!("{ratio:.4}")),
        (
            "commitLogDirCapacity",
            format!(
                "Total : {:.1} GiB, Free : {:.1} GiB.",
                gib(f.disk_total_bytes),
                gib(f.disk_free_bytes)
            ),
        ),
        ("commitLogMinOffset", "0".into()),
        ("commitLogMaxOffset", end.to_string()),
        ("remainHowManyDataToFlush", unflushed.to_string()),
        ("dispatchBehindBytes", "0".into()),
        ("pageCacheLockTimeMills", "0".into()),
        (
            "runtime",
            format!(
                "[ {} days, {} hours, {} minutes, {} seconds ]",
                secs / 86400,
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            ),
        ),
        ("bootTimestamp", boot.to_string()),
        ("brokerActive", "true".into()),
        ("ramjetShards", shard.shard_count.to_string()),
        ("ramjetCommitLogs", shard.log_count.to_string()),
        (
            "ramjetShardAddrs",
            shard.config.shard_addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
        ),
        ("ramjetSegments", f.segments.to_string()),
        ("ramjetCommitLogBytes", f.commitlog_bytes.to_string()),
        ("ramjetPoisonedLogs", poisoned.to_string()),
        ("ramjetConnections", conns.to_string()),
        ("ramjetSendLatencyP99Ms", format!("{:.3}", send.quantile(0.99) * 1000.0)),
        (
            "ramjetDiskMaxUsedSpaceRatio",
            shard.settings.borrow().disk_max_used_space_ratio.to_string(),
        ),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(super) async fn all_consumer_offsets(shard: &Rc<Shard>, h: &Header) -> Response {
    let mut wrapper = ConsumerOffsetSerializeWrapper::default();
    for reply in gather(shard, OpsQuery::AllOffsets).await {
        if let OpsReply::Offsets(entries) = reply {
            for (key, q, o) in entries {
                wrapper.offset_table.entry(key).or_default().insert(q, o);
            }
        }
    }
    with_body(h, body::to_json(&wrapper))
}

fn mq(shard: &Shard, topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: topic.to_string(),
        broker_name: shard.config.broker_name.clone(),
        queue_id,
    }
}

fn topic_not_exist(h: &Header, topic: &str) -> Response {
    error(h, response::TOPIC_NOT_EXIST, format!("topic[{}] not exist", clip_echo(topic)))
}

pub(super) async fn topic_stats(shard: &Rc<Shard>, h: &Header) -> Response {
    let topic = match h.ext_fields.req_str("topic") {
        Ok(t) => t.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let Some(queues) = shard.topic_table().get(&topic).map(|c| c.write_queue_nums) else {
        return topic_not_exist(h, &topic);
    };
    let mut table = TopicStatsTable::default();
    for reply in gather(shard, OpsQuery::TopicStats { topic: topic.clone(), queues }).await {
        match reply {
            OpsReply::TopicStats(entries) => table
                .offset_table
                .extend(entries.into_iter().map(|(q, o)| (mq(shard, &topic, q), o))),
            OpsReply::Failed(e) => return error(h, response::SYSTEM_ERROR, e),
            _ => {}
        }
    }
    table.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
    with_body(h, table.to_json_fastjson())
}

/// The topics a group consumes: the header's, else those it has offsets for or subscribes
/// to (its `%RETRY%` topic included).
async fn group_topics(shard: &Rc<Shard>, group: &str, topic: Option<&str>) -> BTreeSet<String> {
    if let Some(t) = topic.filter(|t| !t.is_empty()) {
        return std::iter::once(t.to_string()).collect();
    }
    let mut topics = BTreeSet::new();
    for reply in gather(shard, OpsQuery::AllOffsets).await {
        if let OpsReply::Offsets(entries) = reply {
            for (key, _, _) in entries {
                if let Some((t, g)) = key.split_once('@') {
                    if g == group {
                        topics.insert(t.to_string());
                    }
                }
            }
        }
    }
    let subs = shard.subscriptions.borrow().clone();
    for t in subs.topics_of(group) {
        topics.insert(t.clone());
    }
    topics
}

pub(super) async fn consume_stats(shard: &Rc<Shard>, h: &Header) -> Response {
    let group = match h.ext_fields.req_str("consumerGroup") {
        Ok(g) => g.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let topic = h.ext_fields.opt_str("topic").map(str::to_string);
    let table = shard.topic_table();
    let topics: Vec<(String, i32)> = group_topics(shard, &group, topic.as_deref())
        .await
        .into_iter()
        .filter_map(|t| table.get(&t).map(|c| (t, c.read_queue_nums)))
        .collect();
    if let Some(t) = topic.filter(|t| !t.is_empty() && topics.is_empty()) {
        return topic_not_exist(h, &t);
    }
    let mut stats = ConsumeStats::default();
    for reply in gather(shard, OpsQuery::ConsumeStats { group, topics }).await {
        match reply {
            OpsReply::ConsumeStats(entries, tps) => {
                stats.consume_tps += tps;
                stats
                    .offset_table
                    .extend(entries.into_iter().map(|(t, q, w)| (mq(shard, &t, q), w)));
            }
            OpsReply::Failed(e) => return error(h, response::SYSTEM_ERROR, e),
            _ => {}
        }
    }
    stats.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
    with_body(h, stats.to_json_fastjson())
}

pub(super) fn producer_connections(shard: &Shard, h: &Header) -> Response {
    let group = match h.ext_fields.req_str("producerGroup") {
        Ok(g) => g.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let members = zero.clients.borrow().producer_channels(&group);
    if members.is_empty() {
        let group = clip_echo(&group);
        return error(h, response::SYSTEM_ERROR, format!("the producer group[{group}] not exist"));
    }
    let body = ProducerConnection {
        connection_set: members
            .into_iter()
            .map(|(id, ch)| Connection {
                client_id: id,
                client_addr: ch.addr,
                language: ch.language,
                version: ch.version,
            })
            .collect(),
    };
    with_body(h, body::to_json(&body))
}

async fn persist_groups(shard: &Shard, json: Vec<u8>) -> Result<(), String> {
    let zero = shard.zero().map_err(|e| e.to_string())?;
    if let Some(feed) = &shard.replica.feed {
        // Slaves receive the change in-band (replication/feed.rs).
        feed.publish_groups(zero.subscription_groups.borrow().table());
    }
    let path = zero.subscription_groups.borrow().path().to_path_buf();
    let _permit = shard.persist_lock.acquire_permit(1).await.map_err(|e| e.to_string())?;
    // Always write the newest table, so concurrent changes never leave an older one.
    let newest = body::to_json(zero.subscription_groups.borrow().table());
    let json = if newest == json { json } else { newest };
    write_file_durably(path.clone(), json)
        .await
        .map_err(|e| format!("persisting {}: {e}", path.display()))
}

pub(super) async fn upsert_group(shard: &Rc<Shard>, frame: &Frame) -> Response {
    let h = &frame.header;
    let config: SubscriptionGroupConfig = match body::from_json(&frame.body) {
        Ok(c) => c,
        Err(e) => {
            return error(h, response::SYSTEM_ERROR, format!("bad subscription group body: {e}"))
        }
    };
    if config.group_name.is_empty()
        || crate::topic::validate_topic_name(&config.group_name).is_err()
    {
        return error(
            h,
            response::SYSTEM_ERROR,
            format!("invalid group name \"{}\"", clip_echo(&config.group_name)),
        );
    }
    let name = config.group_name.clone();
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let change = zero.subscription_groups.borrow_mut().upsert(config);
    let change = match change {
        Ok(c) => c,
        Err(e) => return error_response(h, &e),
    };
    if let Some(json) = change {
        if let Err(e) = persist_groups(shard, json).await {
            return error(h, response::SYSTEM_ERROR, e);
        }
        info!(group = %name, "subscription group created or updated");
    }
    Response::new(success(h))
}

pub(super) async fn delete_group(shard: &Rc<Shard>, h: &Header) -> Response {
    let group = match h.ext_fields.req_str("groupName") {
        Ok(g) => g.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let change = zero.subscription_groups.borrow_mut().remove(&group);
    if let Some(json) = change {
        if let Err(e) = persist_groups(shard, json).await {
            return error(h, response::SYSTEM_ERROR, e);
        }
        info!(group = %group, "subscription group deleted");
    }
    Response::new(success(h))
}

/// Every configured group, plus groups with live consumers (with default settings), as
/// the reference auto-creates those.
pub(super) fn all_groups(shard: &Shard, h: &Header) -> Response {
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let mut wrapper = zero.subscription_groups.borrow().table().clone();
    for g in zero.clients.borrow().consumer_groups() {
        wrapper
            .subscription_group_table
            .entry(g.clone())
            .or_insert_with(|| SubscriptionGroupConfig { group_name: g, ..Default::default() });
    }
    with_body(h, body::to_json(&wrapper))
}

/// INVOKE_BROKER_TO_RESET_OFFSET: moves the group's offsets of `topic` to the first message
/// stored at or after `timestamp` on every queue (on its owner), then tells the group's
/// online consumers (RESET_CONSUMER_CLIENT_OFFSET) so they do not commit their old
/// positions over it. Unlike the reference, an offline group is reset too.
pub(super) async fn reset_offset(shard: &Rc<Shard>, h: &Header) -> Response {
    let ext = &h.ext_fields;
    let parsed = (|| {
        let topic = ext.req_str("topic")?.to_string();
        let group = ext.req_str("group")?.to_string();
        let timestamp: i64 = ext.req_int("timestamp")?;
        let force = ext.opt_bool("isForce")?.unwrap_or(true);
        Ok::<_, ramjet_proto::FieldError>((topic, group, timestamp, force))
    })();
    let (topic, group, timestamp, force) = match parsed {
        Ok(p) => p,
        Err(e) => return field_error(h, &e),
    };
    if let Err(e) = crate::reserved::check_offset_group(&group) {
        return error_response(h, &e);
    }
    let Some(queues) = shard.topic_table().get(&topic).map(|c| c.read_queue_nums) else {
        return topic_not_exist(h, &topic);
    };
    let query = OpsQuery::ResetOffset {
        group: group.clone(),
        topic: topic.clone(),
        queues,
        timestamp,
        force,
    };
    let mut body = ResetOffsetBody::default();
    for reply in gather(shard, query).await {
        match reply {
            OpsReply::Reset(entries) => body
                .offset_table
                .extend(entries.into_iter().map(|(q, o)| (mq(shard, &topic, q), o))),
            OpsReply::Failed(e) => return error(h, response::SYSTEM_ERROR, e),
            _ => {}
        }
    }
    body.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
    let json = Bytes::from(body.to_json_fastjson());
    notify_reset(shard, &group, &topic, timestamp, json.clone()).await;
    info!(%group, %topic, timestamp, "consumer offsets reset");
    with_body(h, json)
}

async fn notify_reset(shard: &Rc<Shard>, group: &str, topic: &str, timestamp: i64, json: Bytes) {
    let Some(zero) = shard.zero.as_ref() else { return };
    let members = zero.clients.borrow().consumer_channels(group);
    for (_, ch) in members {
        let Ok(peer) = ch.addr.parse::<SocketAddr>() else { continue };
        let mut header =
            Header::request(request::RESET_CONSUMER_CLIENT_OFFSET, 0, ch.serialize_type);
        header.ext_fields.insert("topic", topic);
        header.ext_fields.insert("group", group);
        header.ext_fields.insert("timestamp", timestamp.to_string());
        header.ext_fields.insert("isForce", "true");
        let query = OpsQuery::Push { peer, header, body: json.clone() };
        if ch.shard == shard.id {
            crate::shard_ops::answer(shard, query).await;
        } else if let Some(p) = shard.peers.get(ch.shard) {
            let (tx, _rx) = flume::bounded(1);
            let _ = p.send_async(crate::shard::ShardMsg::Ops { query, reply: tx }).await;
        }
    }
}

/// VIEW_BROKER_STATS_DATA for TOPIC_PUT_NUMS/SIZE (key topic), GROUP_GET_NUMS/SIZE (key
/// `topic@group`) and BROKER_PUT_NUMS/BROKER_GET_NUMS. Minute figures come from the rate
/// samples; hour and day figures are totals since start (ramjet keeps no longer history).
pub(super) async fn broker_stats(shard: &Rc<Shard>, h: &Header) -> Response {
    let (name, key) = match (h.ext_fields.req_str("statsName"), h.ext_fields.req_str("statsKey")) {
        (Ok(n), Ok(k)) => (n.to_string(), k.to_string()),
        (Err(e), _) | (_, Err(e)) => return field_error(h, &e),
    };
    let (sum, bytes, tps) = match name.as_str() {
        "TOPIC_PUT_NUMS" | "TOPIC_PUT_SIZE" | "GROUP_GET_NUMS" | "GROUP_GET_SIZE" => {
            let put = name.starts_with("TOPIC");
            let mut t = (0u64, 0u64, 0f64);
            for r in gather(shard, OpsQuery::KeyStats { put, key: key.clone() }).await {
                if let OpsReply::KeyStats(m, b, rate) = r {
                    t = (t.0 + m, t.1 + b, t.2 + rate);
                }
            }
            if t.0 == 0 {
                return error(
                    h,
                    response::SYSTEM_ERROR,
                    format!("The stats <{}> <{}> not exist", clip_echo(&name), clip_echo(&key)),
                );
            }
            t
        }
        "BROKER_PUT_NUMS" | "BROKER_GET_NUMS" => {
            let put = name == "BROKER_PUT_NUMS";
            let snaps = snapshots(gather(shard, OpsQuery::Metrics).await);
            let mut rates = Rates::default();
            let mut total = 0;
            for s in &snaps {
                rates.merge(&s.rates);
                total += if put { s.put_total } else { s.get_total };
            }
            (total, 0, if put { rates.put[1] } else { rates.get[1] })
        }
        _ => {
            return error(
                h,
                response::SYSTEM_ERROR,
                format!("The stats <{}> <{}> not exist", clip_echo(&name), clip_echo(&key)),
            )
        }
    };
    let value = if name.ends_with("_SIZE") { bytes } else { sum };
    let scale = if sum == 0 { 1.0 } else { value as f64 / sum as f64 };
    let uptime = shard.metrics.started.elapsed().as_secs_f64().max(1.0);
    let minute = BrokerStatsItem { sum: (tps * scale * 60.0) as i64, tps: tps * scale, avgpt: 0.0 };
    let total = BrokerStatsItem { sum: value as i64, tps: value as f64 / uptime, avgpt: 0.0 };
    let data = BrokerStatsData { stats_minute: minute, stats_hour: total, stats_day: total };
    with_body(h, body::to_json(&data))
}
