//! Broker configuration: defaults as RocketMQ's, a `broker.conf` (Java properties) file,
//! and command-line flags, which override the file.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use ramjet_proto::text::clip_echo;
use ramjet_storage::FlushMode;

/// The broker's role in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    /// Master that acknowledges before replication.
    AsyncMaster,
    /// Master that acknowledges after a slave holds the data.
    SyncMaster,
    /// Read-only replica.
    Slave,
}

/// Everything a broker process needs to know. Immutable after start.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// NameServers to register with; empty means "run the embedded one".
    pub namesrv_addrs: Vec<String>,
    /// Main port (10911).
    pub listen_port: u16,
    /// Embedded NameServer port (9876).
    pub namesrv_port: u16,
    /// Store root.
    pub store_path: PathBuf,
    /// Shard (executor) count.
    pub shards: usize,
    /// Flush mode of the commit logs.
    pub flush: FlushMode,
    /// Address registered with the NameServer.
    pub broker_ip: IpAddr,
    /// Address the listeners bind.
    pub bind_ip: IpAddr,
    /// Cluster name.
    pub cluster: String,
    /// Broker name.
    pub broker_name: String,
    /// 0 master, >0 slave.
    pub broker_id: i64,
    /// Role.
    pub broker_role: BrokerRole,
    /// Create unknown topics on send through TBW102.
    pub auto_create_topic_enable: bool,
    /// Queue count of auto-created topics' template (TBW102).
    pub default_topic_queue_nums: i32,
    /// Commit-log segment size.
    pub segment_size_bytes: u64,
    /// Largest message body accepted (4 MiB).
    pub max_message_size_bytes: usize,
    /// Re-registration period with the NameServers.
    pub register_interval_ms: u64,
    /// Long-poll hold cap (a pull's suspend timeout is bounded by it).
    pub long_poll_hold_ms_max: u64,
    /// Prometheus port.
    pub metrics_port: Option<u16>,
    /// Retention: reserved time, delete hours and disk ratios.
    pub retention: ramjet_storage::RetentionConfig,
    /// How often each shard runs retention for its logs.
    pub retention_interval_ms: u64,
    /// A half message older than this with no end is checked (`transactionTimeOut`).
    pub transaction_timeout_ms: u64,
    /// Checks of one half message before it is dropped (`transactionCheckMax`).
    pub transaction_check_max: i32,
    /// Period of the check task (`transactionCheckInterval`).
    pub transaction_check_interval_ms: u64,
    /// How long an idle shard spins before it sleeps (0: sleep at once). Spinning trades
    /// CPU for latency: a sleeping executor costs a context switch and a process-wide
    /// memory barrier (IPIs) per wake-up.
    pub spin_before_park_us: u64,
    /// Each shard also listens on a port of its own (`perShardPorts`, default true), which
    /// GET_BROKER_RUNTIME_INFO advertises, so ramjet's client sends a queue's requests over
    /// a connection the queue's owner accepted (no cross-shard hop).
    pub per_shard_ports: bool,
    /// The per-shard addresses, by shard (set at start when `per_shard_ports`; empty
    /// otherwise). Not a configuration key.
    pub shard_addrs: Vec<SocketAddr>,
    /// Master HA address a slave replicates from (`haMasterAddress`); `None`: the one
    /// the NameServer returns on registration.
    pub ha_master_address: Option<String>,
    /// HA port (`haListenPort`); `None`: listen port + 1.
    pub ha_listen_port: Option<u16>,
    /// SYNC_MASTER: how long a send waits for a slave (`syncFlushTimeout`).
    pub sync_flush_timeout_ms: u64,
    /// SYNC_MASTER: a slave further behind than this is not in sync
    /// (`haMaxGapNotInSync`): sends answer SLAVE_NOT_AVAILABLE at once.
    pub ha_max_gap_not_in_sync_bytes: u64,
    /// A replication peer silent this long is dropped (`haHousekeepingInterval`).
    pub ha_housekeeping_interval_ms: u64,
    /// `haAuthSecret`: the replication secret both sides of an HA session must prove
    /// (`replication::auth`); `None` (empty): sessions are not authenticated.
    pub ha_auth_secret: Option<crate::replication::auth::HaSecret>,
    /// `haTruncateAcknowledgedEnable`: a slave may truncate log bytes it has acknowledged
    /// when its master ends before them (off: it refuses and stops replicating until an
    /// operator restarts it with this on).
    pub ha_truncate_acknowledged: bool,
    /// `enableControllerMode`: heartbeats to the controller, lease fencing (`lease.rs`).
    pub enable_controller_mode: bool,
    /// `controllerAddr` (`h:p;h:p`): the controller members.
    pub controller_addrs: Vec<String>,
    /// `controllerHeartBeatTimeoutMills`: how long the controller waits for a heartbeat.
    pub controller_heartbeat_timeout_ms: u64,
    /// `controllerLeaseMills` (ramjet's): how long after a heartbeat the controller
    /// answered a master keeps acknowledging writes; below
    /// `controllerHeartBeatTimeoutMills` (0: half of it).
    pub controller_lease_ms: u64,
    /// `brokerHeartbeatInterval`: interval of heartbeats to the controller.
    pub broker_heartbeat_interval_ms: u64,
    /// `haBindAddress`: the HA listener's address (`None`: the broker's bind address).
    pub ha_bind_ip: Option<IpAddr>,
    /// `metricsBindAddress`: the metrics listener's address (`None`: the broker's bind
    /// address).
    pub metrics_bind_ip: Option<IpAddr>,
    /// The master suggests a slave to consumers reading far behind (`slaveReadEnable`).
    pub slave_read_enable: bool,
    /// Serve SQL92 property filters (`enablePropertyFilter`; off by default, as the
    /// reference): off, CHECK_CLIENT_CONFIG and pulls with a SQL92 subscription are
    /// answered SYSTEM_ERROR.
    pub enable_property_filter: bool,
    /// "Far behind": more than this percentage of physical memory behind the log's end
    /// (`accessMessageInMemoryMaxRatio`).
    pub access_message_in_memory_max_ratio: u32,
    /// Register with the reference's compressed body (`compressedRegister`); a body whose
    /// JSON would pass `register::REGISTER_JSON_BYTES_MAX` is compressed regardless.
    pub compressed_register: bool,
    /// Connection limits of the remoting listeners (process-wide).
    pub connection_limits: crate::net::limits::ConnectionLimits,
    /// Bounds of the metrics and the `/metrics` listener.
    pub metrics_limits: crate::metrics::MetricsLimits,
    /// Bounds on tables clients can grow (process-wide once installed).
    pub table_limits: crate::table_limits::TableLimits,
    /// Check every request against `plain_acl.yml` (`aclEnable`; off by default).
    pub acl_enable: bool,
    /// The ACL file (`aclFilePath`); `None`: `$ROCKETMQ_HOME/conf/plain_acl.yml`.
    pub acl_file_path: Option<String>,
    /// The account the broker signs its own outgoing requests with (registration with
    /// the NameServers, a slave's metadata sync): the reference's (5.3+)
    /// `innerClientAuthenticationCredentials`, JSON `{"accessKey":..,"secretKey":..}`.
    /// `None` (key absent, or a blank key or secret, as the reference): unsigned.
    pub inner_credentials: Option<ramjet_proto::acl::Credentials>,
    /// Port of the RocketMQ 5.x gRPC front end (`grpcServerPort`, 8081; 0 = ephemeral);
    /// `None`: the default, which becomes ephemeral when the listen port is (tests).
    pub grpc_port: Option<u16>,
    /// gRPC: shortest invisible duration a receive may ask for (`grpcMinInvisibleTimeMs`).
    pub grpc_min_invisible_ms: u64,
    /// gRPC: most messages of one group invisible at once (`grpcMaxInflightPerGroup`).
    pub grpc_max_inflight_per_group: usize,
    /// gRPC: deliveries before the DLQ when the group has no `retryMaxTimes`
    /// (`grpcMaxDeliveryAttempts`).
    pub grpc_max_delivery_attempts: u32,
    /// Keys of the config file this version does not use.
    pub ignored_keys: Vec<String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            namesrv_addrs: Vec::new(),
            listen_port: 10911,
            namesrv_port: 9876,
            store_path: PathBuf::from("./ramjet-store"),
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            flush: FlushMode::Async,
            broker_ip: default_broker_ip(),
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            cluster: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            broker_role: BrokerRole::AsyncMaster,
            auto_create_topic_enable: true,
            default_topic_queue_nums: 8,
            segment_size_bytes: 1 << 30,
            max_message_size_bytes: 4 * 1024 * 1024,
            register_interval_ms: 30_000,
            long_poll_hold_ms_max: 30_000,
            metrics_port: None,
            grpc_port: None,
            grpc_min_invisible_ms: 10_000,
            grpc_max_inflight_per_group: 65_536,
            grpc_max_delivery_attempts: 17,
            spin_before_park_us: 50,
            per_shard_ports: true,
            shard_addrs: Vec::new(),
            retention: ramjet_storage::RetentionConfig::default(),
            retention_interval_ms: 10_000,
            transaction_timeout_ms: 6_000,
            transaction_check_max: 15,
            transaction_check_interval_ms: 30_000,
            ha_master_address: None,
            ha_listen_port: None,
            sync_flush_timeout_ms: 5_000,
            ha_max_gap_not_in_sync_bytes: 256 * 1024 * 1024,
            ha_housekeeping_interval_ms: 20_000,
            ha_auth_secret: None,
            ha_truncate_acknowledged: false,
            enable_controller_mode: false,
            controller_addrs: Vec::new(),
            controller_heartbeat_timeout_ms: 10_000,
            controller_lease_ms: 0,
            broker_heartbeat_interval_ms: 1_000,
            ha_bind_ip: None,
            metrics_bind_ip: None,
            slave_read_enable: false,
            enable_property_filter: false,
            access_message_in_memory_max_ratio: 40,
            compressed_register: false,
            connection_limits: crate::net::limits::ConnectionLimits::default(),
            metrics_limits: crate::metrics::MetricsLimits::default(),
            table_limits: crate::table_limits::TableLimits::default(),
            acl_enable: false,
            acl_file_path: None,
            inner_credentials: None,
            ignored_keys: Vec::new(),
        }
    }
}

/// RocketMQ's `brokerIP1` default: the first non-loopback IPv4 address, else 127.0.0.1.
pub fn default_broker_ip() -> IpAddr {
    // Connecting a UDP socket sends nothing; it only asks the kernel for a route. With no
    // route (no network) this fails and the loopback address is used.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(a) if !a.ip().is_loopback() && !a.ip().is_unspecified() => a.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

/// Errors of configuration parsing.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// File path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A value does not parse.
    Invalid {
        /// Key.
        key: String,
        /// Value.
        value: String,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            ConfigError::Invalid { key, value } => {
                write!(f, "invalid value \"{}\" for {}", clip_echo(value), clip_echo(key))
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses Java-properties text (`key=value` or `key: value`, `#`/`!` comments).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let idx = l.find(['=', ':'])?;
            Some((l[..idx].trim().to_string(), l[idx + 1..].trim().to_string()))
        })
        .collect()
}

pub(crate) fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid { key: key.into(), value: value.into() })
}

/// `innerClientAuthenticationCredentials`: the reference's `SessionCredentials` as JSON
/// (`accessKey`, `secretKey`, optional `securityToken`). A blank value, access key or
/// secret key means no credentials (the reference then signs nothing).
///
/// # Errors
/// Not such a JSON object; the error does not echo the value (it holds a secret).
fn parse_credentials(
    key: &str,
    value: &str,
) -> Result<Option<ramjet_proto::acl::Credentials>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Session {
        access_key: Option<String>,
        secret_key: Option<String>,
        security_token: Option<String>,
    }
    if value.trim().is_empty() {
        return Ok(None);
    }
    let invalid = || ConfigError::Invalid {
        key: key.into(),
        value: "<not a JSON object with accessKey and secretKey>".into(),
    };
    let session: Session = serde_json::from_str(value).map_err(|_| invalid())?;
    let blank = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim().is_empty());
    if blank(&session.access_key) || blank(&session.secret_key) {
        return Ok(None);
    }
    Ok(Some(ramjet_proto::acl::Credentials {
        access_key: session.access_key.unwrap_or_default(),
        secret_key: session.secret_key.unwrap_or_default(),
        security_token: session.security_token.filter(|t| !t.trim().is_empty()),
    }))
}

/// A boolean key's value (`true`/`false`, any case, or `1`/`0`).
///
/// # Errors
/// Anything else, naming the key.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Invalid { key: key.into(), value: value.into() }),
    }
}

/// Parses a disk ratio given as a percentage (`75`) or, as 4.x system properties are, a
/// fraction (`0.85`).
fn parse_percent(key: &str, value: &str) -> Result<f64, ConfigError> {
    let n: f64 = parse(key, value)?;
    let ratio = if n > 1.0 { n / 100.0 } else { n };
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(ConfigError::Invalid { key: key.into(), value: value.into() })
    }
}

/// Parses a flush mode name.
///
/// # Errors
/// Anything but ASYNC_FLUSH / SYNC_FLUSH.
pub fn parse_flush(value: &str) -> Result<FlushMode, ConfigError> {
    match value {
        "ASYNC_FLUSH" => Ok(FlushMode::Async),
        "SYNC_FLUSH" => Ok(FlushMode::Sync),
        _ => Err(ConfigError::Invalid { key: "flushDiskType".into(), value: value.into() }),
    }
}

/// Parses a broker role name.
///
/// # Errors
/// Anything but the three role names.
pub fn parse_role(value: &str) -> Result<BrokerRole, ConfigError> {
    match value {
        "ASYNC_MASTER" => Ok(BrokerRole::AsyncMaster),
        "SYNC_MASTER" => Ok(BrokerRole::SyncMaster),
        "SLAVE" => Ok(BrokerRole::Slave),
        _ => Err(ConfigError::Invalid { key: "brokerRole".into(), value: value.into() }),
    }
}

/// Splits a `h:p;h:p` NameServer list.
pub fn parse_namesrv_addrs(value: &str) -> Vec<String> {
    value.split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

impl BrokerConfig {
    /// Checks the role against the broker id, as the reference does at start: a slave's
    /// id is above 0, a master's is 0.
    ///
    /// # Errors
    /// A slave with id 0 or below, or a master with another id.
    pub fn check_role(&self) -> Result<(), String> {
        match self.broker_role {
            BrokerRole::Slave if self.broker_id <= 0 => {
                Err(format!("a SLAVE needs brokerId > 0, not {}", self.broker_id))
            }
            BrokerRole::AsyncMaster | BrokerRole::SyncMaster if self.broker_id != 0 => {
                Err(format!(
                    "a master has brokerId 0, not {} (use --broker-role SLAVE for a slave)",
                    self.broker_id
                ))
            }
            _ => Ok(()),
        }?;
        if self.enable_controller_mode {
            if self.controller_addrs.is_empty() {
                return Err("enableControllerMode=true needs controllerAddr".into());
            }
            let lease = self.controller_lease_ms();
            if lease == 0 || lease >= self.controller_heartbeat_timeout_ms {
                return Err(format!(
                    "controllerLeaseMills {lease} must be above 0 and below \
                     controllerHeartBeatTimeoutMills {} (a fenced master must stop \
                     acknowledging before the controller elects another)",
                    self.controller_heartbeat_timeout_ms
                ));
            }
        }
        Ok(())
    }

    /// The master's lease in controller mode: `controllerLeaseMills`, or half of
    /// `controllerHeartBeatTimeoutMills` when 0.
    pub fn controller_lease_ms(&self) -> u64 {
        if self.controller_lease_ms == 0 {
            self.controller_heartbeat_timeout_ms / 2
        } else {
            self.controller_lease_ms
        }
    }

    /// Applies a `broker.conf` file.
    ///
    /// # Errors
    /// Unreadable file or a value that does not parse.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::Read { path: path.to_path_buf(), error })?;
        self.apply_properties(&parse_properties(&text))
    }

    /// Applies parsed properties; unknown keys are collected in `ignored_keys`.
    ///
    /// # Errors
    /// A value that does not parse.
    pub fn apply_properties(
        &mut self,
        props: &BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        for (k, v) in props {
            match k.as_str() {
                "listenPort" => self.listen_port = parse(k, v)?,
                "grpcServerPort" => self.grpc_port = Some(parse(k, v)?),
                "grpcMinInvisibleTimeMs" => self.grpc_min_invisible_ms = parse(k, v)?,
                "grpcMaxInflightPerGroup" => self.grpc_max_inflight_per_group = parse(k, v)?,
                "grpcMaxDeliveryAttempts" => self.grpc_max_delivery_attempts = parse(k, v)?,
                "perShardPorts" => self.per_shard_ports = parse(k, v)?,
                "storePathRootDir" => self.store_path = PathBuf::from(v),
                "storePathCommitLog" => {}
                "flushDiskType" => self.flush = parse_flush(v)?,
                "brokerClusterName" => self.cluster = v.clone(),
                "brokerName" => self.broker_name = v.clone(),
                "brokerId" => self.broker_id = parse(k, v)?,
                "brokerRole" => self.broker_role = parse_role(v)?,
                "brokerIP1" => self.broker_ip = parse(k, v)?,
                "namesrvAddr" => self.namesrv_addrs = parse_namesrv_addrs(v),
                "autoCreateTopicEnable" => self.auto_create_topic_enable = parse_bool(k, v)?,
                "defaultTopicQueueNums" => self.default_topic_queue_nums = parse(k, v)?,
                "mapedFileSizeCommitLog" | "mappedFileSizeCommitLog" => {
                    self.segment_size_bytes = parse(k, v)?
                }
                "maxMessageSize" => self.max_message_size_bytes = parse(k, v)?,
                "registerNameServerPeriod" => self.register_interval_ms = parse(k, v)?,
                "transactionTimeOut" => self.transaction_timeout_ms = parse(k, v)?,
                "fileReservedTime" => {
                    let hours: f64 = parse(k, v)?;
                    self.retention.file_reserved_time_ms = (hours * 3_600_000.0) as i64;
                }
                "deleteWhen" => {
                    self.retention.delete_when_hours =
                        ramjet_storage::retention::parse_delete_when(v).map_err(|_| {
                            ConfigError::Invalid { key: k.clone(), value: v.clone() }
                        })?
                }
                "diskMaxUsedSpaceRatio" => {
                    self.retention.disk_max_used_space_ratio = parse_percent(k, v)?
                }
                "diskSpaceCleanForciblyRatio" => {
                    self.retention.disk_space_clean_forcibly_ratio = parse_percent(k, v)?
                }
                "diskSpaceWarningLevelRatio" => {
                    self.retention.disk_space_warning_level_ratio = parse_percent(k, v)?
                }
                "cleanResourceInterval" => self.retention_interval_ms = parse(k, v)?,
                "transactionCheckMax" => self.transaction_check_max = parse(k, v)?,
                "transactionCheckInterval" => self.transaction_check_interval_ms = parse(k, v)?,
                "haMasterAddress" => {
                    self.ha_master_address = Some(v.clone()).filter(|a| !a.is_empty())
                }
                "haListenPort" => self.ha_listen_port = Some(parse(k, v)?),
                "syncFlushTimeout" => self.sync_flush_timeout_ms = parse(k, v)?,
                "haMaxGapNotInSync" => self.ha_max_gap_not_in_sync_bytes = parse(k, v)?,
                "haHousekeepingInterval" => self.ha_housekeeping_interval_ms = parse(k, v)?,
                "haAuthSecret" => self.ha_auth_secret = crate::replication::auth::HaSecret::new(v),
                "haTruncateAcknowledgedEnable" => self.ha_truncate_acknowledged = parse_bool(k, v)?,
                "enableControllerMode" => self.enable_controller_mode = parse_bool(k, v)?,
                "controllerAddr" => {
                    self.controller_addrs = v
                        .split(';')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "controllerHeartBeatTimeoutMills" => {
                    self.controller_heartbeat_timeout_ms = parse(k, v)?
                }
                "controllerLeaseMills" => self.controller_lease_ms = parse(k, v)?,
                "brokerHeartbeatInterval" => self.broker_heartbeat_interval_ms = parse(k, v)?,
                "haBindAddress" => self.ha_bind_ip = Some(parse(k, v)?),
                "metricsBindAddress" => self.metrics_bind_ip = Some(parse(k, v)?),
                "slaveReadEnable" => self.slave_read_enable = parse_bool(k, v)?,
                "enablePropertyFilter" => self.enable_property_filter = parse_bool(k, v)?,
                "compressedRegister" => self.compressed_register = parse_bool(k, v)?,
                "aclEnable" => self.acl_enable = parse_bool(k, v)?,
                "aclFilePath" => self.acl_file_path = Some(v.clone()),
                "innerClientAuthenticationCredentials" => {
                    self.inner_credentials = parse_credentials(k, v)?
                }
                "accessMessageInMemoryMaxRatio" => {
                    self.access_message_in_memory_max_ratio = parse(k, v)?
                }
                _ => {
                    if !apply_connection_limit(&mut self.connection_limits, k, v)?
                        && !apply_metrics_limit(&mut self.metrics_limits, k, v)?
                        && !self.table_limits.apply(k, v)?
                    {
                        self.ignored_keys.push(k.clone());
                    }
                }
            }
        }
        Ok(())
    }
}

/// Applies one connection-limit key (broker.conf and namesrv.conf share them); false when
/// `key` is not one of them.
///
/// # Errors
/// A value that does not parse.
pub fn apply_connection_limit(
    limits: &mut crate::net::limits::ConnectionLimits,
    key: &str,
    value: &str,
) -> Result<bool, ConfigError> {
    let secs = |v: &str| parse::<u64>(key, v).map(std::time::Duration::from_secs);
    match key {
        "serverMaxConnections" => limits.connections_max = parse(key, value)?,
        "serverMaxConnectionsPerAddress" => limits.connections_per_address_max = parse(key, value)?,
        "serverChannelMaxIdleTimeSeconds" => limits.idle_timeout = secs(value)?,
        "serverWriteTimeoutSeconds" => limits.write_timeout = secs(value)?,
        "serverPartialFrameBytesMax" => limits.partial_frame_bytes_max = parse(key, value)?,
        "serverConnectionResponseBytesMax" => {
            limits.connection_response_bytes_max = parse(key, value)?
        }
        "serverResponseBytesMax" => limits.response_bytes_max = parse(key, value)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Applies one metrics key (`metricsMaxSeries`, `metricsMaxConnections`,
/// `metricsWriteTimeoutSeconds`); false when `key` is not one of them.
///
/// # Errors
/// A value that does not parse.
pub fn apply_metrics_limit(
    limits: &mut crate::metrics::MetricsLimits,
    key: &str,
    value: &str,
) -> Result<bool, ConfigError> {
    match key {
        "metricsMaxSeries" => limits.max_series = parse(key, value)?,
        "metricsMaxConnections" => limits.max_connections = parse(key, value)?,
        "metricsWriteTimeoutSeconds" => {
            limits.write_timeout = std::time::Duration::from_secs(parse(key, value)?)
        }
        _ => return Ok(false),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_conf_keys_override_defaults_and_unknown_keys_are_collected() {
        let text = "# comment\nbrokerClusterName = C1\nbrokerName=b1\nbrokerId=0\n\
                    flushDiskType=SYNC_FLUSH\nlistenPort=20911\nnamesrvAddr=1.2.3.4:9876;5.6.7.8:9876\n\
                    brokerRole=SYNC_MASTER\nsomethingElse=1\n";
        let mut c = BrokerConfig::default();
        c.apply_properties(&parse_properties(text)).expect("parses");
        assert_eq!(c.cluster, "C1");
        assert_eq!(c.broker_name, "b1");
        assert_eq!(c.flush, FlushMode::Sync);
        assert_eq!(c.listen_port, 20911);
        assert_eq!(c.namesrv_addrs, vec!["1.2.3.4:9876", "5.6.7.8:9876"]);
        assert_eq!(c.broker_role, BrokerRole::SyncMaster);
        assert_eq!(c.ignored_keys, vec!["somethingElse".to_string()]);
    }

    // Goal: the ACL keys are read (off by default) and a bad aclEnable value is an error.
    #[test]
    fn acl_keys() {
        let mut c = BrokerConfig::default();
        assert!(!c.acl_enable && c.acl_file_path.is_none());
        let props = parse_properties("aclEnable=true\naclFilePath=/etc/acl.yml\n");
        c.apply_properties(&props).expect("parses");
        assert!(c.acl_enable);
        assert_eq!(c.acl_file_path.as_deref(), Some("/etc/acl.yml"));
        assert!(c.ignored_keys.is_empty());
        let bad = parse_properties("aclEnable=maybe\n");
        assert!(BrokerConfig::default().apply_properties(&bad).is_err());
    }

    // Goal: the broker's own credentials are the reference's JSON key; blank parts mean
    // none; a bad value is an error that does not echo the secret.
    #[test]
    fn inner_credentials_key() {
        let mut c = BrokerConfig::default();
        assert!(c.inner_credentials.is_none());
        let text = r#"innerClientAuthenticationCredentials={"accessKey":"rocketmq2","secretKey":"12345678"}"#;
        c.apply_properties(&parse_properties(text)).expect("parses");
        let creds = c.inner_credentials.expect("credentials");
        assert_eq!(
            (creds.access_key.as_str(), creds.secret_key.as_str()),
            ("rocketmq2", "12345678")
        );
        assert!(creds.security_token.is_none());
        for blank in [
            "innerClientAuthenticationCredentials=",
            r#"innerClientAuthenticationCredentials={"accessKey":"rocketmq2","secretKey":" "}"#,
            r#"innerClientAuthenticationCredentials={"secretKey":"12345678"}"#,
        ] {
            let mut c = BrokerConfig::default();
            c.apply_properties(&parse_properties(blank)).expect("parses");
            assert!(c.inner_credentials.is_none(), "{blank}");
        }
        let bad = parse_properties("innerClientAuthenticationCredentials=topSecret99\n");
        let e = BrokerConfig::default().apply_properties(&bad).expect_err("refused");
        assert!(!e.to_string().contains("topSecret99"), "{e}");
    }

    #[test]
    fn metrics_keys_set_the_metrics_limits() {
        let mut c = BrokerConfig::default();
        let text = "metricsMaxSeries=5\nmetricsMaxConnections=3\nmetricsWriteTimeoutSeconds=7\n";
        c.apply_properties(&parse_properties(text)).expect("parses");
        assert_eq!(c.metrics_limits.max_series, 5);
        assert_eq!(c.metrics_limits.max_connections, 3);
        assert_eq!(c.metrics_limits.write_timeout, std::time::Duration::from_secs(7));
        assert!(c.ignored_keys.is_empty());
        let bad = parse_properties("metricsMaxSeries=many\n");
        assert!(BrokerConfig::default().apply_properties(&bad).is_err());
    }

    #[test]
    fn response_budget_keys_are_connection_limits() {
        let mut c = BrokerConfig::default();
        let text = "serverConnectionResponseBytesMax=1048576\nserverResponseBytesMax=8388608\n";
        c.apply_properties(&parse_properties(text)).expect("parses");
        assert_eq!(c.connection_limits.connection_response_bytes_max, 1 << 20);
        assert_eq!(c.connection_limits.response_bytes_max, 8 << 20);
        assert!(c.ignored_keys.is_empty());
        assert!(c.apply_properties(&parse_properties("serverResponseBytesMax=lots\n")).is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        let mut c = BrokerConfig::default();
        let props = parse_properties("flushDiskType=SOMETIMES\n");
        assert!(c.apply_properties(&props).is_err());
    }
}
