//! Client configuration: NameServer addresses, header encoding, timeouts, identity,
//! ACL credentials.

use std::time::Duration;

use ramjet_proto::acl::Credentials;
use ramjet_proto::SerializeType;

use crate::error::ClientError;

/// Default request timeout: the reference client's `sendMsgTimeout` (3 s).
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);

/// Default limit of requests in flight on one connection. Reaching it makes `request`
/// fail with `TooManyInFlight` rather than queue without bound.
pub const IN_FLIGHT_PER_CONNECTION_MAX_DEFAULT: usize = 65_536;

/// Settings shared by every producer, consumer and admin built on one client.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// NameServers, tried in order (then round robin on failure).
    pub namesrv_addrs: Vec<String>,
    /// Header encoding of requests: the binary `ROCKETMQ` header (ramjet's fast path) or
    /// JSON (what third-party clients send).
    pub serialize_type: SerializeType,
    /// How long a request waits for its reply.
    pub request_timeout: Duration,
    /// This client's id in heartbeats and consumer lists (`ip@pid#nanos` by default).
    pub client_id: String,
    /// Requests in flight per connection before `request` refuses more.
    pub in_flight_per_connection_max: usize,
    /// ACL credentials: when set, every request this client sends (to brokers and
    /// NameServers, one-way included) is signed as the reference's `AclClientRPCHook`
    /// signs it (`AccessKey`, `SecurityToken` when given, `Signature`). `None` (default):
    /// requests go unsigned.
    ///
    /// ```
    /// let mut c = ramjet_client::ClientConfig::new("127.0.0.1:9876").unwrap();
    /// c.credentials = Some(ramjet_client::Credentials {
    ///     access_key: "RocketMQ".into(),
    ///     secret_key: "12345678".into(),
    ///     security_token: None,
    /// });
    /// ```
    pub credentials: Option<Credentials>,
    /// Send each queue's requests (sends, pulls) over a connection to the shard that owns
    /// the queue, when the broker advertises per-shard addresses (a ramjet broker's
    /// `ramjetShardAddrs` in GET_BROKER_RUNTIME_INFO); other brokers are unaffected.
    /// Default true.
    pub shard_aware: bool,
}

impl ClientConfig {
    /// A config for the NameServers in `namesrv_addrs` (`"h:p;h:p"`), other fields default.
    ///
    /// # Errors
    /// `InvalidArgument` when the list holds no address or an entry is not `host:port`.
    ///
    /// ```
    /// let c = ramjet_client::ClientConfig::new("127.0.0.1:9876;10.0.0.2:9876").unwrap();
    /// assert_eq!(c.namesrv_addrs, ["127.0.0.1:9876", "10.0.0.2:9876"]);
    /// ```
    pub fn new(namesrv_addrs: &str) -> Result<ClientConfig, ClientError> {
        Ok(ClientConfig {
            namesrv_addrs: parse_namesrv_addrs(namesrv_addrs)?,
            serialize_type: SerializeType::RocketMq,
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            client_id: default_client_id(),
            in_flight_per_connection_max: IN_FLIGHT_PER_CONNECTION_MAX_DEFAULT,
            credentials: None,
            shard_aware: true,
        })
    }
}

/// Splits `"h:p;h:p"` (also accepting `,` and spaces as separators, as `mqadmin` users
/// type them) into addresses.
///
/// # Errors
/// `InvalidArgument` when empty or an entry lacks a numeric port.
pub fn parse_namesrv_addrs(list: &str) -> Result<Vec<String>, ClientError> {
    let mut addrs = Vec::new();
    for entry in list.split([';', ',', ' ']).map(str::trim).filter(|s| !s.is_empty()) {
        let port_ok = entry
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(ClientError::InvalidArgument {
                reason: format!("NameServer address {entry:?} is not host:port"),
            });
        }
        addrs.push(entry.to_string());
    }
    if addrs.is_empty() {
        return Err(ClientError::InvalidArgument { reason: "no NameServer address".into() });
    }
    Ok(addrs)
}

/// `127.0.0.1@<pid>#<nanos>`: unique per process start, like the reference's
/// `ip@instanceName`.
fn default_client_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("127.0.0.1@{}#{}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namesrv_list_splits_on_semicolons_and_rejects_garbage() {
        assert_eq!(parse_namesrv_addrs("a:1;b:2;").unwrap(), ["a:1", "b:2"]);
        assert_eq!(parse_namesrv_addrs(" a:1 , b:2").unwrap(), ["a:1", "b:2"]);
        assert!(parse_namesrv_addrs("").is_err());
        assert!(parse_namesrv_addrs("a").is_err());
        assert!(parse_namesrv_addrs("a:x").is_err());
        assert!(parse_namesrv_addrs(":1").is_err());
    }
}
