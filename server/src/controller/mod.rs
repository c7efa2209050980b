//! The controller (RocketMQ 5 controller mode): a Raft quorum that decides, per broker
//! group, which replica is master, its epoch and the in-sync replica set.
//!
//! Lives on: its own glommio executor (thread "controller") inside `ramjet-namesrv` when
//! namesrv.conf has `enableControllerInNamesrv=true`. It listens on its own port (this
//! member's address in `controllerDLegerPeers`) for brokers' and admins' remoting requests
//! (1001-1013, 904) and for its peers' Raft messages (private request code
//! [`node::RAFT_MESSAGE`], one-way).
//!
//! - [`state`]: the replicated state machine and the election rule (pure).
//! - [`raft_log`]: the durable Raft log (one file, fdatasync per Ready).
//! - [`node`]: the Raft node (raft-rs `RawNode`), peer transport, request handlers.

pub mod node;
pub mod raft_log;
pub mod state;

use std::path::PathBuf;

/// Controller settings (namesrv.conf keys of the reference's `ControllerConfig`).
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `enableControllerInNamesrv`.
    pub enabled: bool,
    /// `controllerDLegerGroup`.
    pub group: String,
    /// `controllerDLegerPeers`: `(member id, ip:port)` in configured order; the Raft id of
    /// a member is its position + 1.
    pub peers: Vec<(String, String)>,
    /// The raw `controllerDLegerPeers` text (1005 answers it).
    pub peers_text: String,
    /// `controllerDLegerSelfId`.
    pub self_id: String,
    /// `controllerStorePath` (default `$HOME/DledgerController`).
    pub store_path: PathBuf,
    /// `enableElectUncleanMaster`.
    pub enable_elect_unclean_master: bool,
    /// `controllerHeartBeatTimeoutMills` (default 10 s): a broker silent this long is dead,
    /// unless its heartbeats name another timeout (`heartbeatTimeoutMills`).
    pub heartbeat_timeout_ms: u64,
    /// `notifyBrokerRoleChanged` (default true).
    pub notify_broker_role_changed: bool,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
        ControllerConfig {
            enabled: false,
            group: "DefaultControllerGroup".into(),
            peers: Vec::new(),
            peers_text: String::new(),
            self_id: String::new(),
            store_path: PathBuf::from(home).join("DledgerController"),
            enable_elect_unclean_master: false,
            heartbeat_timeout_ms: 10_000,
            notify_broker_role_changed: true,
        }
    }
}

/// Most members of a controller quorum.
pub const PEERS_MAX: usize = 9;

/// Parses `controllerDLegerPeers`: `n0-127.0.0.1:9878;n1-127.0.0.1:9879`.
///
/// # Errors
/// Empty, malformed, duplicate ids, or more than [`PEERS_MAX`] members.
pub fn parse_peers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('-')
            .ok_or_else(|| format!("controllerDLegerPeers: {part:?} is not id-ip:port"))?;
        let (id, addr) = (id.trim(), addr.trim());
        if id.is_empty() || addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("controllerDLegerPeers: {part:?} is not id-ip:port"));
        }
        if out.iter().any(|(i, _)| i == id) {
            return Err(format!("controllerDLegerPeers: id {id} twice"));
        }
        out.push((id.to_string(), addr.to_string()));
    }
    if out.is_empty() {
        return Err("controllerDLegerPeers: no member".into());
    }
    if out.len() > PEERS_MAX {
        return Err(format!("controllerDLegerPeers: at most {PEERS_MAX} members"));
    }
    Ok(out)
}

impl ControllerConfig {
    /// Applies one namesrv.conf key; `Ok(false)` when the key is not a controller key.
    ///
    /// # Errors
    /// A controller key with a bad value.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let boolean = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{key}: not a boolean: {v}")),
        };
        match key {
            "enableControllerInNamesrv" => self.enabled = boolean(value)?,
            "controllerDLegerGroup" => self.group = value.trim().to_string(),
            "controllerDLegerPeers" => {
                self.peers = parse_peers(value)?;
                self.peers_text = value.trim().to_string();
            }
            "controllerDLegerSelfId" => self.self_id = value.trim().to_string(),
            "controllerStorePath" => self.store_path = PathBuf::from(value.trim()),
            "enableElectUncleanMaster" => self.enable_elect_unclean_master = boolean(value)?,
            "notifyBrokerRoleChanged" => self.notify_broker_role_changed = boolean(value)?,
            "controllerHeartBeatTimeoutMills" => {
                self.heartbeat_timeout_ms = value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|v| (100..=3_600_000).contains(v))
                    .ok_or_else(|| {
                        format!("{key}: not a number of ms in 100..=3600000: {value}")
                    })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// This member's Raft id (position in the peers + 1) and address.
    ///
    /// # Errors
    /// `controllerDLegerSelfId` is not among the peers.
    pub fn self_member(&self) -> Result<(u64, String), String> {
        self.peers
            .iter()
            .position(|(id, _)| *id == self.self_id)
            .map(|i| (i as u64 + 1, self.peers[i].1.clone()))
            .ok_or_else(|| {
                format!("controllerDLegerSelfId {:?} is not in controllerDLegerPeers", self.self_id)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_refuse() {
        let p = parse_peers("n0-127.0.0.1:9878;n1-127.0.0.1:9879;").unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1], ("n1".to_string(), "127.0.0.1:9879".to_string()));
        assert!(parse_peers("").is_err());
        assert!(parse_peers("n0-x").is_err());
        assert!(parse_peers("n0-127.0.0.1:1;n0-127.0.0.1:2").is_err());
        let mut c = ControllerConfig::default();
        assert_eq!(c.apply("controllerDLegerPeers", "a-127.0.0.1:1;b-127.0.0.1:2"), Ok(true));
        assert_eq!(c.apply("controllerDLegerSelfId", "b"), Ok(true));
        assert_eq!(c.self_member(), Ok((2, "127.0.0.1:2".to_string())));
        assert_eq!(c.apply("listenPort", "1"), Ok(false));
        assert!(c.apply("controllerHeartBeatTimeoutMills", "5").is_err());
    }
}
