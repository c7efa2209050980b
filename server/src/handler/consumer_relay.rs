//! GET_CONSUMER_RUNNING_INFO (307) and CONSUME_MESSAGE_DIRECTLY (309): the broker relays
//! the request to one consumer's connection and answers the admin with the consumer's
//! reply, as the reference's `AdminBrokerProcessor.callConsumer` through `Broker2Client`.
//!
//! Runs on shard 0 (the client registry finds the consumer's connection and its shard).
//! The relayed request is sent on the shard holding the connection
//! (`ShardMsg::CallClient` when that is another shard) and waited on for at most
//! [`RELAY_TIMEOUT`]. Bounded: [`RELAYS_MAX`] relays broker-wide and
//! `net::connection::CALLS_PER_CONNECTION_MAX` per client connection; past either the
//! admin gets SYSTEM_ERROR at once.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ramjet_proto::codes::{request, response};
use ramjet_proto::text::clip_echo;
use ramjet_proto::{Frame, Header};

use super::{error, RequestContext};
use crate::client_registry::ClientChannel;
use crate::net::connection::Response;
use crate::shard::{Shard, ShardMsg};

/// How long the broker waits for the consumer's reply (the reference's
/// `Broker2Client.callClient`, 10 s).
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Relays waiting for a consumer's reply, broker-wide.
pub const RELAYS_MAX: usize = 1024;

static RELAYS: AtomicUsize = AtomicUsize::new(0);

/// One relay counted in [`RELAYS`] while it lives.
struct RelayPermit;

impl RelayPermit {
    fn acquire() -> Option<RelayPermit> {
        let mut now = RELAYS.load(Ordering::Relaxed);
        loop {
            if now >= RELAYS_MAX {
                crate::net::limits::count_hit("relaysMax");
                return None;
            }
            match RELAYS.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(RelayPermit),
                Err(seen) => now = seen,
            }
        }
    }
}

impl Drop for RelayPermit {
    fn drop(&mut self) {
        RELAYS.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a relay got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    /// No reply within [`RELAY_TIMEOUT`].
    Timeout,
    /// Not sent, or the connection ended first.
    Failed(String),
}

/// Sends `header` + `body` to the client connection `peer` held by this shard and waits
/// (bounded) for its reply.
pub async fn call_local(
    shard: &Shard,
    peer: SocketAddr,
    header: Header,
    body: Bytes,
) -> Result<Frame, RelayError> {
    let conn = shard.connections.borrow().get(&peer).cloned();
    let Some(conn) = conn else {
        return Err(RelayError::Failed("the client's connection is closed".into()));
    };
    let (opaque, rx) = conn.call(header, body).map_err(|e| RelayError::Failed(e.to_string()))?;
    let reply = async { Some(rx.recv_async().await) };
    let timer = async {
        glommio::timer::sleep(RELAY_TIMEOUT).await;
        None
    };
    match futures_lite::future::or(reply, timer).await {
        Some(Ok(frame)) => Ok(frame),
        Some(Err(_)) => Err(RelayError::Failed("the client's connection is closed".into())),
        None => {
            conn.forget_call(opaque);
            Err(RelayError::Timeout)
        }
    }
}

/// Sends a request to the client at `ch` (on whichever shard holds its connection) and
/// waits for its reply.
async fn call_client(
    shard: &Rc<Shard>,
    ch: &ClientChannel,
    header: Header,
    body: Bytes,
) -> Result<Frame, RelayError> {
    let Some(_permit) = RelayPermit::acquire() else {
        return Err(RelayError::Failed(format!("more than {RELAYS_MAX} relays in progress")));
    };
    let Ok(peer) = ch.addr.parse::<SocketAddr>() else {
        return Err(RelayError::Failed("bad client address".into()));
    };
    if ch.shard == shard.id {
        return call_local(shard, peer, header, body).await;
    }
    let Some(target) = shard.peers.get(ch.shard) else {
        return Err(RelayError::Failed("no such shard".into()));
    };
    let (tx, rx) = flume::bounded(1);
    let msg = ShardMsg::CallClient { peer, header, body, reply: tx };
    if target.send_async(msg).await.is_err() {
        return Err(RelayError::Failed("shard stopped".into()));
    }
    rx.recv_async().await.unwrap_or_else(|_| Err(RelayError::Failed("shard stopped".into())))
}

/// 307 / 309: relays the request to consumer `clientId` of `consumerGroup`.
pub async fn relay(shard: &Rc<Shard>, frame: &Frame, _ctx: RequestContext) -> Response {
    let h = &frame.header;
    let (Ok(group), Ok(client_id)) =
        (h.ext_fields.req_str("consumerGroup"), h.ext_fields.req_str("clientId"))
    else {
        return error(h, response::SYSTEM_ERROR, "consumerGroup and clientId are required");
    };
    let (group, client_id) = (group.to_string(), client_id.to_string());
    let channel = shard.zero.as_ref().and_then(|zero| {
        zero.clients
            .borrow()
            .consumer_channels(&group)
            .into_iter()
            .find(|(id, _)| *id == client_id)
            .map(|(_, ch)| ch)
    });
    let Some(ch) = channel else {
        return error(
            h,
            response::SYSTEM_ERROR,
            format!("The Consumer <{}> <{}> not online", clip_echo(&group), clip_echo(&client_id)),
        );
    };
    let mut ext = h.ext_fields.clone();
    let mut body = frame.body.clone();
    if h.code == request::CONSUME_MESSAGE_DIRECTLY {
        ext.insert("brokerName", shard.config.broker_name.as_str());
        match stored_record(shard, h).await {
            Ok(record) => body = record,
            Err(resp) => return resp,
        }
    }
    let mut relayed = Header::request(h.code, 0, ch.serialize_type);
    relayed.ext_fields = ext;
    let (g, c) = (clip_echo(&group), clip_echo(&client_id));
    match call_client(shard, &ch, relayed, body).await {
        Ok(reply) => {
            let mut header = Header::response_to(h, reply.header.code);
            header.remark = reply.header.remark;
            header.ext_fields = reply.header.ext_fields;
            Response { header, body: reply.body, parts: Box::default() }
        }
        Err(RelayError::Timeout) => error(
            h,
            response::SYSTEM_ERROR,
            format!("consumer <{g}> <{c}> Timeout: no reply in {} ms", RELAY_TIMEOUT.as_millis()),
        ),
        Err(RelayError::Failed(why)) => error(
            h,
            response::SYSTEM_ERROR,
            format!("invoke consumer <{g}> <{c}> Exception: {why}"),
        ),
    }
}

/// The stored record named by the request's `msgId` (an offsetMsgId), read through
/// VIEW_MESSAGE_BY_ID on the log's owner.
async fn stored_record(shard: &Rc<Shard>, h: &Header) -> Result<Bytes, Response> {
    let msg_id = h.ext_fields.req_str("msgId").unwrap_or_default();
    let Some((_, offset)) = ramjet_proto::message::decode_offset_msg_id(msg_id) else {
        return Err(error(
            h,
            response::SYSTEM_ERROR,
            format!("invalid msgId {}", clip_echo(msg_id)),
        ));
    };
    let mut view = Header::request(request::VIEW_MESSAGE_BY_ID, 0, h.serialize_type);
    view.ext_fields.insert("offset", offset.to_string().as_str());
    let peer = SocketAddr::from(([127, 0, 0, 1], 0));
    let ctx = RequestContext { peer, origin: shard.id };
    let frame = Frame { header: view, body: Bytes::new() };
    // Boxed: dispatch reaches this handler again (for other frames), a recursive type.
    let view: std::pin::Pin<Box<dyn std::future::Future<Output = Option<Response>>>> =
        Box::pin(super::dispatch(shard, frame, ctx));
    let Some(resp) = view.await else {
        return Err(error(h, response::SYSTEM_ERROR, "message not found"));
    };
    if resp.header.code != response::SUCCESS {
        let mut header = Header::response_to(h, resp.header.code);
        header.remark = resp.header.remark;
        return Err(Response::new(header));
    }
    let mut record = bytes::BytesMut::new();
    for part in resp.body_parts() {
        record.extend_from_slice(part);
    }
    Ok(record.freeze())
}
