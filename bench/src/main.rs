//! ramjet-bench: ramjet's load generator.
//!
//! ```text
//! ramjet-bench produce -n 127.0.0.1:9876 --topic T --size 1024 --connections 4 \
//!     --inflight 32 --duration 10 [--messages N] [--rate 0] [--batch 1] [--json] \
//!     [--delay-level N | --transaction]
//! ramjet-bench consume -n 127.0.0.1:9876 --topic T --group G --messages 1000000 [--json]
//! ramjet-bench storage --store-path DIR --size 1024 --duration 10 \
//!     --flush-disk-type ASYNC_FLUSH --inflight 64 [--json]
//! ramjet-bench attack -n 127.0.0.1:9876 --broker 127.0.0.1:10911 --pid PID \
//!     [--metrics 127.0.0.1:PORT] [--attacks abcdefgh] [--scale 1] [--json]
//! ramjet-bench filter [--records 1024] [--iterations 2000000] [--json]
//! ```
//!
//! produce and consume speak only the remoting protocol, so they can be pointed at any
//! RocketMQ broker. Progress goes to stderr once a second; the summary goes to stdout,
//! as one JSON object with `--json`.

#![forbid(unsafe_code)]

mod attack;
mod consume;
mod filter_cost;
mod produce;
mod rate;
mod run;
mod stats;
mod storage_mode;

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use ramjet_client::{ClientConfig, SerializeType};

/// Duration of a run when neither `--duration` nor `--messages` is given, seconds.
const DURATION_DEFAULT_SECS: f64 = 10.0;

#[derive(Debug, Parser)]
#[command(name = "ramjet-bench", version, about = "Load generator for RocketMQ-compatible brokers")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Send messages and measure acknowledged throughput and latency.
    Produce(ProduceArgs),
    /// Pull messages as one consumer group and measure throughput and end-to-end latency.
    Consume(ConsumeArgs),
    /// Append through the storage engine directly (no network).
    Storage(StorageArgs),
    /// Issue 13's hostile clients against one broker, with a normal producer alongside:
    /// broker RSS and the producer's sends/s without and during each attack.
    Attack(AttackArgs),
    /// Per-message cost of pull-time filtering: TAG against SQL92 selectors (one thread,
    /// no I/O).
    Filter(FilterArgs),
}

#[derive(Debug, Args)]
struct FilterArgs {
    /// Distinct stored records cycled through.
    #[arg(long, default_value_t = 1024)]
    records: usize,
    /// Evaluations per filter.
    #[arg(long, default_value_t = 2_000_000)]
    iterations: u64,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Options shared by produce and consume.
#[derive(Debug, Clone, Args)]
pub struct NetArgs {
    /// NameServer addresses, "host:port;host:port".
    #[arg(short = 'n', long = "namesrv-addr", default_value = "127.0.0.1:9876")]
    pub namesrv_addr: String,
    /// Topic.
    #[arg(long, default_value = "ramjet-bench")]
    pub topic: String,
    /// Client connections (each its own client, spread over the executors).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Requests outstanding per connection (produce; consume keeps one pull per queue).
    #[arg(long, default_value_t = 32)]
    pub inflight: usize,
    /// Run this many seconds (default 10 when --messages is not given).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub messages: Option<u64>,
    /// Total messages per second over all connections; 0 = unlimited (produce only;
    /// consume pulls as fast as messages come).
    #[arg(long, value_name = "MSGS_PER_S", default_value_t = 0)]
    pub rate: u64,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Send JSON headers instead of the binary ROCKETMQ header.
    #[arg(long = "json-header")]
    pub json_header: bool,
    /// Executors (threads); default: available cores.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Request timeout, milliseconds.
    #[arg(long = "timeout-ms", default_value_t = 3000)]
    pub timeout_ms: u64,
    /// ACL access key: sign every request (needs --secret-key), for brokers with
    /// `aclEnable=true`.
    #[arg(long = "access-key", requires = "secret_key")]
    pub access_key: Option<String>,
    /// ACL secret key (needs --access-key).
    #[arg(long = "secret-key", requires = "access_key")]
    pub secret_key: Option<String>,
}

impl NetArgs {
    /// The client configuration these options describe.
    ///
    /// # Errors
    /// A malformed NameServer list.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let mut config = ClientConfig::new(&self.namesrv_addr).map_err(|e| e.to_string())?;
        config.serialize_type =
            if self.json_header { SerializeType::Json } else { SerializeType::RocketMq };
        config.request_timeout = Duration::from_millis(self.timeout_ms.max(1));
        if let (Some(access_key), Some(secret_key)) = (&self.access_key, &self.secret_key) {
            config.credentials = Some(ramjet_client::Credentials {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                security_token: None,
            });
        }
        Ok(config)
    }

    /// The run's duration: `--duration`, else unlimited with `--messages`, else 10 s.
    pub fn duration(&self) -> Option<Duration> {
        duration_of(self.duration, self.messages)
    }

    /// Executors to run: `--threads`, capped by the connections that need them.
    pub fn threads(&self) -> usize {
        self.threads.unwrap_or_else(cores).clamp(1, self.connections.max(1))
    }
}

fn duration_of(duration: Option<f64>, messages: Option<u64>) -> Option<Duration> {
    match (duration, messages) {
        (Some(d), _) => Some(Duration::from_secs_f64(d.max(0.0))),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs_f64(DURATION_DEFAULT_SECS)),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Args)]
struct ProduceArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Message body size, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    size: usize,
    /// Messages per request; above 1 sends SEND_BATCH_MESSAGE.
    #[arg(long, value_name = "N", default_value_t = 1)]
    batch: usize,
    /// Queues per master when creating the topic.
    #[arg(long, default_value_t = 8)]
    queues: i32,
    /// Create the topic with --queues queues on every master first (true|false).
    #[arg(long = "create-topic", default_value_t = true, action = ArgAction::Set)]
    create_topic: bool,
    /// Producer group.
    #[arg(long, default_value = "ramjet-bench-producer")]
    group: String,
    /// Set DELAY (delay level, 1 = 1 s) on every message.
    #[arg(long = "delay-level", value_name = "LEVEL")]
    delay_level: Option<i32>,
    /// Send every message as a transactional half message followed by a commit END
    /// (latency: half send to END queued).
    #[arg(long)]
    transaction: bool,
}

#[derive(Debug, Args)]
struct ConsumeArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Consumer group.
    #[arg(long, default_value = "ramjet-bench-consumer")]
    group: String,
    /// Long-poll hold time asked of the broker, milliseconds.
    #[arg(long = "suspend-ms", default_value_t = 1000)]
    suspend_ms: u64,
    /// Messages per pull.
    #[arg(long = "max-nums", default_value_t = 32)]
    max_nums: i32,
    /// Measure latency from the store or born timestamp (ms), or from the µs send time
    /// that `produce` writes into each body (`body`).
    #[arg(long = "latency-from", value_enum, default_value = "store")]
    latency_from: consume::LatencyFrom,
}

#[derive(Debug, Args)]
struct StorageArgs {
    /// Store directory (on a real filesystem: O_DIRECT).
    #[arg(long = "store-path", default_value = "/var/tmp/ramjet-bench-store")]
    store_path: std::path::PathBuf,
    /// Message body size, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    size: usize,
    /// Run this many seconds (default 10 when --messages is not given).
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    messages: Option<u64>,
    /// ASYNC_FLUSH or SYNC_FLUSH.
    #[arg(long = "flush-disk-type", default_value = "ASYNC_FLUSH")]
    flush_disk_type: String,
    /// Concurrent appenders per shard.
    #[arg(long, default_value_t = 64)]
    inflight: usize,
    /// Records per append.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Shards (executors, one commit log each).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Topic of the appended records.
    #[arg(long, default_value = "ramjet-bench")]
    topic: String,
    /// Queues of the topic (spread over the logs).
    #[arg(long, default_value_t = 8)]
    queues: i32,
    /// Print the final summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AttackArgs {
    /// NameServer addresses, "host:port;host:port" (the normal producer's routes).
    #[arg(short = 'n', long = "namesrv-addr", default_value = "127.0.0.1:9876")]
    namesrv_addr: String,
    /// The broker's remoting address, ip:port (what the attacks connect to).
    #[arg(long)]
    broker: String,
    /// The broker's process id, for its memory (/proc/PID/status; same host).
    #[arg(long)]
    pid: u32,
    /// The broker's /metrics address, ip:port (scraper attack f, limit hits).
    #[arg(long)]
    metrics: Option<String>,
    /// Attacks to run, by the issue's letters a to h, in this order.
    #[arg(long, default_value = "abcdefgh")]
    attacks: String,
    /// Seconds the normal producer runs alone before each attack.
    #[arg(long = "baseline-secs", default_value_t = 5.0)]
    baseline_secs: f64,
    /// Seconds an attack that keeps connections open keeps them, measured.
    #[arg(long = "hold-secs", default_value_t = 5.0)]
    hold_secs: f64,
    /// Seconds after each attack before the last RSS reading.
    #[arg(long = "idle-secs", default_value_t = 10.0)]
    idle_secs: f64,
    /// Longest warm-up: the producer alone until the broker's RSS is steady, seconds.
    #[arg(long = "warmup-secs", default_value_t = 120.0)]
    warmup_secs: f64,
    /// Multiplies the issue's counts (at least 1 each): 0.01 for a smoke run.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// One JSON object per attack on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

fn attack_options(a: AttackArgs) -> Result<attack::AttackOptions, String> {
    if !(a.scale > 0.0 && a.scale <= 10.0) {
        return Err(format!("--scale {} is outside (0, 10]", a.scale));
    }
    Ok(attack::AttackOptions {
        namesrv_addr: a.namesrv_addr,
        broker_addr: a.broker,
        pid: a.pid,
        metrics_addr: a.metrics,
        attacks: attack::parse_attacks(&a.attacks)?,
        baseline: secs(a.baseline_secs),
        hold: secs(a.hold_secs),
        idle: secs(a.idle_secs),
        warmup: secs(a.warmup_secs),
        scale: a.scale,
        json: a.json,
    })
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let result = match cli.mode {
        Mode::Produce(a) => produce::run(produce::ProduceOptions {
            net: a.net,
            size: a.size,
            batch: a.batch.max(1),
            queues: a.queues,
            create_topic: a.create_topic,
            group: a.group,
            delay_level: a.delay_level,
            transaction: a.transaction,
        }),
        Mode::Consume(a) => consume::run(consume::ConsumeOptions {
            net: a.net,
            group: a.group,
            suspend: Duration::from_millis(a.suspend_ms),
            max_nums: a.max_nums,
            latency_from: a.latency_from,
        }),
        Mode::Storage(a) => storage_mode::run(storage_mode::StorageOptions {
            store_path: a.store_path,
            size: a.size,
            duration: duration_of(a.duration, a.messages),
            messages: a.messages,
            flush_disk_type: a.flush_disk_type,
            inflight: a.inflight.max(1),
            batch: a.batch.max(1),
            shards: a.shards.max(1),
            topic: a.topic,
            queues: a.queues.max(1),
            json: a.json,
        }),
        Mode::Attack(a) => attack_options(a).and_then(attack::run),
        Mode::Filter(a) => filter_cost::run(filter_cost::FilterOptions {
            records: a.records,
            iterations: a.iterations,
            json: a.json,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ramjet-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_accepts_the_contract_flags() {
        let cli = Cli::try_parse_from([
            "ramjet-bench",
            "produce",
            "-n",
            "h:1;h:2",
            "--topic",
            "t",
            "--size",
            "100",
            "--connections",
            "2",
            "--inflight",
            "8",
            "--duration",
            "3",
            "--rate",
            "500",
            "--batch",
            "4",
            "--json",
            "--create-topic",
            "false",
        ])
        .expect("parses");
        let Mode::Produce(p) = cli.mode else { panic!("produce") };
        assert_eq!(p.net.namesrv_addr, "h:1;h:2");
        assert_eq!((p.size, p.batch, p.net.connections, p.net.inflight), (100, 4, 2, 8));
        assert!(p.net.json && !p.create_topic);
        assert_eq!(p.net.duration(), Some(Duration::from_secs(3)));
        assert_eq!((p.delay_level, p.transaction), (None, false));
        let d =
            Cli::try_parse_from(["ramjet-bench", "produce", "--delay-level", "3"]).expect("parses");
        let Mode::Produce(d) = d.mode else { panic!("produce") };
        assert_eq!(d.delay_level, Some(3));
        let t = Cli::try_parse_from(["ramjet-bench", "produce", "--transaction"]).expect("parses");
        let Mode::Produce(t) = t.mode else { panic!("produce") };
        assert!(t.transaction);
        let c = Cli::try_parse_from([
            "ramjet-bench",
            "consume",
            "--namesrv-addr",
            "h:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--messages",
            "1000",
        ])
        .expect("parses");
        let Mode::Consume(c) = c.mode else { panic!("consume") };
        assert_eq!(c.net.duration(), None, "--messages alone runs until the count");
        assert!(Cli::try_parse_from(["ramjet-bench", "produce", "--bogus"]).is_err());
        let s = Cli::try_parse_from([
            "ramjet-bench",
            "storage",
            "--store-path",
            "/var/tmp/x",
            "--size",
            "10",
            "--duration",
            "1",
            "--flush-disk-type",
            "SYNC_FLUSH",
            "--inflight",
            "4",
            "--json",
        ]);
        assert!(s.is_ok());
    }
}
