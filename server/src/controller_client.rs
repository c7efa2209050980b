//! The broker's controller client (controller mode, issue 15): heartbeats (904) to the
//! controller that renew the master's lease (`lease.rs`).
//!
//! Lives on: shard 0.
//!
//! Every `brokerHeartbeatInterval` it sends BROKER_HEARTBEAT to the addresses of
//! `controllerAddr` in turn until one answers SUCCESS (a member that is not the Raft
//! leader answers CONTROLLER_NOT_LEADER, 2007, and the next address is tried); a SUCCESS
//! renews the lease from the moment the heartbeat was sent. Each call is bounded by the
//! interval. Not yet here: broker id assignment (1012/1013), registration (1003), polling
//! the replica info (1004) and reacting to role changes (1008).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use ramjet_proto::codes::response;
use ramjet_proto::controller::{BrokerHeartbeatRequestHeader, BROKER_HEARTBEAT};
use ramjet_proto::{CommandHeader, Header, SerializeType};
use tracing::{info, warn};

use crate::register::Outbound;
use crate::shard::Shard;

/// Sends heartbeats until the executor stops.
pub async fn heartbeat_loop(shard: Rc<Shard>) {
    let config = shard.config.clone();
    let interval = Duration::from_millis(config.broker_heartbeat_interval_ms.max(50));
    let mut conns: HashMap<String, Outbound> = HashMap::new();
    let mut healthy: Option<bool> = None;
    loop {
        let sent = crate::lease::now_ms();
        let mut answered = false;
        for addr in &config.controller_addrs {
            let mut header = Header::request(BROKER_HEARTBEAT, 0, SerializeType::Json);
            BrokerHeartbeatRequestHeader {
                cluster_name: config.cluster.clone(),
                broker_addr: shard.store_host.to_string(),
                broker_name: config.broker_name.clone(),
                broker_id: Some(config.broker_id),
                epoch: None,
                max_offset: None,
                confirm_offset: None,
                heartbeat_timeout_mills: Some(config.controller_heartbeat_timeout_ms as i64),
                election_priority: None,
            }
            .encode(&mut header.ext_fields);
            match call(&mut conns, addr, header, interval).await {
                Ok(code) if code == response::SUCCESS => {
                    answered = true;
                    break;
                }
                Ok(_) | Err(_) => {}
            }
        }
        if answered {
            crate::lease::renew(sent);
        }
        if healthy != Some(answered) {
            if answered {
                info!("the controller answers heartbeats; lease renewed");
            } else {
                warn!("no controller answered the heartbeat");
            }
            healthy = Some(answered);
        }
        let elapsed = Duration::from_millis(crate::lease::now_ms().saturating_sub(sent));
        glommio::timer::sleep(interval.saturating_sub(elapsed)).await;
    }
}

async fn call(
    conns: &mut HashMap<String, Outbound>,
    addr: &str,
    header: Header,
    timeout: Duration,
) -> Result<i32, String> {
    if !conns.contains_key(addr) {
        let connect = Outbound::connect(addr, None);
        let c = glommio::timer::timeout(timeout, async {
            connect.await.map_err(glommio::GlommioError::IoError)
        })
        .await
        .map_err(|e| e.to_string())?;
        conns.insert(addr.to_string(), c);
    }
    let result = match conns.get_mut(addr) {
        Some(c) => glommio::timer::timeout(timeout, async {
            c.call(header, &[]).await.map_err(glommio::GlommioError::IoError)
        })
        .await
        .map(|frame| frame.header.code)
        .map_err(|e| e.to_string()),
        None => Err("not connected".into()),
    };
    if result.is_err() {
        conns.remove(addr);
    }
    result
}
