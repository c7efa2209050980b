//! Registration with the NameServers: REGISTER_BROKER to every address in `-n` every
//! `register_interval_ms` (30 s) and after topic changes, UNREGISTER_BROKER at shutdown.
//! Topic changes kick the registration task, and kicks that arrive while a registration
//! is under way coalesce into one more, so a burst of creates costs a few registrations,
//! not one each. The body is JSON, or the reference's compressed layout when
//! `compressedRegister` is set or the JSON would pass [`REGISTER_JSON_BYTES_MAX`].
//!
//! Lives on: shard 0. Each NameServer gets one long-lived connection, so a broker that
//! dies is dropped by the NameServer at once (channel close), as with the reference.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use ramjet_proto::acl::{sign_request, Credentials};
use ramjet_proto::body::{self, RegisterBrokerBody};
use ramjet_proto::codes::{request, response};
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::header::{
    CommandHeader, RegisterBrokerRequestHeader, RegisterBrokerResponseHeader,
    UnRegisterBrokerRequestHeader,
};
use ramjet_proto::{Frame, Header, SerializeType};
use tracing::{debug, info, warn};

use crate::shard::Shard;

/// Time allowed for one registration round trip.
pub const REGISTER_TIMEOUT_MS: u64 = 5_000;
/// Largest JSON registration body sent as JSON: past it the body goes compressed (the
/// reference's `compressedRegister` layout, which every NameServer of 4.x and 5.x reads),
/// since a frame holds at most 16 MiB. 100,000 topics of 127-byte names make about 20 MB
/// of JSON and about 1 MB compressed; the NameServer inflates at most
/// `ramjet_proto::register_body::INFLATED_BYTES_MAX` (64 MiB).
pub const REGISTER_JSON_BYTES_MAX: usize = 8 << 20;
/// Re-registration period of a slave that has not learnt its master's address yet.
pub const SLAVE_REGISTER_RETRY_MS: u64 = 2_000;

/// A simple request/response connection to one NameServer (or, for a slave's metadata
/// sync, to its master). With credentials (`innerClientAuthenticationCredentials`) every
/// request is signed, last, as the reference's `AclClientRPCHook` signs.
pub(crate) struct Outbound {
    stream: TcpStream,
    read_buf: BytesMut,
    next_opaque: i32,
    credentials: Option<Credentials>,
}

impl Outbound {
    pub(crate) async fn connect(
        addr: &str,
        credentials: Option<Credentials>,
    ) -> std::io::Result<Outbound> {
        let stream =
            TcpStream::connect(addr).await.map_err(|e| std::io::Error::other(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let read_buf = BytesMut::with_capacity(16 * 1024);
        Ok(Outbound { stream, read_buf, next_opaque: 1, credentials })
    }

    pub(crate) async fn call(&mut self, mut header: Header, body: &[u8]) -> std::io::Result<Frame> {
        self.next_opaque = self.next_opaque.wrapping_add(1);
        header.opaque = self.next_opaque;
        if let Some(credentials) = &self.credentials {
            sign_request(&mut header.ext_fields, body, credentials);
        }
        let mut out = BytesMut::new();
        encode_frame(&header, body, &mut out)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.stream.write_all(&out).await?;
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            match decode_frame(&mut self.read_buf, FRAME_SIZE_BYTES_MAX) {
                Ok(Some(f)) if f.header.is_response() && f.header.opaque == header.opaque => {
                    return Ok(f)
                }
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Registers forever: every interval and whenever `register_kick` fires (kicks coalesce:
/// one registration covers every change before it).
pub async fn registration_loop(shard: Rc<Shard>, namesrv_addrs: Vec<String>) {
    let mut conns: HashMap<String, Outbound> = HashMap::new();
    let interval = Duration::from_millis(shard.config.register_interval_ms);
    loop {
        let Some(zero) = shard.zero.as_ref() else { return };
        let kicked = zero.register_kick.wait();
        register_all(&shard, &namesrv_addrs, &mut conns).await;
        // A slave that does not know its master yet asks again soon.
        let slave = shard.config.broker_role == crate::config::BrokerRole::Slave;
        let wait = if slave && shard.replica.master_addr.borrow().is_none() {
            interval.min(Duration::from_millis(SLAVE_REGISTER_RETRY_MS))
        } else {
            interval
        };
        // `kicked` was made before the registration: a kick during it counts.
        futures_lite::future::or(kicked, glommio::timer::sleep(wait)).await;
    }
}

async fn register_all(shard: &Shard, addrs: &[String], conns: &mut HashMap<String, Outbound>) {
    let table = shard.topic_table();
    let register_body = RegisterBrokerBody {
        topic_config_serialize_wrapper: table.to_wrapper(),
        filter_server_list: Vec::new(),
    };
    drop(table);
    let c = &shard.config;
    let mut body_json = body::to_json(&register_body);
    let compressed = c.compressed_register || body_json.len() > REGISTER_JSON_BYTES_MAX;
    if compressed {
        body_json = ramjet_proto::register_body::encode_compressed(&register_body);
    }
    drop(register_body);
    let broker_addr = format!("{}:{}", c.broker_ip, shard.store_host.port());
    let req = RegisterBrokerRequestHeader {
        broker_name: c.broker_name.clone(),
        broker_addr: broker_addr.clone(),
        cluster_name: c.cluster.clone(),
        ha_server_addr: format!(
            "{}:{}",
            c.broker_ip,
            c.ha_listen_port.unwrap_or(shard.store_host.port().wrapping_add(1))
        ),
        broker_id: c.broker_id,
        heartbeat_timeout_millis: None,
        compressed: Some(compressed),
        body_crc32: Some(ramjet_proto::message::body_crc(&body_json) as i32),
    };
    for addr in addrs {
        let mut header = Header::request(request::REGISTER_BROKER, 0, SerializeType::RocketMq);
        req.encode(&mut header.ext_fields);
        let outcome = call(conns, addr, header, &body_json, c).await;
        match outcome {
            Ok(f) if f.header.code == response::SUCCESS => {
                debug!(namesrv = %addr, "registered");
                learn_master(shard, &f);
            }
            Ok(f) => {
                warn!(namesrv = %addr, code = f.header.code, remark = ?f.header.remark, "registration refused")
            }
            Err(e) => warn!(namesrv = %addr, error = %e, "registration failed; will retry"),
        }
    }
}

/// A slave learns its master's broker and HA addresses from the registration reply
/// (`masterAddr`, `haServerAddr`) and hands the HA address to the replication shard.
fn learn_master(shard: &Shard, reply: &Frame) {
    if shard.config.broker_role != crate::config::BrokerRole::Slave {
        return;
    }
    let Ok(h) = RegisterBrokerResponseHeader::decode(&reply.header.ext_fields) else { return };
    if let Some(master) = h.master_addr.filter(|a| !a.is_empty()) {
        let mut known = shard.replica.master_addr.borrow_mut();
        if known.as_deref() != Some(master.as_str()) && shard.config.ha_master_address.is_none() {
            info!(%master, "master broker address from the NameServer");
            *known = Some(master);
        }
    }
    if let (Some(ha), Some(tx)) =
        (h.ha_server_addr.filter(|a| !a.is_empty()), &shard.replica.ha_addr_tx)
    {
        let _ = tx.try_send(ha);
    }
}

async fn call(
    conns: &mut HashMap<String, Outbound>,
    addr: &str,
    header: Header,
    body: &[u8],
    config: &crate::config::BrokerConfig,
) -> std::io::Result<Frame> {
    if !conns.contains_key(addr) {
        let c = Outbound::connect(addr, config.inner_credentials.clone()).await?;
        info!(namesrv = %addr, "connected to NameServer");
        conns.insert(addr.to_string(), c);
    }
    let timeout = Duration::from_millis(REGISTER_TIMEOUT_MS);
    let result = match conns.get_mut(addr) {
        Some(c) => glommio::timer::timeout(timeout, async {
            c.call(header, body).await.map_err(glommio::GlommioError::IoError)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string())),
        None => Err(std::io::ErrorKind::NotConnected.into()),
    };
    if result.is_err() {
        conns.remove(addr);
    }
    result
}

/// Best-effort UNREGISTER_BROKER to every NameServer (clean shutdown).
pub async fn unregister_all(shard: &Shard, addrs: &[String]) {
    let c = &shard.config;
    let req = UnRegisterBrokerRequestHeader {
        broker_name: c.broker_name.clone(),
        broker_addr: format!("{}:{}", c.broker_ip, shard.store_host.port()),
        cluster_name: c.cluster.clone(),
        broker_id: c.broker_id,
    };
    let mut conns = HashMap::new();
    for addr in addrs {
        let mut header = Header::request(request::UNREGISTER_BROKER, 0, SerializeType::RocketMq);
        req.encode(&mut header.ext_fields);
        let _ = call(&mut conns, addr, header, &Bytes::new(), c).await;
    }
}
