//! Read requests of the RocketMQ Dashboard and `mqadmin` (issue 16):
//!
//! | code | request | runs on |
//! |---|---|---|
//! | 300 | QUERY_TOPIC_CONSUME_BY_WHO | accepting shard, gathers every shard's offsets |
//! | 317 | GET_BROKER_CONSUME_STATS | shard 0 (groups), gathers owners |
//! | 328 | GET_ALL_PRODUCER_INFO | shard 0 (client registry) |
//! | 351 | GET_TOPIC_CONFIG | accepting shard (its topic table copy) |
//! | 352 | GET_SUBSCRIPTIONGROUP_CONFIG | shard 0 (group table, client registry) |
//!
//! Every body is built from broker tables that are bounded (topics, groups, offsets,
//! clients); a name from the request is echoed only clipped, in a remark.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use ramjet_proto::admin_body::{
    ConsumeStats, ConsumeStatsList, GroupList, ProducerInfo, ProducerTableInfo,
    SubscriptionGroupConfig,
};
use ramjet_proto::body;
use ramjet_proto::codes::response;
use ramjet_proto::text::clip_echo;
use ramjet_proto::Header;

use super::{error, error_response, field_error, success};
use crate::net::connection::Response;
use crate::shard::Shard;
use crate::shard_ops::{gather, OpsQuery, OpsReply};

fn with_body(h: &Header, body: impl Into<bytes::Bytes>) -> Response {
    Response { header: success(h), body: body.into(), parts: Box::default() }
}

/// GET_TOPIC_CONFIG: the topic's config as the reference's `TopicConfigAndQueueMapping`
/// (ramjet has no static topics, so no `mappingDetail`); TOPIC_NOT_EXIST when unknown.
pub(super) fn topic_config(shard: &Shard, h: &Header) -> Response {
    let topic = match h.ext_fields.req_str("topic") {
        Ok(t) => t,
        Err(e) => return field_error(h, &e),
    };
    match shard.topic_table().get(topic) {
        Some(config) => with_body(h, body::to_json(config)),
        None => error(
            h,
            response::TOPIC_NOT_EXIST,
            format!("No topic in this broker. topic: {}", clip_echo(topic)),
        ),
    }
}

/// GET_SUBSCRIPTIONGROUP_CONFIG: a group's settings; SUBSCRIPTION_GROUP_NOT_EXIST when the
/// broker neither has it configured nor sees a consumer of it.
pub(super) fn group_config(shard: &Shard, h: &Header) -> Response {
    let group = match h.ext_fields.req_str("group") {
        Ok(g) => g,
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let configured = zero.subscription_groups.borrow().get(group).cloned();
    let found = configured.or_else(|| {
        let online = !zero.clients.borrow().consumer_channels(group).is_empty();
        online.then(|| SubscriptionGroupConfig {
            group_name: group.to_string(),
            ..Default::default()
        })
    });
    match found {
        Some(config) => with_body(h, body::to_json(&config)),
        None => error(
            h,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("No group in this broker. group: {}", clip_echo(group)),
        ),
    }
}

/// Every committed offset key `topic@group`, split, from every shard.
async fn offset_pairs(shard: &Rc<Shard>) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for reply in gather(shard, OpsQuery::AllOffsets).await {
        if let OpsReply::Offsets(entries) = reply {
            for (key, _, _) in entries {
                if let Some((t, g)) = key.split_once('@') {
                    pairs.insert((t.to_string(), g.to_string()));
                }
            }
        }
    }
    pairs
}

/// QUERY_TOPIC_CONSUME_BY_WHO: groups with an online consumer subscribed to the topic or
/// a committed offset on it. An unknown topic is an empty list, as in the reference.
pub(super) async fn topic_consumed_by(shard: &Rc<Shard>, h: &Header) -> Response {
    let topic = match h.ext_fields.req_str("topic") {
        Ok(t) => t.to_string(),
        Err(e) => return field_error(h, &e),
    };
    let mut list = GroupList::default();
    let subs = shard.subscriptions.borrow().clone();
    for (g, t) in subs.keys() {
        if *t == topic {
            list.group_list.insert(g.clone());
        }
    }
    for (t, g) in offset_pairs(shard).await {
        if t == topic {
            list.group_list.insert(g);
        }
    }
    with_body(h, body::to_json(&list))
}

/// GET_ALL_PRODUCER_INFO: every producer group's clients, from heartbeats.
pub(super) fn all_producers(shard: &Shard, h: &Header) -> Response {
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let mut table = ProducerTableInfo::default();
    for (group, id, ch, seen) in zero.clients.borrow().producers() {
        table.data.entry(group).or_default().push(ProducerInfo {
            client_id: id,
            remote_ip: ch.addr,
            language: ch.language,
            version: ch.version,
            last_update_timestamp: i64::try_from(seen).unwrap_or(i64::MAX),
        });
    }
    with_body(h, body::to_json(&table))
}

/// GET_BROKER_CONSUME_STATS: for every known group (configured or online), the consume
/// stats of each topic it has offsets on; with `isOrder=true` only ordered topics. A
/// topic the group's consumers no longer subscribe to (while they subscribe to others)
/// is left out, as in the reference.
pub(super) async fn broker_consume_stats(shard: &Rc<Shard>, h: &Header) -> Response {
    let is_order = match h.ext_fields.opt_bool("isOrder") {
        Ok(o) => o.unwrap_or(false),
        Err(e) => return field_error(h, &e),
    };
    let zero = match shard.zero() {
        Ok(z) => z,
        Err(e) => return error_response(h, &e),
    };
    let mut groups: BTreeSet<String> = zero
        .subscription_groups
        .borrow()
        .table()
        .subscription_group_table
        .keys()
        .cloned()
        .collect();
    groups.extend(zero.clients.borrow().consumer_groups());
    let mut by_group: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (t, g) in offset_pairs(shard).await {
        if groups.contains(&g) {
            by_group.entry(g).or_default().push(t);
        }
    }
    let subs = shard.subscriptions.borrow().clone();
    let table = shard.topic_table();
    let mut out = ConsumeStatsList {
        broker_addr: format!("{}:{}", shard.config.broker_ip, shard.store_host.port()),
        ..Default::default()
    };
    for (group, topics) in by_group {
        let subscribes_any = subs.has_group(&group);
        let topics: Vec<(String, i32)> = topics
            .into_iter()
            .filter(|t| !subscribes_any || subs.contains(&group, t))
            .filter_map(|t| table.get(&t).map(|c| (t, c.order, c.write_queue_nums)))
            .filter(|(_, order, _)| !is_order || *order)
            .map(|(t, _, q)| (t, q))
            .collect();
        if topics.is_empty() {
            continue;
        }
        let mut per_topic: BTreeMap<String, ConsumeStats> = BTreeMap::new();
        let query = OpsQuery::ConsumeStats { group: group.clone(), topics };
        for reply in gather(shard, query).await {
            match reply {
                OpsReply::ConsumeStats(entries, _) => {
                    for (t, q, w) in entries {
                        let mq = body::MessageQueue {
                            topic: t.clone(),
                            broker_name: shard.config.broker_name.clone(),
                            queue_id: q,
                        };
                        per_topic.entry(t).or_default().offset_table.push((mq, w));
                    }
                }
                OpsReply::Failed(e) => return error(h, response::SYSTEM_ERROR, e),
                _ => {}
            }
        }
        let mut list = Vec::with_capacity(per_topic.len());
        for (_, mut stats) in per_topic {
            stats.offset_table.sort_by(|a, b| a.0.cmp(&b.0));
            out.total_diff = out.total_diff.saturating_add(stats.total_lag());
            list.push(stats);
        }
        out.consume_stats_list.push((group, list));
    }
    with_body(h, out.to_json_fastjson())
}
