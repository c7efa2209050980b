//! `ramjet-broker`: the broker daemon (with an embedded NameServer unless `-n` is given).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use ramjet_server::config::{parse_flush, parse_namesrv_addrs, parse_role, BrokerConfig};
use ramjet_server::{runtime, signal};

/// A RocketMQ-compatible broker. Flags override the `-c` file.
#[derive(Parser, Debug)]
#[command(name = "ramjet-broker", version, about)]
struct Args {
    /// NameServers to register with, `host:port;host:port`. Absent: run the embedded one.
    #[arg(short = 'n', long = "namesrv-addr")]
    namesrv_addr: Option<String>,
    /// A RocketMQ broker.conf (Java properties).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Main port (default 10911); the VIP port is this - 2, HA is this + 1. 0 = ephemeral.
    #[arg(long = "listen-port")]
    listen_port: Option<u16>,
    /// Port of the embedded NameServer (default 9876). 0 = ephemeral.
    #[arg(long = "namesrv-port")]
    namesrv_port: Option<u16>,
    /// Store root (default ./ramjet-store).
    #[arg(long = "store-path")]
    store_path: Option<PathBuf>,
    /// Shards (executors), default: the number of cores.
    #[arg(long = "shards")]
    shards: Option<usize>,
    /// ASYNC_FLUSH (default) or SYNC_FLUSH.
    #[arg(long = "flush-disk-type")]
    flush_disk_type: Option<String>,
    /// Address registered with the NameServer (RocketMQ's brokerIP1).
    #[arg(long = "broker-ip")]
    broker_ip: Option<IpAddr>,
    /// Address the listeners bind (default: the broker IP when it is loopback, else all).
    #[arg(long = "bind-ip")]
    bind_ip: Option<IpAddr>,
    /// Cluster name.
    #[arg(long = "cluster")]
    cluster: Option<String>,
    /// Broker name.
    #[arg(long = "broker-name")]
    broker_name: Option<String>,
    /// Broker id (0 master).
    #[arg(long = "broker-id")]
    broker_id: Option<i64>,
    /// Commit-log segment size in bytes (default 1 GiB).
    #[arg(long = "segment-size")]
    segment_size: Option<u64>,
    /// Serve Prometheus metrics on this port.
    #[arg(long = "metrics-port")]
    metrics_port: Option<u16>,
    /// Port of the RocketMQ 5.x gRPC service (default 8081; 0 = ephemeral).
    #[arg(long = "grpc-port")]
    grpc_port: Option<u16>,
    /// Microseconds an idle shard spins before sleeping (default 50; 0 = never spin).
    #[arg(long = "spin-before-park-us")]
    spin_before_park_us: Option<u64>,
    /// ASYNC_MASTER (default), SYNC_MASTER or SLAVE (RocketMQ's brokerRole).
    #[arg(long = "broker-role")]
    broker_role: Option<String>,
    /// Master HA address `host:port` a slave replicates from (default: the one the
    /// NameServer returns).
    #[arg(long = "ha-master-address")]
    ha_master_address: Option<String>,
}

fn build_config(args: Args) -> Result<BrokerConfig, String> {
    let mut c = BrokerConfig::default();
    if let Some(path) = &args.config {
        c.apply_file(path).map_err(|e| e.to_string())?;
    }
    if let Some(v) = args.namesrv_addr {
        c.namesrv_addrs = parse_namesrv_addrs(&v);
    }
    c.listen_port = args.listen_port.unwrap_or(c.listen_port);
    c.namesrv_port = args.namesrv_port.unwrap_or(c.namesrv_port);
    c.store_path = args.store_path.unwrap_or(c.store_path);
    // Relative store paths (the default `./ramjet-store`, `--store-path`,
    // `storePathRootDir`) are relative to the working directory, as the reference resolves
    // them; fixed here once so every later use and log line sees the same absolute path.
    c.store_path = std::path::absolute(&c.store_path)
        .map_err(|e| format!("store path {}: {e}", c.store_path.display()))?;
    c.shards = args.shards.unwrap_or(c.shards).max(1);
    if let Some(f) = args.flush_disk_type {
        c.flush = parse_flush(&f).map_err(|e| e.to_string())?;
    }
    c.broker_ip = args.broker_ip.unwrap_or(c.broker_ip);
    c.bind_ip =
        args.bind_ip.unwrap_or(if c.broker_ip.is_loopback() { c.broker_ip } else { c.bind_ip });
    c.cluster = args.cluster.unwrap_or(c.cluster);
    c.broker_name = args.broker_name.unwrap_or(c.broker_name);
    c.broker_id = args.broker_id.unwrap_or(c.broker_id);
    c.segment_size_bytes = args.segment_size.unwrap_or(c.segment_size_bytes);
    c.metrics_port = args.metrics_port.or(c.metrics_port);
    c.grpc_port = args.grpc_port.or(c.grpc_port);
    c.spin_before_park_us = args.spin_before_park_us.unwrap_or(c.spin_before_park_us);
    if let Some(r) = args.broker_role {
        c.broker_role = parse_role(&r).map_err(|e| e.to_string())?;
    }
    c.ha_master_address = args.ha_master_address.or(c.ha_master_address);
    c.check_role()?;
    Ok(c)
}

fn main() {
    ramjet_server::panic::install("ramjet-broker");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match build_config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ramjet-broker: {e}");
            std::process::exit(2);
        }
    };
    for key in &config.ignored_keys {
        tracing::info!(key = %key, "config key not used by ramjet; ignored");
    }
    signal::block_stop_signals();
    ramjet_server::net::limits::install(config.connection_limits.clone());
    ramjet_server::http::install(&config.metrics_limits);
    ramjet_server::table_limits::install(config.table_limits.clone());
    let broker = match runtime::start(config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("ramjet-broker: {e}");
            std::process::exit(1);
        }
    };
    let metrics = broker.metrics_addr.map(|a| format!(" metrics {a}")).unwrap_or_default();
    let ha = broker.ha_addr.map(|a| format!(" ha {a}")).unwrap_or_default();
    let grpc = broker.grpc_addr.map(|a| format!(" grpc {a}")).unwrap_or_default();
    eprintln!(
        "ramjet-broker ready: broker {} namesrv {}{metrics}{ha}{grpc}",
        broker.broker_addr,
        broker.namesrv_addrs.join(";")
    );
    let sig = signal::wait_stop_signal();
    tracing::info!(signal = sig, "stopping");
    signal::exit_on_second_signal();
    broker.stop();
    tracing::info!("stopped cleanly");
}
