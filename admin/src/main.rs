//! `ramjet-admin`: RocketMQ's `mqadmin` sub-commands (same names and short flags) over the
//! remoting protocol, so it administers ramjet and any RocketMQ broker alike.
//!
//! Output is an aligned table by default and one JSON object with `--json`. A failure
//! prints one line naming its cause on stderr (no route, broker down, the response code
//! and remark) and exits 1; a usage error exits 2.
//!
//! ```text
//! ramjet-admin clusterList -n 127.0.0.1:9876
//! ramjet-admin consumerProgress -n 127.0.0.1:9876 -g my-group --json
//! ramjet-admin updateTopic -n 127.0.0.1:9876 -c DefaultCluster -t T \
//!     --access-key RocketMQ --secret-key 12345678      # against aclEnable=true
//! ```
//!
//! Access control: `--access-key` / `--secret-key` sign every request; without them the
//! keys of `$ROCKETMQ_HOME/conf/tools.yml` are used when that file exists.

#![forbid(unsafe_code)]

mod commands;
mod credentials;
mod error;
mod ops;
mod table;

use clap::{Args, Parser, Subcommand};
use ramjet_proto::admin_body::SubscriptionGroupConfig;

use crate::commands::{Output, Target, TopicSpec};
use crate::error::AdminError;
use crate::ops::Ops;

/// mqadmin-compatible administration for ramjet and RocketMQ.
#[derive(Parser, Debug)]
#[command(name = "ramjet-admin", version, about)]
struct Cli {
    /// Print one JSON object instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// ACL access key: sign every request (with --secret-key). Without both flags the
    /// keys come from $ROCKETMQ_HOME/conf/tools.yml when that file exists.
    #[arg(long = "access-key", global = true)]
    access_key: Option<String>,
    /// ACL secret key (with --access-key).
    #[arg(long = "secret-key", global = true)]
    secret_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// NameServer list, shared by every sub-command.
#[derive(Args, Debug, Clone)]
struct Ns {
    /// NameServers, `host:port;host:port` (default $NAMESRV_ADDR, else 127.0.0.1:9876).
    #[arg(short = 'n', long = "namesrvAddr")]
    namesrv: Option<String>,
}

/// Where to act: one broker or a cluster (neither: every master).
#[derive(Args, Debug, Clone)]
struct Where {
    /// Broker address `host:port`.
    #[arg(short = 'b', long = "brokerAddr")]
    broker: Option<String>,
    /// Cluster name.
    #[arg(short = 'c', long = "clusterName")]
    cluster: Option<String>,
}

impl Where {
    fn target(&self) -> Target {
        Target { broker: self.broker.clone(), cluster: self.cluster.clone() }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create or update a topic on a broker or every master of a cluster.
    #[command(name = "updateTopic")]
    UpdateTopic {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Read queues.
        #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
        read: i32,
        /// Write queues.
        #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
        write: i32,
        /// Permission (2 write, 4 read, 6 both).
        #[arg(short = 'p', long = "perm", default_value_t = 6)]
        perm: i32,
        /// Ordered topic.
        #[arg(short = 'o', long = "order", default_value_t = false)]
        order: bool,
    },
    /// Delete a topic from brokers and the NameServer.
    #[command(name = "deleteTopic")]
    DeleteTopic {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// List topics (of a cluster with -c).
    #[command(name = "topicList")]
    TopicList {
        #[command(flatten)]
        ns: Ns,
        /// Cluster name.
        #[arg(short = 'c', long = "clusterName")]
        cluster: Option<String>,
    },
    /// Show a topic's route.
    #[command(name = "topicRoute")]
    TopicRoute {
        #[command(flatten)]
        ns: Ns,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Min and max offset and last update of every queue of a topic.
    #[command(name = "topicStatus")]
    TopicStatus {
        #[command(flatten)]
        ns: Ns,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
    },
    /// Every broker of every cluster, with its traffic.
    #[command(name = "clusterList")]
    ClusterList {
        #[command(flatten)]
        ns: Ns,
    },
    /// A broker's runtime information.
    #[command(name = "brokerStatus")]
    BrokerStatus {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
    },
    /// A broker's configuration.
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
    },
    /// Change a broker setting while it runs.
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
        /// Key.
        #[arg(short = 'k', long = "key")]
        key: String,
        /// Value.
        #[arg(short = 'v', long = "value")]
        value: String,
    },
    /// A group's progress: broker offset, consumer offset and lag per queue.
    #[command(name = "consumerProgress")]
    ConsumerProgress {
        #[command(flatten)]
        ns: Ns,
        /// Consumer group (absent: every group's total).
        #[arg(short = 'g', long = "groupName")]
        group: Option<String>,
        /// Only this topic.
        #[arg(short = 't', long = "topicName")]
        topic: Option<String>,
    },
    /// A consumer group's connections and subscriptions.
    #[command(name = "consumerConnection")]
    ConsumerConnection {
        #[command(flatten)]
        ns: Ns,
        /// Consumer group.
        #[arg(short = 'g', long = "consumerGroup")]
        group: String,
    },
    /// A producer group's connections.
    #[command(name = "producerConnection")]
    ProducerConnection {
        #[command(flatten)]
        ns: Ns,
        /// Producer group.
        #[arg(short = 'g', long = "producerGroup")]
        group: String,
        /// A topic it sends to (finds its brokers).
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
    },
    /// Every producer group's clients on one broker (GET_ALL_PRODUCER_INFO).
    #[command(name = "producer")]
    Producer {
        #[command(flatten)]
        ns: Ns,
        /// Broker address.
        #[arg(short = 'b', long = "broker")]
        broker: String,
    },
    /// Every known group's progress on one broker (GET_BROKER_CONSUME_STATS).
    #[command(name = "brokerConsumeStats")]
    BrokerConsumeStats {
        #[command(flatten)]
        ns: Ns,
        /// Broker address.
        #[arg(short = 'b', long = "brokerAddr")]
        broker: String,
        /// Only queues lagging at least this much.
        #[arg(short = 'l', long = "level", default_value_t = 0)]
        level: i64,
        /// Only ordered topics.
        #[arg(short = 'o', long = "order", default_value_t = false, action = clap::ArgAction::Set)]
        order: bool,
    },
    /// Create or update a subscription group.
    #[command(name = "updateSubGroup")]
    UpdateSubGroup {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
        /// Group name.
        #[arg(short = 'g', long = "groupName")]
        group: String,
        /// Allow consumption.
        #[arg(short = 's', long = "consumeEnable", default_value_t = true, action = clap::ArgAction::Set)]
        consume_enable: bool,
        /// Allow starting from the min offset.
        #[arg(short = 'm', long = "consumeFromMinEnable", default_value_t = true, action = clap::ArgAction::Set)]
        from_min: bool,
        /// Allow broadcasting.
        #[arg(short = 'd', long = "consumeBroadcastEnable", default_value_t = true, action = clap::ArgAction::Set)]
        broadcast: bool,
        /// Retry queues.
        #[arg(short = 'q', long = "retryQueueNums", default_value_t = 1)]
        retry_queues: i32,
        /// Redeliveries before the dead-letter queue.
        #[arg(short = 'r', long = "retryMaxTimes", default_value_t = 16)]
        retry_max: i32,
        /// Broker id to consume from.
        #[arg(short = 'i', long = "brokerId", default_value_t = 0)]
        broker_id: i64,
        /// Broker id when consumption is slow.
        #[arg(short = 'w', long = "whichBrokerWhenConsumeSlowly", default_value_t = 1)]
        slow_broker: i64,
    },
    /// Delete a subscription group.
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup {
        #[command(flatten)]
        ns: Ns,
        #[command(flatten)]
        at: Where,
        /// Group name.
        #[arg(short = 'g', long = "groupName")]
        group: String,
    },
    /// A message by offsetMsgId (or by unique key with -t).
    #[command(name = "queryMsgById")]
    QueryMsgById {
        #[command(flatten)]
        ns: Ns,
        /// Message id.
        #[arg(short = 'i', long = "msgId")]
        id: String,
        /// Topic (to fall back to a unique-key lookup).
        #[arg(short = 't', long = "topic")]
        topic: Option<String>,
    },
    /// Messages by key.
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey {
        #[command(flatten)]
        ns: Ns,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Key.
        #[arg(short = 'k', long = "msgKey")]
        key: String,
    },
    /// A message by the client's unique key (UNIQ_KEY).
    #[command(name = "queryMsgByUniqueKey")]
    QueryMsgByUniqueKey {
        #[command(flatten)]
        ns: Ns,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Unique key.
        #[arg(short = 'i', long = "msgId")]
        id: String,
    },
    /// The message at a queue offset.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset {
        #[command(flatten)]
        ns: Ns,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// Broker name.
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
        /// Queue id.
        #[arg(short = 'i', long = "queueId")]
        queue_id: i32,
        /// Queue offset.
        #[arg(short = 'o', long = "offset")]
        offset: i64,
    },
    /// The controller quorum's view: group, leader, peers (CONTROLLER_GET_METADATA_INFO).
    #[command(name = "getControllerMetaData")]
    GetControllerMetaData {
        #[command(flatten)]
        ns: Ns,
        /// Controller addresses, `host:port;host:port` (the first that answers is asked).
        #[arg(short = 'a', long = "controllerAddress")]
        controller: String,
    },
    /// A broker group's master, epochs and in-sync replicas, from the controller leader
    /// (CONTROLLER_GET_SYNC_STATE_DATA).
    #[command(name = "getSyncStateSet")]
    GetSyncStateSet {
        #[command(flatten)]
        ns: Ns,
        /// Controller addresses, `host:port;host:port`.
        #[arg(short = 'a', long = "controllerAddress")]
        controller: String,
        /// Broker group names, comma-separated.
        #[arg(short = 'b', long = "brokerName")]
        broker_name: String,
    },
    /// A broker's epoch entries (GET_BROKER_EPOCH_CACHE, served by a controller-mode broker).
    #[command(name = "getBrokerEpoch")]
    GetBrokerEpoch {
        #[command(flatten)]
        ns: Ns,
        /// Broker address `host:port`.
        #[arg(short = 'b', long = "brokerAddr")]
        broker: String,
    },
    /// Move a group's offsets to the first message stored at or after a time.
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime {
        #[command(flatten)]
        ns: Ns,
        /// Consumer group.
        #[arg(short = 'g', long = "group")]
        group: String,
        /// Topic.
        #[arg(short = 't', long = "topic")]
        topic: String,
        /// now, ms since the epoch, or yyyy-MM-dd#HH:mm:ss:SSS (UTC).
        #[arg(short = 's', long = "timestamp")]
        timestamp: String,
        /// Also move offsets forward.
        #[arg(short = 'f', long = "force", default_value_t = true, action = clap::ArgAction::Set)]
        force: bool,
    },
}

fn namesrv_of(ns: &Ns) -> String {
    ns.namesrv
        .clone()
        .or_else(|| std::env::var("NAMESRV_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:9876".to_string())
}

fn ns_of(c: &Command) -> &Ns {
    match c {
        Command::UpdateTopic { ns, .. }
        | Command::DeleteTopic { ns, .. }
        | Command::TopicList { ns, .. }
        | Command::TopicRoute { ns, .. }
        | Command::TopicStatus { ns, .. }
        | Command::ClusterList { ns }
        | Command::BrokerStatus { ns, .. }
        | Command::GetBrokerConfig { ns, .. }
        | Command::UpdateBrokerConfig { ns, .. }
        | Command::ConsumerProgress { ns, .. }
        | Command::ConsumerConnection { ns, .. }
        | Command::ProducerConnection { ns, .. }
        | Command::Producer { ns, .. }
        | Command::BrokerConsumeStats { ns, .. }
        | Command::UpdateSubGroup { ns, .. }
        | Command::DeleteSubGroup { ns, .. }
        | Command::QueryMsgById { ns, .. }
        | Command::QueryMsgByKey { ns, .. }
        | Command::QueryMsgByUniqueKey { ns, .. }
        | Command::QueryMsgByOffset { ns, .. }
        | Command::ResetOffsetByTime { ns, .. }
        | Command::GetControllerMetaData { ns, .. }
        | Command::GetSyncStateSet { ns, .. }
        | Command::GetBrokerEpoch { ns, .. } => ns,
    }
}

async fn run(ops: &Ops, command: Command) -> Result<Output, AdminError> {
    match command {
        Command::UpdateTopic { at, topic, read, write, perm, order, .. } => {
            let spec =
                TopicSpec { topic, read_queue_nums: read, write_queue_nums: write, perm, order };
            commands::update_topic(ops, &at.target(), &spec).await
        }
        Command::DeleteTopic { at, topic, .. } => {
            commands::delete_topic(ops, &at.target(), &topic).await
        }
        Command::TopicList { cluster, .. } => commands::topic_list(ops, cluster.as_deref()).await,
        Command::TopicRoute { topic, .. } => commands::topic_route(ops, &topic).await,
        Command::TopicStatus { topic, .. } => commands::topic_status(ops, &topic).await,
        Command::ClusterList { .. } => commands::cluster_list(ops).await,
        Command::BrokerStatus { at, .. } => commands::broker_status(ops, &at.target()).await,
        Command::GetBrokerConfig { at, .. } => commands::get_broker_config(ops, &at.target()).await,
        Command::UpdateBrokerConfig { at, key, value, .. } => {
            commands::update_broker_config(ops, &at.target(), &key, &value).await
        }
        Command::ConsumerProgress { group, topic, .. } => {
            commands::consumer_progress(ops, group.as_deref(), topic.as_deref()).await
        }
        Command::ConsumerConnection { group, .. } => {
            commands::consumer_connection(ops, &group).await
        }
        Command::ProducerConnection { group, topic, .. } => {
            commands::producer_connection(ops, &group, topic.as_deref()).await
        }
        Command::Producer { broker, .. } => commands::producers(ops, &broker).await,
        Command::BrokerConsumeStats { broker, level, order, .. } => {
            commands::broker_consume_stats(ops, &broker, level, order).await
        }
        Command::UpdateSubGroup {
            at,
            group,
            consume_enable,
            from_min,
            broadcast,
            retry_queues,
            retry_max,
            broker_id,
            slow_broker,
            ..
        } => {
            let config = SubscriptionGroupConfig {
                group_name: group,
                consume_enable,
                consume_from_min_enable: from_min,
                consume_broadcast_enable: broadcast,
                retry_queue_nums: retry_queues,
                retry_max_times: retry_max,
                broker_id,
                which_broker_when_consume_slowly: slow_broker,
                ..SubscriptionGroupConfig::default()
            };
            commands::update_sub_group(ops, &at.target(), &config).await
        }
        Command::DeleteSubGroup { at, group, .. } => {
            commands::delete_sub_group(ops, &at.target(), &group).await
        }
        Command::QueryMsgById { id, topic, .. } => {
            commands::query_msg_by_id(ops, &id, topic.as_deref()).await
        }
        Command::QueryMsgByKey { topic, key, .. } => {
            commands::query_msg_by_key(ops, &topic, &key, false).await
        }
        Command::QueryMsgByUniqueKey { topic, id, .. } => {
            commands::query_msg_by_key(ops, &topic, &id, true).await
        }
        Command::QueryMsgByOffset { topic, broker_name, queue_id, offset, .. } => {
            commands::query_msg_by_offset(ops, &topic, &broker_name, queue_id, offset).await
        }
        Command::GetControllerMetaData { controller, .. } => {
            commands::controller_metadata(ops, &controller).await
        }
        Command::GetSyncStateSet { controller, broker_name, .. } => {
            commands::sync_state_set(ops, &controller, &broker_name).await
        }
        Command::GetBrokerEpoch { broker, .. } => commands::broker_epoch(ops, &broker).await,
        Command::ResetOffsetByTime { group, topic, timestamp, force, .. } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let ts = commands::parse_time(&timestamp, now)?;
            commands::reset_offset_by_time(ops, &group, &topic, ts, force).await
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let namesrv = namesrv_of(ns_of(&cli.command));
    let home = std::env::var("ROCKETMQ_HOME").ok();
    let credentials =
        credentials::resolve(cli.access_key.as_deref(), cli.secret_key.as_deref(), home.as_deref());
    let result = credentials.and_then(|credentials| {
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("ramjet-admin")
            .io_memory(1 << 20)
            .spawn(move || async move {
                let ops = Ops::new(&namesrv, credentials)?;
                let out = run(&ops, cli.command).await;
                ops.close();
                out
            })
            .map_err(|e| AdminError::Usage(format!("cannot start the I/O executor: {e}")))
            .and_then(|h| {
                h.join()
                    .map_err(|e| AdminError::Usage(format!("the I/O executor failed: {e:?}")))?
            })
    });
    match result {
        Ok(out) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&out.json).unwrap_or_default());
            } else {
                print!("{}", out.text);
            }
        }
        Err(e) => {
            eprintln!("ramjet-admin: {e}");
            std::process::exit(if matches!(e, AdminError::Usage(_)) { 2 } else { 1 });
        }
    }
}
