//! The sub-commands: each does its requests through [`Ops`] and returns an [`Output`], a
//! text form (aligned tables) and a JSON form (`--json`).

use std::collections::BTreeMap;

use bytes::Bytes;
use ramjet_proto::admin_body::{
    parse_properties_body, ConsumeStats, ConsumeStatsList, ConsumerOffsetSerializeWrapper,
    ProducerConnection, ProducerTableInfo, ResetOffsetBody, SubscriptionGroupConfig,
    SubscriptionGroupWrapper, TopicStatsTable,
};
use ramjet_proto::body::{to_json, ConsumerConnection, KvTable, TopicList};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{CommandHeader, CreateTopicRequestHeader, PullMessageRequestHeader};
use ramjet_proto::message::{decode_offset_msg_id, decode_records, offset_msg_id, StoredMessage};
use serde_json::{json, Value};

use crate::error::AdminError;
use crate::ops::{check, parse, Ops};
use crate::table::Table;

/// What a command prints.
#[derive(Debug, Clone)]
pub struct Output {
    /// The default form.
    pub text: String,
    /// The `--json` form.
    pub json: Value,
}

impl Output {
    fn new(text: impl Into<String>, json: Value) -> Output {
        Output { text: text.into(), json }
    }
}

type Result<T> = std::result::Result<T, AdminError>;

/// Where a command acts: `-b` broker address or `-c` cluster.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `-b`: one broker address.
    pub broker: Option<String>,
    /// `-c`: a cluster name.
    pub cluster: Option<String>,
}

/// `updateTopic`.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Topic.
    pub topic: String,
    /// Read queues.
    pub read_queue_nums: i32,
    /// Write queues.
    pub write_queue_nums: i32,
    /// PermName bits.
    pub perm: i32,
    /// Ordered topic.
    pub order: bool,
}

pub async fn update_topic(ops: &Ops, t: &Target, spec: &TopicSpec) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    let mut table = Table::new(&["Broker", "Addr", "Topic", "Read", "Write", "Perm"]);
    let mut done = Vec::new();
    for (name, addr) in &masters {
        let mut h = ops.header(request::UPDATE_AND_CREATE_TOPIC);
        CreateTopicRequestHeader {
            topic: spec.topic.clone(),
            default_topic: "TBW102".into(),
            read_queue_nums: spec.read_queue_nums,
            write_queue_nums: spec.write_queue_nums,
            perm: spec.perm,
            topic_filter_type: "SINGLE_TAG".into(),
            topic_sys_flag: Some(0),
            order: spec.order,
        }
        .encode(&mut h.ext_fields);
        ops.broker(addr, h, &[]).await?;
        table.row(vec![
            name.clone(),
            addr.clone(),
            spec.topic.clone(),
            spec.read_queue_nums.to_string(),
            spec.write_queue_nums.to_string(),
            spec.perm.to_string(),
        ]);
        done.push(json!({"brokerName": name, "brokerAddr": addr}));
    }
    let text = format!("create topic to {} broker(s) success.\n{}", masters.len(), table.render());
    Ok(Output::new(text, json!({"topic": spec.topic, "brokers": done})))
}

pub async fn delete_topic(ops: &Ops, t: &Target, topic: &str) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    for (_, addr) in &masters {
        let mut h = ops.header(request::DELETE_TOPIC_IN_BROKER);
        h.ext_fields.insert("topic", topic);
        ops.broker(addr, h, &[]).await?;
    }
    let mut h = ops.header(request::DELETE_TOPIC_IN_NAMESRV);
    h.ext_fields.insert("topic", topic);
    if let Some(c) = &t.cluster {
        h.ext_fields.insert("clusterName", c.as_str());
    }
    ops.namesrv(h).await?;
    let addrs: Vec<&String> = masters.iter().map(|(_, a)| a).collect();
    let text = format!(
        "delete topic [{topic}] from {} broker(s) and the NameServer success.\n",
        addrs.len()
    );
    Ok(Output::new(text, json!({"topic": topic, "brokers": addrs})))
}

pub async fn topic_list(ops: &Ops, cluster: Option<&str>) -> Result<Output> {
    let h = match cluster {
        Some(c) => {
            let mut h = ops.header(request::GET_TOPICS_BY_CLUSTER);
            h.ext_fields.insert("cluster", c);
            h
        }
        None => ops.header(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    };
    let frame = ops.namesrv(h).await?;
    let mut list: TopicList = parse("NameServer", &frame.body)?;
    list.topic_list.sort();
    let text: String = list.topic_list.iter().map(|t| format!("{t}\n")).collect();
    Ok(Output::new(text, json!({"topics": list.topic_list})))
}

pub async fn topic_route(ops: &Ops, topic: &str) -> Result<Output> {
    let mut route = ops.route(topic).await?;
    route.broker_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    route.queue_datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
    let mut brokers = Table::new(&["Broker", "Cluster", "BrokerId", "Addr"]);
    for b in &route.broker_datas {
        for (id, addr) in &b.broker_addrs {
            brokers.row(vec![
                b.broker_name.clone(),
                b.cluster.clone(),
                id.to_string(),
                addr.clone(),
            ]);
        }
    }
    let mut queues = Table::new(&["Broker", "ReadQueues", "WriteQueues", "Perm", "SysFlag"]);
    for q in &route.queue_datas {
        queues.row(vec![
            q.broker_name.clone(),
            q.read_queue_nums.to_string(),
            q.write_queue_nums.to_string(),
            q.perm.to_string(),
            q.topic_sys_flag.to_string(),
        ]);
    }
    let text = format!("{}\n{}", brokers.render(), queues.render());
    let json: Value = serde_json::from_slice(&to_json(&route)).unwrap_or(Value::Null);
    Ok(Output::new(text, json))
}

pub async fn topic_status(ops: &Ops, topic: &str) -> Result<Output> {
    let mut rows = Vec::new();
    for (_, addr) in ops.topic_masters(topic).await? {
        let mut h = ops.header(request::GET_TOPIC_STATS_INFO);
        h.ext_fields.insert("topic", topic);
        let stats: TopicStatsTable = ops.broker_json(&addr, h).await?;
        rows.extend(stats.offset_table.0);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut table = Table::new(&["Broker", "QID", "MinOffset", "MaxOffset", "LastUpdated"]);
    let mut json_rows = Vec::new();
    for (mq, o) in &rows {
        table.row(vec![
            mq.broker_name.clone(),
            mq.queue_id.to_string(),
            o.min_offset.to_string(),
            o.max_offset.to_string(),
            format_ms(o.last_update_timestamp),
        ]);
        json_rows.push(json!({
            "brokerName": mq.broker_name, "queueId": mq.queue_id, "minOffset": o.min_offset,
            "maxOffset": o.max_offset, "lastUpdateTimestamp": o.last_update_timestamp,
        }));
    }
    Ok(Output::new(table.render(), json!({"topic": topic, "queues": json_rows})))
}

async fn runtime_info(ops: &Ops, addr: &str) -> Result<BTreeMap<String, String>> {
    let t: KvTable = ops.broker_json(addr, ops.header(request::GET_BROKER_RUNTIME_INFO)).await?;
    Ok(t.table.into_iter().collect())
}

pub async fn cluster_list(ops: &Ops) -> Result<Output> {
    let info = ops.cluster_info().await?;
    let mut table = Table::new(&[
        "Cluster",
        "Broker",
        "BID",
        "Addr",
        "Version",
        "InTPS",
        "OutTPS",
        "DiskRatio",
        "Status",
    ]);
    let mut rows_json = Vec::new();
    let mut clusters: Vec<(&String, &Vec<String>)> = info.cluster_addr_table.iter().collect();
    clusters.sort();
    for (cluster, names) in clusters {
        let mut names = names.clone();
        names.sort();
        for name in names {
            let Some(b) = info.broker_addr_table.get(&name) else { continue };
            for (id, addr) in &b.broker_addrs {
                let (kv, status) = match runtime_info(ops, addr).await {
                    Ok(kv) => (kv, "ok".to_string()),
                    Err(e) => (BTreeMap::new(), format!("error: {e}")),
                };
                let first = |k: &str| {
                    kv.get(k).and_then(|v| v.split_whitespace().next()).unwrap_or("-").to_string()
                };
                table.row(vec![
                    cluster.clone(),
                    name.clone(),
                    id.to_string(),
                    addr.clone(),
                    kv.get("brokerVersionDesc").cloned().unwrap_or_else(|| "-".into()),
                    first("putTps"),
                    first("getTransferedTps"),
                    first("commitLogDiskRatio"),
                    status.clone(),
                ]);
                rows_json.push(json!({
                    "cluster": cluster, "brokerName": name, "brokerId": id, "addr": addr,
                    "status": status, "runtime": kv,
                }));
            }
        }
    }
    Ok(Output::new(table.render(), json!({"brokers": rows_json})))
}

fn kv_text(addr: &str, kv: &BTreeMap<String, String>, sep: &str, many: bool) -> String {
    let width = kv.keys().map(String::len).max().unwrap_or(0);
    let mut out = String::new();
    if many {
        out.push_str(&format!("============{addr}============\n"));
    }
    for (k, v) in kv {
        out.push_str(&format!("{k:<width$} {sep} {v}\n"));
    }
    out
}

pub async fn broker_status(ops: &Ops, t: &Target) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    let mut text = String::new();
    let mut js = serde_json::Map::new();
    for (_, addr) in &masters {
        let kv = runtime_info(ops, addr).await?;
        text.push_str(&kv_text(addr, &kv, ":", masters.len() > 1));
        js.insert(addr.clone(), json!(kv));
    }
    Ok(Output::new(text, Value::Object(js)))
}

pub async fn get_broker_config(ops: &Ops, t: &Target) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    let mut text = String::new();
    let mut js = serde_json::Map::new();
    for (_, addr) in &masters {
        let frame = ops.broker(addr, ops.header(request::GET_BROKER_CONFIG), &[]).await?;
        let kv: BTreeMap<String, String> = parse_properties_body(&frame.body).into_iter().collect();
        text.push_str(&kv_text(addr, &kv, "=", masters.len() > 1));
        js.insert(addr.clone(), json!(kv));
    }
    Ok(Output::new(text, Value::Object(js)))
}

pub async fn update_broker_config(ops: &Ops, t: &Target, key: &str, value: &str) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    let body = format!("{key}={value}\n");
    for (_, addr) in &masters {
        ops.broker(addr, ops.header(request::UPDATE_BROKER_CONFIG), body.as_bytes()).await?;
    }
    let addrs: Vec<&String> = masters.iter().map(|(_, a)| a).collect();
    let text =
        format!("update broker config {key}={value} on {} broker(s) success.\n", addrs.len());
    Ok(Output::new(text, json!({"key": key, "value": value, "brokers": addrs})))
}

/// `producer -b`: every producer group's clients on one broker, one line each as mqadmin
/// prints them.
pub async fn producers(ops: &Ops, addr: &str) -> Result<Output> {
    let frame = ops.broker(addr, ops.header(request::GET_ALL_PRODUCER_INFO), &[]).await?;
    let table: ProducerTableInfo = parse(addr, &frame.body)?;
    let mut text = String::new();
    for (group, list) in &table.data {
        if list.is_empty() {
            text.push_str(&format!("producer group ({group}) instances are empty\n"));
        }
        for p in list {
            text.push_str(&format!(
                "producer group ({group}) instance : clientId={},remoteIP={}, language={}, \
                 version={}, lastUpdateTimestamp={}\n",
                p.client_id, p.remote_ip, p.language, p.version, p.last_update_timestamp
            ));
        }
    }
    let js = serde_json::from_slice(&to_json(&table)).unwrap_or(Value::Null);
    Ok(Output::new(text, js))
}

/// `brokerConsumeStats -b`: every known group's per-queue progress on one broker, rows
/// lagging at least `level` (mqadmin prints only queues ever consumed; so does the text
/// form, the JSON has them all).
pub async fn broker_consume_stats(
    ops: &Ops,
    addr: &str,
    level: i64,
    order: bool,
) -> Result<Output> {
    let mut header = ops.header(request::GET_BROKER_CONSUME_STATS);
    header.ext_fields.insert("isOrder", order.to_string());
    let frame = ops.broker(addr, header, &[]).await?;
    let list: ConsumeStatsList = parse(addr, &frame.body)?;
    let mut table = Table::new(&[
        "#Topic",
        "#Group",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#LastTime",
    ]);
    let mut rows = Vec::new();
    for (group, stats) in &list.consume_stats_list {
        for s in stats {
            for (mq, w) in s.offset_table.iter() {
                let diff = w.broker_offset - w.consumer_offset;
                if diff < level {
                    continue;
                }
                rows.push(json!({
                    "topic": mq.topic, "group": group, "brokerName": mq.broker_name,
                    "queueId": mq.queue_id, "brokerOffset": w.broker_offset,
                    "consumerOffset": w.consumer_offset, "diff": diff,
                    "lastTimestamp": w.last_timestamp,
                }));
                if w.last_timestamp > 0 {
                    table.row(vec![
                        mq.topic.clone(),
                        group.clone(),
                        mq.broker_name.clone(),
                        mq.queue_id.to_string(),
                        w.broker_offset.to_string(),
                        w.consumer_offset.to_string(),
                        diff.to_string(),
                        format_ms(w.last_timestamp),
                    ]);
                }
            }
        }
    }
    let mut text = table.render();
    text.push_str(&format!("\nDiff Total: {}\n", list.total_diff));
    let js = json!({"brokerAddr": list.broker_addr, "totalDiff": list.total_diff, "queues": rows});
    Ok(Output::new(text, js))
}

async fn consume_stats(
    ops: &Ops,
    addr: &str,
    group: &str,
    topic: Option<&str>,
) -> Result<ConsumeStats> {
    let mut h = ops.header(request::GET_CONSUME_STATS);
    h.ext_fields.insert("consumerGroup", group);
    if let Some(t) = topic {
        h.ext_fields.insert("topic", t);
    }
    ops.broker_json(addr, h).await
}

pub async fn consumer_progress(
    ops: &Ops,
    group: Option<&str>,
    topic: Option<&str>,
) -> Result<Output> {
    let Some(group) = group else { return groups_progress(ops).await };
    let brokers = match topic {
        Some(t) => ops.topic_masters(t).await?,
        None => ops.masters(None, None).await?,
    };
    let mut rows = Vec::new();
    let mut tps = 0.0;
    for (_, addr) in &brokers {
        let stats = consume_stats(ops, addr, group, topic).await?;
        tps += stats.consume_tps;
        rows.extend(stats.offset_table.0);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut table = Table::new(&[
        "Topic",
        "Broker",
        "QID",
        "BrokerOffset",
        "ConsumerOffset",
        "Lag",
        "LastTime",
    ]);
    let mut total = 0i64;
    let mut json_rows = Vec::new();
    for (mq, w) in &rows {
        let lag = (w.broker_offset - w.consumer_offset).max(0);
        total += lag;
        table.row(vec![
            mq.topic.clone(),
            mq.broker_name.clone(),
            mq.queue_id.to_string(),
            w.broker_offset.to_string(),
            w.consumer_offset.to_string(),
            lag.to_string(),
            format_ms(w.last_timestamp),
        ]);
        json_rows.push(json!({
            "topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id,
            "brokerOffset": w.broker_offset, "consumerOffset": w.consumer_offset, "lag": lag,
            "lastTimestamp": w.last_timestamp,
        }));
    }
    let text = format!("{}\nConsume TPS: {tps:.2}\nDiff Total: {total}\n", table.render());
    let js = json!({"group": group, "queues": json_rows, "consumeTps": tps, "totalLag": total});
    Ok(Output::new(text, js))
}

/// `consumerProgress` without `-g`: every group's total lag.
async fn groups_progress(ops: &Ops) -> Result<Output> {
    let masters = ops.masters(None, None).await?;
    let mut groups: BTreeMap<String, (f64, i64)> = BTreeMap::new();
    for (_, addr) in &masters {
        let w: SubscriptionGroupWrapper =
            ops.broker_json(addr, ops.header(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG)).await?;
        for g in w.subscription_group_table.keys() {
            groups.entry(g.clone()).or_default();
        }
        // Groups with committed offsets, configured or not.
        let offsets: ConsumerOffsetSerializeWrapper =
            ops.broker_json(addr, ops.header(request::GET_ALL_CONSUMER_OFFSET)).await?;
        for key in offsets.offset_table.keys() {
            if let Some((_, g)) = key.split_once('@') {
                groups.entry(g.to_string()).or_default();
            }
        }
    }
    for (g, (tps, lag)) in groups.iter_mut() {
        for (_, addr) in &masters {
            if let Ok(s) = consume_stats(ops, addr, g, None).await {
                *tps += s.consume_tps;
                *lag += s.total_lag();
            }
        }
    }
    let mut table = Table::new(&["Group", "TPS", "DiffTotal"]);
    let mut js = Vec::new();
    for (g, (tps, lag)) in &groups {
        table.row(vec![g.clone(), format!("{tps:.2}"), lag.to_string()]);
        js.push(json!({"group": g, "consumeTps": tps, "totalLag": lag}));
    }
    Ok(Output::new(table.render(), json!({"groups": js})))
}

pub async fn consumer_connection(ops: &Ops, group: &str) -> Result<Output> {
    let mut last_error = None;
    for (_, addr) in ops.masters(None, None).await? {
        let mut h = ops.header(request::GET_CONSUMER_CONNECTION_LIST);
        h.ext_fields.insert("consumerGroup", group);
        let frame = ops.broker_raw(&addr, h, &[]).await?;
        if frame.header.code != response::SUCCESS {
            last_error = Some(check("broker", &addr, request::GET_CONSUMER_CONNECTION_LIST, frame));
            continue;
        }
        let cc: ConsumerConnection = parse(&addr, &frame.body)?;
        return Ok(consumer_connection_output(group, &cc));
    }
    match last_error {
        Some(Err(e)) => Err(e),
        _ => Err(AdminError::NotFound(format!("the consumer group {group} is not online"))),
    }
}

fn consumer_connection_output(group: &str, cc: &ConsumerConnection) -> Output {
    let mut conns = Table::new(&["ClientId", "ClientAddr", "Language", "Version"]);
    let mut set = cc.connection_set.clone();
    set.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    for c in &set {
        conns.row(vec![
            c.client_id.clone(),
            c.client_addr.clone(),
            c.language.clone(),
            c.version.to_string(),
        ]);
    }
    let mut subs = Table::new(&["Topic", "SubExpression"]);
    let mut topics: Vec<_> = cc.subscription_table.iter().collect();
    topics.sort_by(|a, b| a.0.cmp(b.0));
    for (t, s) in &topics {
        subs.row(vec![t.to_string(), s.sub_string.clone()]);
    }
    let text = format!(
        "{}\n{}\nConsumeType: {}\nMessageModel: {}\nConsumeFromWhere: {}\n",
        conns.render(),
        subs.render(),
        cc.consume_type.name(),
        cc.message_model.name(),
        cc.consume_from_where.name()
    );
    let mut js: Value = serde_json::from_slice(&to_json(cc)).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut js {
        m.insert("group".into(), json!(group));
    }
    Output::new(text, js)
}

pub async fn producer_connection(ops: &Ops, group: &str, topic: Option<&str>) -> Result<Output> {
    let brokers = match topic {
        Some(t) => ops.topic_masters(t).await?,
        None => ops.masters(None, None).await?,
    };
    let mut conns = Vec::new();
    let mut last_error = None;
    for (_, addr) in &brokers {
        let mut h = ops.header(request::GET_PRODUCER_CONNECTION_LIST);
        h.ext_fields.insert("producerGroup", group);
        match ops.broker(addr, h, &[]).await {
            Ok(frame) => {
                let pc: ProducerConnection = parse(addr, &frame.body)?;
                conns.extend(pc.connection_set);
            }
            Err(e @ AdminError::Refused { .. }) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    if conns.is_empty() {
        return Err(last_error.unwrap_or_else(|| {
            AdminError::NotFound(format!("the producer group {group} is not online"))
        }));
    }
    conns.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    conns.dedup_by(|a, b| a.client_id == b.client_id);
    let mut table = Table::new(&["ClientId", "ClientAddr", "Language", "Version"]);
    for c in &conns {
        table.row(vec![
            c.client_id.clone(),
            c.client_addr.clone(),
            c.language.clone(),
            c.version.to_string(),
        ]);
    }
    let js = serde_json::from_slice(&to_json(&ProducerConnection { connection_set: conns }))
        .unwrap_or(Value::Null);
    Ok(Output::new(table.render(), json!({"group": group, "connections": js})))
}

pub async fn update_sub_group(
    ops: &Ops,
    t: &Target,
    config: &SubscriptionGroupConfig,
) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    let body = to_json(config);
    for (_, addr) in &masters {
        ops.broker(addr, ops.header(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), &body).await?;
    }
    let addrs: Vec<&String> = masters.iter().map(|(_, a)| a).collect();
    let text = format!(
        "create subscription group [{}] on {} broker(s) success.\n",
        config.group_name,
        addrs.len()
    );
    let cfg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok(Output::new(text, json!({"config": cfg, "brokers": addrs})))
}

pub async fn delete_sub_group(ops: &Ops, t: &Target, group: &str) -> Result<Output> {
    let masters = ops.masters(t.broker.as_deref(), t.cluster.as_deref()).await?;
    for (_, addr) in &masters {
        let mut h = ops.header(request::DELETE_SUBSCRIPTIONGROUP);
        h.ext_fields.insert("groupName", group);
        ops.broker(addr, h, &[]).await?;
    }
    let addrs: Vec<&String> = masters.iter().map(|(_, a)| a).collect();
    let text =
        format!("delete subscription group [{group}] from {} broker(s) success.\n", addrs.len());
    Ok(Output::new(text, json!({"group": group, "brokers": addrs})))
}

// ---------------------------------------------------------------------------------------
// Messages.

fn message_output(found: &[(String, StoredMessage)]) -> Output {
    let mut text = String::new();
    let mut js = Vec::new();
    for (addr, m) in found {
        let props: BTreeMap<String, String> = m.properties_map().into_iter().collect();
        let store_host = m.store_host;
        let id = offset_msg_id(&store_host, m.physical_offset);
        let body = String::from_utf8_lossy(&m.body).into_owned();
        let rows: Vec<(&str, String)> = vec![
            ("OffsetID", id.clone()),
            ("Topic", m.topic_str()),
            ("Tags", props.get("TAGS").cloned().unwrap_or_default()),
            ("Keys", props.get("KEYS").cloned().unwrap_or_default()),
            ("UniqueKey", props.get("UNIQ_KEY").cloned().unwrap_or_default()),
            ("Queue ID", m.queue_id.to_string()),
            ("Queue Offset", m.queue_offset.to_string()),
            ("CommitLog Offset", m.physical_offset.to_string()),
            ("Reconsume Times", m.reconsume_times.to_string()),
            ("Born Timestamp", format_ms(m.born_timestamp)),
            ("Store Timestamp", format_ms(m.store_timestamp)),
            ("Born Host", m.born_host.to_string()),
            ("Store Host", store_host.to_string()),
            ("System Flag", m.sys_flag.to_string()),
            ("Properties", format!("{props:?}")),
            ("Body Size", m.body.len().to_string()),
            ("Body", body.chars().take(512).collect()),
        ];
        for (k, v) in &rows {
            text.push_str(&format!("{k:<18} {v}\n"));
        }
        text.push('\n');
        js.push(json!({
            "brokerAddr": addr, "offsetMsgId": id, "topic": m.topic_str(), "queueId": m.queue_id,
            "queueOffset": m.queue_offset, "commitLogOffset": m.physical_offset,
            "reconsumeTimes": m.reconsume_times, "bornTimestamp": m.born_timestamp,
            "storeTimestamp": m.store_timestamp, "bornHost": m.born_host.to_string(),
            "storeHost": store_host.to_string(), "sysFlag": m.sys_flag, "properties": props,
            "body": body,
        }));
    }
    Output::new(text, json!({"messages": js}))
}

fn decode(addr: &str, body: &Bytes) -> Result<Vec<StoredMessage>> {
    decode_records(body, false)
        .map_err(|e| AdminError::BadReply { addr: addr.to_string(), reason: e.to_string() })
}

pub async fn query_msg_by_id(ops: &Ops, id: &str, topic: Option<&str>) -> Result<Output> {
    if let Some((addr, offset)) = decode_offset_msg_id(id) {
        let addr = addr.to_string();
        let mut h = ops.header(request::VIEW_MESSAGE_BY_ID);
        h.ext_fields.insert("offset", offset.to_string());
        match ops.broker(&addr, h, &[]).await {
            Ok(frame) => {
                let msgs = decode(&addr, &frame.body)?;
                let found: Vec<_> = msgs.into_iter().map(|m| (addr.clone(), m)).collect();
                return Ok(message_output(&found));
            }
            Err(e) if topic.is_none() => return Err(e),
            Err(_) => {}
        }
    }
    match topic {
        // Not an offsetMsgId (or not found by it): try it as the client's unique key.
        Some(t) => query_msg_by_key(ops, t, id, true).await,
        None => Err(AdminError::Usage(format!(
            "{id} is not an offsetMsgId; give -t TOPIC to look it up as a unique key"
        ))),
    }
}

pub async fn query_msg_by_key(ops: &Ops, topic: &str, key: &str, unique: bool) -> Result<Output> {
    let mut found = Vec::new();
    let mut last_refusal = None;
    for (_, addr) in ops.topic_masters(topic).await? {
        let mut h = ops.header(request::QUERY_MESSAGE);
        h.ext_fields.insert("topic", topic);
        h.ext_fields.insert("key", key);
        h.ext_fields.insert("maxNum", "64");
        h.ext_fields.insert("beginTimestamp", "0");
        h.ext_fields.insert("endTimestamp", i64::MAX.to_string());
        if unique {
            h.ext_fields.insert("_UNIQUE_KEY_QUERY", "true");
        }
        let frame = ops.broker_raw(&addr, h, &[]).await?;
        if frame.header.code != response::SUCCESS {
            last_refusal = Some(check("broker", &addr, request::QUERY_MESSAGE, frame));
            continue;
        }
        for m in decode(&addr, &frame.body)? {
            let props = m.properties_map();
            let matches = if unique {
                props.iter().any(|(k, v)| k == "UNIQ_KEY" && v == key)
            } else {
                props.iter().any(|(k, v)| k == "KEYS" && v.split(' ').any(|x| x == key))
            };
            if matches {
                found.push((addr.clone(), m));
            }
        }
    }
    if found.is_empty() {
        let what = if unique { "unique key" } else { "key" };
        return Err(match last_refusal {
            Some(Err(e)) => e,
            _ => AdminError::NotFound(format!("no message with {what} {key} in topic {topic}")),
        });
    }
    Ok(message_output(&found))
}

pub async fn query_msg_by_offset(
    ops: &Ops,
    topic: &str,
    broker_name: &str,
    queue_id: i32,
    offset: i64,
) -> Result<Output> {
    let masters = ops.topic_masters(topic).await?;
    let Some((_, addr)) = masters.iter().find(|(n, _)| n == broker_name) else {
        return Err(AdminError::NotFound(format!(
            "broker {broker_name} does not serve topic {topic}"
        )));
    };
    let mut h = ops.header(request::PULL_MESSAGE);
    PullMessageRequestHeader {
        consumer_group: "TOOLS_CONSUMER".into(),
        topic: topic.to_string(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 1,
        sys_flag: 0,
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: Some("*".into()),
        sub_version: 0,
        expression_type: Some("TAG".into()),
        max_msg_bytes: None,
    }
    .encode(&mut h.ext_fields);
    let frame = ops.broker_raw(addr, h, &[]).await?;
    if frame.header.code != response::SUCCESS {
        let remark = frame.header.remark.clone().unwrap_or_default();
        return Err(AdminError::NotFound(format!(
            "no message at offset {offset} of {topic}:{broker_name}:{queue_id} ({remark})"
        )));
    }
    let msgs = decode(addr, &frame.body)?;
    let found: Vec<_> = msgs.into_iter().take(1).map(|m| (addr.clone(), m)).collect();
    Ok(message_output(&found))
}

pub async fn reset_offset_by_time(
    ops: &Ops,
    group: &str,
    topic: &str,
    timestamp: i64,
    force: bool,
) -> Result<Output> {
    let mut rows = Vec::new();
    for (_, addr) in ops.topic_masters(topic).await? {
        let mut h = ops.header(request::INVOKE_BROKER_TO_RESET_OFFSET);
        h.ext_fields.insert("topic", topic);
        h.ext_fields.insert("group", group);
        h.ext_fields.insert("timestamp", timestamp.to_string());
        h.ext_fields.insert("isForce", force.to_string());
        let body: ResetOffsetBody = ops.broker_json(&addr, h).await?;
        rows.extend(body.offset_table.0);
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut table = Table::new(&["Topic", "Broker", "QID", "NewOffset"]);
    let mut js = Vec::new();
    for (mq, o) in &rows {
        table.row(vec![
            mq.topic.clone(),
            mq.broker_name.clone(),
            mq.queue_id.to_string(),
            o.to_string(),
        ]);
        js.push(json!({"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": o}));
    }
    let text = format!(
        "reset offsets of group {group} on {topic} to {}:\n{}",
        format_ms(timestamp),
        table.render()
    );
    Ok(Output::new(
        text,
        json!({"group": group, "topic": topic, "timestamp": timestamp, "queues": js}),
    ))
}

// ---------------------------------------------------------------------------------------
// Time.

/// `yyyy-MM-ddTHH:mm:ss.SSSZ` (UTC) of a ms timestamp; `-` for 0.
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

/// Parses `-s`: `now`, milliseconds since the epoch, or mqadmin's
/// `yyyy-MM-dd#HH:mm:ss:SSS` (read as UTC).
///
/// # Errors
/// Anything else.
pub fn parse_time(s: &str, now_ms: i64) -> Result<i64> {
    if s == "now" {
        return Ok(now_ms);
    }
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        AdminError::Usage(format!(
            "bad time {s:?}: use now, ms since epoch, or yyyy-MM-dd#HH:mm:ss:SSS"
        ))
    };
    let (date, time) = s.split_once('#').ok_or_else(bad)?;
    let d: Vec<i64> =
        date.split('-').map(|x| x.parse().map_err(|_| bad())).collect::<Result<_>>()?;
    let t: Vec<i64> =
        time.split(':').map(|x| x.parse().map_err(|_| bad())).collect::<Result<_>>()?;
    if d.len() != 3 || t.len() != 4 {
        return Err(bad());
    }
    let days = days_from_civil(d[0], d[1], d[2]);
    Ok(((days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2]) * 1000) + t[3])
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

// ---------------------------------------------------------------------------------------
// Controller mode (RocketMQ 5): the controller quorum's view and a broker's epochs.

/// CONTROLLER_GET_METADATA_INFO from the first of `addrs` (`h:p;h:p`) that answers.
async fn controller_meta(
    ops: &Ops,
    addrs: &str,
) -> Result<(String, ramjet_proto::controller::GetMetaDataResponseHeader)> {
    let mut last = AdminError::Usage("no controller address given (-a)".into());
    for addr in addrs.split(';').map(str::trim).filter(|a| !a.is_empty()) {
        let h = ops.header(request::CONTROLLER_GET_METADATA_INFO);
        match ops.broker_raw(addr, h, &[]).await {
            Ok(frame) => {
                let frame =
                    check("controller", addr, request::CONTROLLER_GET_METADATA_INFO, frame)?;
                let meta = ramjet_proto::controller::GetMetaDataResponseHeader::decode(
                    &frame.header.ext_fields,
                )
                .map_err(|e| AdminError::BadReply {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                })?;
                return Ok((addr.to_string(), meta));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `getControllerMetaData -a`: the group, the leader and the peers, as mqadmin prints them.
pub async fn controller_metadata(ops: &Ops, addrs: &str) -> Result<Output> {
    let (addr, m) = controller_meta(ops, addrs).await?;
    let mut text = String::new();
    text.push_str(&format!("#ControllerGroup\t{}\n", m.group.clone().unwrap_or_default()));
    text.push_str(&format!(
        "#ControllerLeaderId\t{}\n",
        m.controller_leader_id.clone().unwrap_or_default()
    ));
    text.push_str(&format!(
        "#ControllerLeaderAddress\t{}\n",
        m.controller_leader_address.clone().unwrap_or_default()
    ));
    let peers = m.peers.clone().unwrap_or_default();
    for p in peers.split(';').filter(|p| !p.is_empty()) {
        text.push_str(&format!("#Peer:\t{p}\n"));
    }
    Ok(Output::new(
        text,
        json!({
            "answeredBy": addr,
            "group": m.group,
            "controllerLeaderId": m.controller_leader_id,
            "controllerLeaderAddress": m.controller_leader_address,
            "isLeader": m.is_leader,
            "peers": m.peers,
        }),
    ))
}

/// `getSyncStateSet -a -b`: per group the master, epochs and replicas, from the leader.
pub async fn sync_state_set(ops: &Ops, addrs: &str, broker_names: &str) -> Result<Output> {
    let (_, meta) = controller_meta(ops, addrs).await?;
    let leader = meta
        .controller_leader_address
        .ok_or_else(|| AdminError::NotFound("the controller has no leader now".into()))?;
    let names: Vec<&str> =
        broker_names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    let h = ops.header(request::CONTROLLER_GET_SYNC_STATE_DATA);
    let frame = ops.broker_raw(&leader, h, &to_json(&names)).await?;
    let frame = check("controller", &leader, request::CONTROLLER_GET_SYNC_STATE_DATA, frame)?;
    let info: ramjet_proto::controller::BrokerReplicasInfo = parse(&leader, &frame.body)?;
    let mut text = String::new();
    let ident = |r: &ramjet_proto::controller::ReplicaIdentity| {
        format!(
            "ReplicaIdentity{{brokerName='{}', brokerId={}, brokerAddress='{}', alive={}}}",
            r.broker_name, r.broker_id, r.broker_address, r.alive
        )
    };
    for (name, r) in &info.replicas_info_table {
        text.push_str(&format!(
            "\n#brokerName\t{name}\n#MasterBrokerId\t{}\n#MasterAddr\t{}\n#MasterEpoch\t{}\n#SyncStateSetEpoch\t{}\n#SyncStateSetNums\t{}\n",
            r.master_broker_id.map_or("null".into(), |v| v.to_string()),
            r.master_address.clone().unwrap_or_else(|| "null".into()),
            r.master_epoch.unwrap_or(0),
            r.sync_state_set_epoch.unwrap_or(0),
            r.in_sync_replicas.len()
        ));
        for i in &r.in_sync_replicas {
            text.push_str(&format!("\n#InSyncReplica:\t{}", ident(i)));
        }
        for i in &r.not_in_sync_replicas {
            text.push_str(&format!("\n#NotInSyncReplica:\t{}", ident(i)));
        }
        text.push('\n');
    }
    let js = serde_json::to_value(&info).unwrap_or(Value::Null);
    Ok(Output::new(text, js))
}

/// `getBrokerEpoch -b`: the broker's epoch entries (GET_BROKER_EPOCH_CACHE).
pub async fn broker_epoch(ops: &Ops, addr: &str) -> Result<Output> {
    let frame = ops.broker(addr, ops.header(request::GET_BROKER_EPOCH_CACHE), &[]).await?;
    let cache: ramjet_proto::controller::EpochEntryCache = parse(addr, &frame.body)?;
    let mut text = format!(
        "\n#clusterName\t{}\n#brokerName\t{}\n#brokerAddr\t{addr}\n#brokerId\t{}\n",
        cache.cluster_name, cache.broker_name, cache.broker_id
    );
    for (i, e) in cache.epoch_list.iter().enumerate() {
        let end = if i + 1 == cache.epoch_list.len() { cache.max_offset } else { e.end_offset };
        text.push_str(&format!(
            "#Epoch: EpochEntry{{epoch={}, startOffset={}, endOffset={end}}}\n",
            e.epoch, e.start_offset
        ));
    }
    let js = serde_json::to_value(&cache).unwrap_or(Value::Null);
    Ok(Output::new(text, js))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_time("now", 5).ok(), Some(5));
        assert_eq!(parse_time("1700000000000", 0).ok(), Some(1_700_000_000_000));
        let t = parse_time("2023-11-14#22:13:20:123", 0).ok();
        assert_eq!(t, Some(1_700_000_000_123));
        assert_eq!(format_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert!(parse_time("yesterday", 0).is_err());
    }
}
