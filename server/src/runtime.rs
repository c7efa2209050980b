//! Starting and stopping the broker: sockets, stores, shards, the embedded NameServer.
//!
//! Runs on the main thread. Everything that may fail (store metadata, topics, offsets,
//! ports) is done before any executor starts, so a bad start fails fast with one clear
//! message.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use ramjet_storage::{LogStore, StoreConfig};
use tracing::{error, info, warn};

use crate::client_registry::ClientRegistry;
use crate::clock::now_ms;
use crate::config::{BrokerConfig, BrokerRole};
use crate::consumer_offset::{ConsumerOffsets, PERSIST_INTERVAL_MS};
use crate::durable_file::write_file_durably;
use crate::handler::BrokerService;
use crate::long_poll::LongPollTable;
use crate::net::connection::serve;
use crate::net::listener::bind_group;
use crate::notify::Notify;
use crate::shard::{shard_of_log, Shard, ShardMsg, SHARD_CHANNEL_DEPTH};
use crate::table_limits::TableLimits;
use crate::topic::{
    topic_config, TopicManager, SCHEDULE_TOPIC, TBW102, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
};

/// Locked memory given to each executor for io_uring registered buffers. Small on
/// purpose: the default RLIMIT_MEMLOCK is 8 MiB and DMA buffers beyond the registered
/// pool come from ordinary aligned allocations.
pub const IO_MEMORY_BYTES: usize = 1 << 20;

/// A running broker.
pub struct RunningBroker {
    /// Address clients use (`broker_ip:port`).
    pub broker_addr: SocketAddr,
    /// NameServer addresses the broker registers with.
    pub namesrv_addrs: Vec<String>,
    shards: Vec<flume::Sender<ShardMsg>>,
    joins: Vec<glommio::ExecutorJoinHandle<()>>,
    namesrv_stop: Option<flume::Sender<()>>,
    replication_stop: Option<flume::Sender<()>>,
    /// Address of the `--metrics-port` endpoint, when enabled.
    pub metrics_addr: Option<SocketAddr>,
    /// Address of the HA listener (masters).
    pub ha_addr: Option<SocketAddr>,
    /// Address of the RocketMQ 5.x gRPC front end.
    pub grpc_addr: Option<SocketAddr>,
    grpc: Option<ramjet_grpc::GrpcServer>,
}

/// The gRPC front end's way in: each request is served by a shard (round robin) as if a
/// connection of that shard had received it (`ShardMsg::Dispatch`), so it is routed,
/// forwarded to the queue's owner and checked exactly as a remoting request.
struct ShardBackend {
    shards: Vec<flume::Sender<ShardMsg>>,
    next: std::sync::atomic::AtomicUsize,
}

impl ramjet_grpc::Backend for ShardBackend {
    fn call(
        &self,
        frame: ramjet_proto::Frame,
        peer: SocketAddr,
    ) -> ramjet_grpc::BoxFuture<Option<ramjet_grpc::Reply>> {
        let n = self.shards.len().max(1);
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
        let tx = self.shards.get(i).cloned();
        Box::pin(async move {
            let (reply, rx) = flume::bounded(1);
            tx?.send_async(ShardMsg::Dispatch { frame, peer, reply }).await.ok()?;
            let resp = rx.recv_async().await.ok()??;
            let body = if resp.parts.is_empty() {
                resp.body
            } else {
                let mut b = bytes::BytesMut::with_capacity(resp.body_len());
                for p in resp.body_parts() {
                    b.extend_from_slice(p);
                }
                b.freeze()
            };
            Some(ramjet_grpc::Reply { header: resp.header, body })
        })
    }
}

/// Binds the gRPC port: `grpcServerPort`, else 8081, else (an ephemeral listen port and
/// no port configured, as in tests) an ephemeral one.
fn bind_grpc(config: &BrokerConfig) -> Result<std::net::TcpListener, String> {
    let port = config.grpc_port.unwrap_or(if config.listen_port == 0 { 0 } else { 8081 });
    std::net::TcpListener::bind(SocketAddr::new(config.bind_ip, port))
        .map_err(|e| format!("cannot listen on gRPC port {port}: {e}"))
}

/// The topics every broker has from the start.
fn system_topics(config: &BrokerConfig) -> Vec<ramjet_proto::body::TopicConfig> {
    let mut v = vec![
        topic_config(SCHEDULE_TOPIC, 18, 6),
        topic_config(TRANS_HALF_TOPIC, 1, 6),
        topic_config(TRANS_OP_HALF_TOPIC, 1, 6),
        topic_config("OFFSET_MOVED_EVENT", 1, 6),
        topic_config(&config.cluster, 16, 7),
        topic_config(&config.broker_name, 1, 7),
    ];
    if config.auto_create_topic_enable {
        v.push(topic_config(TBW102, config.default_topic_queue_nums, 7));
    }
    v
}

/// Raises RLIMIT_MEMLOCK to its hard limit (root: unlimited) so io_uring never runs short.
pub fn raise_memlock_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass; no memory of
    // ours is retained by the kernel.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) == 0 {
            let want =
                libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &want) != 0 {
                lim.rlim_cur = lim.rlim_max;
                let _ = libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
            }
        }
    }
}

struct ShardStart {
    id: usize,
    logs: Vec<u32>,
    listeners: Vec<StdListener>,
    offsets: ConsumerOffsets,
    topic_manager: Option<TopicManager>,
}

/// Starts the broker and returns once every shard serves requests.
///
/// # Errors
/// Store, configuration or port problems, as one message.
pub fn start(mut config: BrokerConfig) -> Result<RunningBroker, String> {
    raise_memlock_limit();
    // Controller mode: a master acknowledges writes only within its lease (lease.rs).
    if config.enable_controller_mode && config.broker_role != BrokerRole::Slave {
        crate::lease::enable(config.controller_lease_ms());
    }
    let mut acl = crate::acl::gate::open(&config)?;
    let acl_config = acl.as_ref().map(crate::acl::reload::AclReloader::current);
    let root = config.store_path.clone();
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let shard_count = config.shards.max(1);
    let log_count = ramjet_storage::open_or_create_meta(&root, shard_count as u32)
        .map_err(|e| format!("store {}: {e}", root.display()))?;
    let main = bind_group(config.bind_ip, config.listen_port, shard_count)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", config.bind_ip, config.listen_port))?;
    let port = main[0].local_addr().map_err(|e| e.to_string())?.port();
    let vip = match port.checked_sub(2).map(|p| bind_group(config.bind_ip, p, shard_count)) {
        Some(Ok(v)) => v,
        _ => {
            warn!(port = port.wrapping_sub(2), "VIP port unavailable; serving the main port only");
            Vec::new()
        }
    };
    // Per-shard ports: one plain (not shared) ephemeral listener per shard, advertised
    // through GET_BROKER_RUNTIME_INFO; with one shard the main port is already its own.
    let mut own = Vec::new();
    if config.per_shard_ports && shard_count > 1 {
        for _ in 0..shard_count {
            let l = StdListener::bind(SocketAddr::new(config.bind_ip, 0))
                .map_err(|e| format!("cannot listen on {}:0: {e}", config.bind_ip))?;
            let p = l.local_addr().map_err(|e| e.to_string())?.port();
            config.shard_addrs.push(SocketAddr::new(config.broker_ip, p));
            own.push(l);
        }
    }
    let mut own = own.into_iter();
    let ha_listener = bind_ha(&config, port)?;
    let grpc_listener = bind_grpc(&config)?;
    if let Some(l) = &ha_listener {
        config.ha_listen_port = Some(l.local_addr().map_err(|e| e.to_string())?.port());
    }
    // The embedded NameServer follows broker.conf's aclEnable/aclFilePath: its own reloader
    // of the same file, its denials shown on the broker's /metrics.
    let namesrv_acl = match (&acl, config.namesrv_addrs.is_empty()) {
        (Some(reloader), true) => {
            if config.inner_credentials.is_none() {
                warn!(
                    "aclEnable with the embedded NameServer but no \
                     innerClientAuthenticationCredentials: the broker's registrations are \
                     refused unless its address is white-listed"
                );
            }
            Some((reloader.clone(), crate::acl::namesrv::SharedDenials::default()))
        }
        _ => None,
    };
    let namesrv_denials = namesrv_acl.as_ref().map(|(_, d)| d.clone());
    let (namesrv_listener, namesrv_addrs) = if config.namesrv_addrs.is_empty() {
        let l = bind_group(config.bind_ip, config.namesrv_port, 1).map_err(|e| {
            format!("cannot listen on NameServer port {}: {e}", config.namesrv_port)
        })?;
        let p = l[0].local_addr().map_err(|e| e.to_string())?.port();
        let addr = format!(
            "{}:{p}",
            if config.bind_ip.is_unspecified() { config.broker_ip } else { config.bind_ip }
        );
        (l.into_iter().next(), vec![addr])
    } else {
        (None, config.namesrv_addrs.clone())
    };
    let manager = TopicManager::load(&root, &system_topics(&config))?;
    let initial_topics = manager.table();
    let mut ops_start = Some(crate::shard_ops::OpsStart::prepare(&config)?);
    // A master publishes topic and group changes to its replication sessions.
    let feed = (config.broker_role != BrokerRole::Slave).then(|| {
        let groups = ops_start.as_ref().map(|o| o.groups.table().clone()).unwrap_or_default();
        crate::replication::feed::MetaFeed::new(initial_topics.clone(), &groups)
    });
    let metrics_addr = ops_start.as_ref().and_then(|o| o.metrics_addr());
    let mut manager = Some(manager);
    let mut main = main.into_iter();
    let mut vip = vip.into_iter();
    let mut starts = Vec::new();
    for id in 0..shard_count {
        let logs: Vec<u32> =
            (0..log_count).filter(|&l| shard_of_log(l, shard_count) == id).collect();
        let mut offsets = ConsumerOffsets::load(&root, &logs)?;
        offsets.set_entries_max(TableLimits::per_shard(
            crate::table_limits::limits().offset_entries_max,
            shard_count,
        ));
        let mut listeners: Vec<StdListener> = main.next().into_iter().collect();
        listeners.extend(vip.next());
        listeners.extend(own.next());
        starts.push(ShardStart {
            id,
            logs,
            listeners,
            offsets,
            topic_manager: if id == 0 { manager.take() } else { None },
        });
    }
    let broker_addr = SocketAddr::new(config.broker_ip, port);
    let ha_addr = config.ha_listen_port.filter(|_| ha_listener.is_some()).map(|p| {
        // Registered as haServerAddr: the HA bind address when it names one host.
        let ip = config.ha_bind_ip.filter(|ip| !ip.is_unspecified());
        SocketAddr::new(ip.unwrap_or(config.broker_ip), p)
    });
    let (ha_addr_tx, ha_addr_rx) = flume::unbounded::<String>();
    let config = Arc::new(config);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..shard_count).map(|_| flume::bounded::<ShardMsg>(SHARD_CHANNEL_DEPTH)).unzip();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, String>>();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut joins = Vec::new();
    for (start, rx) in starts.into_iter().zip(receivers) {
        let ops = if start.id == 0 { ops_start.take() } else { None };
        let shard_ha_addr_tx = (start.id == 0).then(|| ha_addr_tx.clone());
        let shard_feed = if start.id == 0 { feed.clone() } else { None };
        let acl_reloader = if start.id == 0 { acl.take() } else { None };
        let shard_namesrv_denials = if start.id == 0 { namesrv_denials.clone() } else { None };
        let ctx = ShardContext {
            ops,
            start,
            rx,
            peers: senders.clone(),
            config: config.clone(),
            log_count,
            shard_count,
            topics: initial_topics.clone(),
            broker_addr,
            namesrv_addrs: namesrv_addrs.clone(),
            ready: ready_tx.clone(),
            ha_addr_tx: shard_ha_addr_tx,
            feed: shard_feed,
            acl_config: acl_config.clone(),
            acl_reloader,
            namesrv_denials: shard_namesrv_denials,
        };
        let id = ctx.start.id;
        let placement =
            if shard_count <= cpus { Placement::Fixed(id % cpus) } else { Placement::Unbound };
        let mut builder = LocalExecutorBuilder::new(placement)
            .name(&format!("shard-{id}"))
            .io_memory(IO_MEMORY_BYTES);
        if config.spin_before_park_us > 0 {
            builder = builder.spin_before_park(Duration::from_micros(config.spin_before_park_us));
        }
        let join = builder
            .spawn(move || async move { run_shard(ctx).await })
            .map_err(|e| format!("cannot start shard {id}: {e}"))?;
        joins.push(join);
    }
    // A master's replication shard answers once its epoch is durable and the logs accept
    // writes.
    let master_ready =
        usize::from(config.broker_role != BrokerRole::Slave && ha_listener.is_some());
    let replication = ReplicationStart {
        config: config.clone(),
        listener: ha_listener,
        peers: senders.clone(),
        broker_addr,
        ha_addr_rx,
        feed,
        ready: ready_tx.clone(),
    };
    let (replication_stop, replication_join) = start_replication(replication)?;
    joins.extend(replication_join);
    let namesrv_stop = match namesrv_listener {
        Some(l) => {
            let (stop_tx, stop_rx) = flume::bounded::<()>(1);
            let ready = ready_tx.clone();
            let join = LocalExecutorBuilder::new(Placement::Unbound)
                .name("namesrv")
                .io_memory(IO_MEMORY_BYTES)
                .spawn(move || async move {
                    let listener = crate::net::listener::adopt(l);
                    let _ = ready.send(Ok(usize::MAX));
                    let stop = async move {
                        let _ = stop_rx.recv_async().await;
                    };
                    let options = crate::namesrv::service::NamesrvOptions {
                        metrics: None,
                        acl: namesrv_acl,
                        controller: None,
                    };
                    crate::namesrv::service::run_namesrv_with(listener, stop, options).await;
                })
                .map_err(|e| format!("cannot start the NameServer: {e}"))?;
            joins.push(join);
            Some(stop_tx)
        }
        None => None,
    };
    drop(ready_tx);
    let expected = shard_count + usize::from(namesrv_stop.is_some()) + master_ready;
    for _ in 0..expected {
        match ready_rx.recv_timeout(Duration::from_secs(300)) {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err("a shard did not start".into()),
        }
    }
    let grpc_port = grpc_listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut options = ramjet_grpc::GrpcOptions::new(
        config.store_path.join("pop"),
        config.broker_name.clone(),
        SocketAddr::new(config.broker_ip, grpc_port),
    );
    options.min_invisible_ms = config.grpc_min_invisible_ms;
    options.max_inflight_per_group = config.grpc_max_inflight_per_group;
    options.max_delivery_attempts = config.grpc_max_delivery_attempts.max(1);
    let backend = std::sync::Arc::new(ShardBackend {
        shards: senders.clone(),
        next: std::sync::atomic::AtomicUsize::new(0),
    });
    let grpc = ramjet_grpc::start(grpc_listener, backend, options)?;
    Ok(RunningBroker {
        broker_addr,
        namesrv_addrs,
        shards: senders,
        joins,
        namesrv_stop,
        replication_stop,
        metrics_addr,
        ha_addr,
        grpc_addr: Some(SocketAddr::new(config.broker_ip, grpc_port)),
        grpc: Some(grpc),
    })
}

/// Binds the HA listener of a master: `haListenPort`, else the listen port + 1; with an
/// ephemeral listen port and that port taken, any free port (the registered HA address
/// says which). Slaves have none.
fn bind_ha(config: &BrokerConfig, port: u16) -> Result<Option<StdListener>, String> {
    if config.broker_role == BrokerRole::Slave {
        return Ok(None);
    }
    let want = config.ha_listen_port.unwrap_or(port.wrapping_add(1));
    let ip = config.ha_bind_ip.unwrap_or(config.bind_ip);
    match bind_group(ip, want, 1) {
        Ok(mut l) => Ok(l.pop()),
        Err(_) if config.listen_port == 0 && config.ha_listen_port.is_none() => {
            let mut l =
                bind_group(ip, 0, 1).map_err(|e| format!("cannot listen on an HA port: {e}"))?;
            Ok(l.pop())
        }
        Err(e) => Err(format!("cannot listen on HA port {want}: {e}")),
    }
}

struct ReplicationStart {
    config: Arc<BrokerConfig>,
    listener: Option<StdListener>,
    peers: Vec<flume::Sender<ShardMsg>>,
    broker_addr: SocketAddr,
    ha_addr_rx: flume::Receiver<String>,
    feed: Option<Arc<crate::replication::feed::MetaFeed>>,
    ready: std::sync::mpsc::Sender<Result<usize, String>>,
}

type ReplicationHandles = (Option<flume::Sender<()>>, Option<glommio::ExecutorJoinHandle<()>>);

/// Starts the replication shard: the HA listener of a master, or a slave's follower.
fn start_replication(start: ReplicationStart) -> Result<ReplicationHandles, String> {
    let ReplicationStart { config, listener, peers, broker_addr, ha_addr_rx, feed, ready } = start;
    let housekeeping_ms = config.ha_housekeeping_interval_ms;
    let segment_size_bytes = config.segment_size_bytes;
    let work: Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send> =
        match (config.broker_role, listener) {
            (BrokerRole::Slave, _) => {
                let slave = crate::replication::slave::SlaveStart {
                    peers,
                    segment_size_bytes,
                    broker_addr: broker_addr.to_string(),
                    ha_master_address: config.ha_master_address.clone(),
                    ha_addr_rx,
                    housekeeping_ms,
                    secret: config.ha_auth_secret.clone(),
                    truncate_acknowledged: config.ha_truncate_acknowledged,
                    store_path: config.store_path.clone(),
                };
                Box::new(move || Box::pin(crate::replication::slave::run(slave)))
            }
            (_, Some(listener)) => {
                let master = crate::replication::master::MasterStart {
                    listener,
                    peers,
                    segment_size_bytes,
                    housekeeping_ms,
                    secret: config.ha_auth_secret.clone(),
                    feed: feed.unwrap_or_default(),
                    stream_pending: config.broker_role == crate::config::BrokerRole::SyncMaster,
                    store_path: config.store_path.clone(),
                    ready,
                };
                Box::new(move || Box::pin(crate::replication::master::run(master)))
            }
            (_, None) => return Ok((None, None)),
        };
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let join = LocalExecutorBuilder::new(Placement::Unbound)
        .name("replication")
        .io_memory(IO_MEMORY_BYTES)
        .spawn(move || async move {
            let stop = async move {
                let _ = stop_rx.recv_async().await;
            };
            futures_lite::future::or(work(), stop).await;
        })
        .map_err(|e| format!("cannot start the replication shard: {e}"))?;
    Ok((Some(stop_tx), Some(join)))
}

impl RunningBroker {
    /// Number of shards serving requests.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Serves `frame` on shard `shard` (modulo the shard count) as if a connection from
    /// `peer` had received it: the path every client request takes after decoding, without
    /// a socket (used by the in-process fuzz tests). The receiver yields the response, or
    /// `None` for a one-way request; it is disconnected when the broker stops first.
    pub fn dispatch(
        &self,
        shard: usize,
        frame: ramjet_proto::Frame,
        peer: SocketAddr,
    ) -> flume::Receiver<Option<crate::net::connection::Response>> {
        let (reply, rx) = flume::bounded(1);
        if let Some(s) = self.shards.get(shard % self.shards.len().max(1)) {
            let _ = s.send(ShardMsg::Dispatch { frame, peer, reply });
        }
        rx
    }

    /// Stops every shard cleanly (flush, checkpoint, clean mark) and waits for them.
    pub fn stop(mut self) {
        // The gRPC front end first: its requests need the shards.
        if let Some(g) = self.grpc.take() {
            g.stop();
        }
        let mut acks = Vec::new();
        for s in &self.shards {
            let (done, ack) = flume::bounded(1);
            if s.send(ShardMsg::Shutdown { done }).is_ok() {
                acks.push(ack);
            }
        }
        for ack in acks {
            let _ = ack.recv_timeout(Duration::from_secs(30));
        }
        if let Some(stop) = self.namesrv_stop {
            let _ = stop.send(());
        }
        if let Some(stop) = self.replication_stop {
            let _ = stop.send(());
        }
        for j in self.joins {
            let _ = j.join();
        }
    }
}

struct ShardContext {
    start: ShardStart,
    rx: flume::Receiver<ShardMsg>,
    peers: Vec<flume::Sender<ShardMsg>>,
    config: Arc<BrokerConfig>,
    log_count: u32,
    shard_count: usize,
    topics: Arc<crate::topic::TopicTable>,
    broker_addr: SocketAddr,
    namesrv_addrs: Vec<String>,
    ready: std::sync::mpsc::Sender<Result<usize, String>>,
    ops: Option<crate::shard_ops::OpsStart>,
    ha_addr_tx: Option<flume::Sender<String>>,
    /// Shard 0 of a master: the replication metadata feed.
    feed: Option<Arc<crate::replication::feed::MetaFeed>>,
    /// The ACL configuration at start (`None`: ACL off).
    acl_config: Option<Arc<crate::acl::config::AclConfig>>,
    /// Shard 0: the ACL file's reloader.
    acl_reloader: Option<crate::acl::reload::AclReloader>,
    /// Shard 0: the embedded NameServer's ACL denials, for `/metrics`.
    namesrv_denials: Option<crate::acl::namesrv::SharedDenials>,
}

async fn run_shard(ctx: ShardContext) {
    let id = ctx.start.id;
    let mut store_config = StoreConfig::new(ctx.config.store_path.clone());
    store_config.segment_size_bytes = ctx.config.segment_size_bytes;
    store_config.flush = ctx.config.flush;
    store_config.tags_code_of = crate::schedule::tags_code_of;
    store_config.retention = ctx.config.retention.clone();
    let mut logs = HashMap::new();
    for &log in &ctx.start.logs {
        match LogStore::open(&store_config, log).await {
            Ok(s) => {
                // A slave's logs change only by replication (byte-identical to the
                // master's); every local append is refused. A master's accept appends
                // once its replication shard made the new epoch durable
                // (`replication::master::begin_term`).
                s.set_writable(false);
                logs.insert(log, s);
            }
            Err(e) => {
                let _ =
                    ctx.ready.send(Err(format!("shard {id}: cannot open commit log {log}: {e}")));
                return;
            }
        }
    }
    let (groups, metrics_listener) = crate::shard_ops::OpsStart::split(ctx.ops);
    let shard = Rc::new(Shard {
        metrics: crate::metrics::ShardMetrics::default(),
        settings: std::cell::RefCell::new(Arc::new(
            crate::live_settings::LiveSettings::from_config(&ctx.config),
        )),
        id,
        shard_count: ctx.shard_count,
        log_count: ctx.log_count,
        config: ctx.config.clone(),
        logs,
        peers: ctx.peers,
        topics: std::cell::RefCell::new(ctx.topics),
        zero: ctx.start.topic_manager.map(|manager| crate::shard::Shard0State {
            topic_manager: std::cell::RefCell::new(manager),
            clients: std::cell::RefCell::new(ClientRegistry::default()),
            subscription_groups: std::cell::RefCell::new(groups),
            locks: std::cell::RefCell::new(crate::lock_manager::LockManager::default()),
            register_kick: Notify::new(),
            namesrv_acl_denials: ctx.namesrv_denials,
        }),
        offsets: std::cell::RefCell::new(ctx.start.offsets),
        long_poll: std::cell::RefCell::new(LongPollTable::new(TableLimits::per_shard(
            crate::table_limits::limits().long_poll_waiters_max,
            ctx.shard_count,
        ))),
        store_host: ctx.broker_addr,
        send_cursor: std::cell::Cell::new(id),
        sequence: std::cell::Cell::new(0),
        persist_lock: glommio::sync::Semaphore::new(1),
        subscriptions: std::cell::RefCell::new(Arc::default()),
        sql_filters: std::cell::RefCell::default(),
        connections: std::cell::RefCell::new(HashMap::new()),
        transactions: std::cell::RefCell::new(Default::default()),
        transaction_lock: glommio::sync::Semaphore::new(1),
        replica: crate::replication::ShardReplica::new(
            ctx.config.broker_role,
            ctx.ha_addr_tx,
            ctx.feed,
        ),
        acl: ctx.acl_config.map(crate::acl::gate::AclGate::new),
    });
    let slave = ctx.config.broker_role == BrokerRole::Slave;
    let mut tasks = Vec::new();
    for l in ctx.start.listeners {
        let listener = crate::net::listener::adopt(l);
        tasks.push(glommio::spawn_local(accept_loop(listener, shard.clone())));
    }
    tasks.push(glommio::spawn_local(persist_loop(shard.clone())));
    tasks.push(glommio::spawn_local(retention_loop(shard.clone())));
    tasks.push(glommio::spawn_local(crate::metrics::background_loop(shard.clone())));
    if let Some(l) = metrics_listener {
        let render = crate::metrics::http_render(shard.clone());
        tasks.push(glommio::spawn_local(crate::http::serve(l, render)));
    }
    // A slave re-puts nothing: the master's delivery and checks reach it as log bytes.
    if shard.shard_for(TRANS_HALF_TOPIC, 0) == id && !slave {
        tasks.push(glommio::spawn_local(crate::transaction::check_loop(shard.clone())));
    }
    for level in 1..=crate::schedule::max_level() {
        if shard.shard_for(SCHEDULE_TOPIC, level - 1) == id && !slave {
            tasks.push(glommio::spawn_local(crate::schedule::delivery_loop(shard.clone(), level)));
        }
    }
    if id == 0 && ctx.config.enable_controller_mode {
        tasks.push(glommio::spawn_local(crate::controller_client::heartbeat_loop(shard.clone())));
    }
    if id == 0 {
        tasks.push(glommio::spawn_local(crate::register::registration_loop(
            shard.clone(),
            ctx.namesrv_addrs.clone(),
        )));
        tasks.push(glommio::spawn_local(client_expiry_loop(shard.clone())));
        if let Some(reloader) = ctx.acl_reloader {
            tasks
                .push(glommio::spawn_local(crate::acl::gate::reload_loop(shard.clone(), reloader)));
        }
        if slave {
            if let Some(ha) = &ctx.config.ha_master_address {
                *shard.replica.master_addr.borrow_mut() =
                    crate::replication::metadata::broker_addr_of_ha(ha);
            }
            tasks
                .push(glommio::spawn_local(crate::replication::metadata::sync_loop(shard.clone())));
        }
    }
    let _ = ctx.ready.send(Ok(id));
    let done = crate::shard::inbox::serve(shard.clone(), ctx.rx).await;
    drop(tasks);
    shutdown(&shard, &ctx.namesrv_addrs).await;
    if let Some(done) = done {
        let _ = done.send(());
    }
}

async fn accept_loop(listener: TcpListener, shard: Rc<Shard>) {
    let service = Rc::new(BrokerService { shard });
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(serve(stream, service.clone())).detach();
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn persist_offsets(shard: &Shard) {
    let files = shard.offsets.borrow_mut().take_dirty();
    for (path, data) in files {
        if let Err(e) = write_file_durably(path.clone(), data).await {
            error!(path = %path.display(), error = %e, "cannot persist consumer offsets");
        }
    }
}

async fn persist_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(Duration::from_millis(PERSIST_INTERVAL_MS)).await;
        persist_offsets(&shard).await;
    }
}

/// Deletes expired segments of this shard's logs and refuses writes on a full disk
/// (storage decides; this only gives it the time and the disk ratio).
async fn retention_loop(shard: Rc<Shard>) {
    let interval = Duration::from_millis(shard.config.retention_interval_ms.max(100));
    loop {
        glommio::timer::sleep(interval).await;
        let root = shard.config.store_path.clone();
        let ratio = match glommio::executor()
            .spawn_blocking(move || ramjet_storage::disk_used_ratio(&root))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read disk usage; retention skipped");
                continue;
            }
        };
        for (log, store) in &shard.logs {
            match store.run_retention(now_ms() as i64, ratio).await {
                Ok(report) => tracing::debug!(log, ?report, "retention"),
                Err(e) => warn!(log, error = %e, "retention failed"),
            }
        }
    }
}

async fn client_expiry_loop(shard: Rc<Shard>) {
    loop {
        glommio::timer::sleep(Duration::from_secs(10)).await;
        let Some(zero) = shard.zero.as_ref() else { return };
        let change = zero.clients.borrow_mut().expire(now_ms());
        crate::handler::client::notify_changes(&shard, &change);
    }
}

async fn shutdown(shard: &Rc<Shard>, namesrv_addrs: &[String]) {
    if shard.id == 0 {
        crate::register::unregister_all(shard, namesrv_addrs).await;
    }
    persist_offsets(shard).await;
    for (log, store) in &shard.logs {
        if let Err(e) = store.close().await {
            error!(log, error = %e, "closing commit log failed");
        }
    }
    info!(shard = shard.id, "shard stopped");
}
