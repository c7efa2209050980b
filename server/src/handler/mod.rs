//! Request handlers of the broker, one file per request-code family, and the dispatcher
//! that routes each request to the shard that owns its queue.
//!
//! Every request goes through [`dispatch`]:
//! 1. **Route**: find the owner shard (queue-addressed codes by `shard_for`, offsets by
//!    their log id, cluster-wide state on shard 0, everything else locally).
//! 2. **Forward** the whole frame to the owner when it is another shard.
//! 3. **Execute** on the owner ([`execute`]): decode, validate, act, map errors, encode.
//!
//! One-way requests get no response.

pub mod admin;
pub mod client;
pub mod consumer_offset;
pub mod delay_offset;
pub mod offset;
pub mod pull_message;
pub mod send_back;
pub mod send_message;
pub mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, Header};

use crate::net::connection::{ConnectionHandle, Response, Service};
use crate::shard::{shard_of_log, Shard};

/// The broker's per-connection service.
///
/// Lives on: the shard that accepted the connection.
pub struct BrokerService {
    /// This shard.
    pub shard: Rc<Shard>,
}

impl Service for BrokerService {
    fn call(
        self: Rc<Self>,
        frame: Frame,
        conn: ConnectionHandle,
    ) -> Pin<Box<dyn Future<Output = Option<Response>>>> {
        Box::pin(async move {
            let ctx = RequestContext { peer: conn.peer(), origin: self.shard.id };
            let probe =
                crate::metrics::RequestProbe::start(&self.shard, &frame.header, frame.body.len());
            let resp = dispatch(&self.shard, frame, ctx).await;
            probe.finish(&self.shard, resp.as_ref());
            resp
        })
    }

    fn opened(self: Rc<Self>, conn: &ConnectionHandle) {
        self.shard.connections.borrow_mut().insert(conn.peer(), conn.clone());
    }

    fn closed(self: Rc<Self>, conn: &ConnectionHandle) {
        self.shard.connections.borrow_mut().remove(&conn.peer());
        client::connection_closed(&self.shard, conn.peer());
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// The shard holding the client's connection.
    pub origin: usize,
}

/// Where a request runs.
enum Target {
    /// On this shard.
    Here,
    /// On another shard.
    Shard(usize),
}

/// Routes, forwards if needed, and executes one request.
pub async fn dispatch(
    shard: &Rc<Shard>,
    mut frame: Frame,
    ctx: RequestContext,
) -> Option<Response> {
    let oneway = frame.header.is_oneway();
    let target = match route(shard, &mut frame).await {
        Ok(t) => t,
        Err(resp) => return (!oneway).then_some(resp),
    };
    let resp = match target {
        Target::Here => execute(shard, frame, ctx).await,
        Target::Shard(s) if s == shard.id => execute(shard, frame, ctx).await,
        Target::Shard(s) => shard.forward(s, frame, ctx.peer).await,
    };
    if oneway {
        None
    } else {
        resp
    }
}

async fn route(shard: &Rc<Shard>, frame: &mut Frame) -> Result<Target, Response> {
    let h = &frame.header;
    match h.code {
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
            send_message::route(shard, frame).await.map(Target::Shard)
        }
        request::PULL_MESSAGE
        | request::LITE_PULL_MESSAGE
        | request::QUERY_CONSUMER_OFFSET
        | request::UPDATE_CONSUMER_OFFSET
        | request::GET_MAX_OFFSET
        | request::GET_MIN_OFFSET
        | request::SEARCH_OFFSET_BY_TIMESTAMP
        | request::GET_EARLIEST_MSG_STORETIME => {
            let (topic, queue_id) = queue_of(h)?;
            Ok(Target::Shard(shard.shard_for(topic, queue_id)))
        }
        request::END_TRANSACTION => {
            let offset: i64 =
                h.ext_fields.req_int("commitLogOffset").map_err(|e| field_error(h, &e))?;
            match ramjet_storage::split_log_offset(offset) {
                Some((log, _)) if log < shard.log_count => {
                    Ok(Target::Shard(shard_of_log(log, shard.shard_count)))
                }
                _ => Err(error(
                    h,
                    response::SYSTEM_ERROR,
                    "Find prepared transaction message failed",
                )),
            }
        }
        request::VIEW_MESSAGE_BY_ID | request::CONSUMER_SEND_MSG_BACK => {
            let offset: i64 = h.ext_fields.req_int("offset").map_err(|e| field_error(h, &e))?;
            match ramjet_storage::split_log_offset(offset) {
                Some((log, _)) if log < shard.log_count => {
                    Ok(Target::Shard(shard_of_log(log, shard.shard_count)))
                }
                _ => Err(error(
                    h,
                    response::SYSTEM_ERROR,
                    format!("can not find message by the offset, {offset}"),
                )),
            }
        }
        request::UPDATE_AND_CREATE_TOPIC
        | request::DELETE_TOPIC_IN_BROKER
        | request::GET_ALL_TOPIC_CONFIG
        | request::HEART_BEAT
        | request::UNREGISTER_CLIENT
        | request::GET_CONSUMER_LIST_BY_GROUP
        | request::GET_CONSUMER_CONNECTION_LIST
        | request::LOCK_BATCH_MQ
        | request::UNLOCK_BATCH_MQ => Ok(Target::Shard(0)),
        code if stats::on_shard_zero(code) => Ok(Target::Shard(0)),
        _ => Ok(Target::Here),
    }
}

/// Runs a request on the shard that owns its state.
pub async fn execute(shard: &Rc<Shard>, frame: Frame, ctx: RequestContext) -> Option<Response> {
    let h = &frame.header;
    let peer = ctx.peer;
    let resp = match h.code {
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
            send_message::execute(shard, &frame, peer).await
        }
        // A 5.x lite pull consumer's pull is an ordinary pull (its FLAG_LITE_PULL_MESSAGE
        // only says no heartbeat subscription is needed, which ramjet never requires).
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            pull_message::execute(shard, &frame).await
        }
        request::QUERY_CONSUMER_OFFSET => consumer_offset::query(shard, h),
        request::UPDATE_CONSUMER_OFFSET => consumer_offset::update(shard, h),
        request::GET_MAX_OFFSET => offset::max_offset(shard, h),
        request::GET_MIN_OFFSET => offset::min_offset(shard, h),
        request::SEARCH_OFFSET_BY_TIMESTAMP => offset::search_by_timestamp(shard, h).await,
        request::GET_EARLIEST_MSG_STORETIME => offset::earliest_store_time(shard, h).await,
        request::VIEW_MESSAGE_BY_ID => offset::view_message(shard, h).await,
        request::CONSUMER_SEND_MSG_BACK => send_back::execute(shard, h).await,
        request::END_TRANSACTION => crate::transaction::end_transaction(shard, h).await,
        request::UPDATE_AND_CREATE_TOPIC => admin::create_topic(shard, h).await,
        request::DELETE_TOPIC_IN_BROKER => admin::delete_topic(shard, h).await,
        request::GET_ALL_TOPIC_CONFIG => admin::all_topic_config(shard, h),
        request::HEART_BEAT => client::heartbeat(shard, &frame, ctx).await,
        request::GET_CONSUMER_CONNECTION_LIST => client::consumer_connections(shard, h),
        request::LOCK_BATCH_MQ => client::lock_batch(shard, &frame),
        request::UNLOCK_BATCH_MQ => client::unlock_batch(shard, &frame),
        request::UNREGISTER_CLIENT => client::unregister(shard, h),
        request::GET_CONSUMER_LIST_BY_GROUP => client::consumer_list(shard, h),
        request::GET_ALL_DELAY_OFFSET => delay_offset::all_delay_offsets(shard, h).await,
        code if stats::handles(code) => stats::execute(shard, &frame, ctx).await,
        code => error(
            h,
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!("request type {code} not supported"),
        ),
    };
    Some(resp)
}

/// `(topic, queueId)` of a queue-addressed request.
fn queue_of(h: &Header) -> Result<(&str, i32), Response> {
    let topic = h.ext_fields.req_str("topic").map_err(|e| field_error(h, &e))?;
    let queue_id = h.ext_fields.req_int("queueId").map_err(|e| field_error(h, &e))?;
    Ok((topic, queue_id))
}

/// A response with `code` and `remark`.
pub fn error(request: &Header, code: i32, remark: impl Into<String>) -> Response {
    Response::new(Header::response_to(request, code).with_remark(remark))
}

/// The response that answers `e`: its response code and its text as the remark.
pub fn error_response(request: &Header, e: &crate::error::BrokerError) -> Response {
    error(request, e.response_code(), e.to_string())
}

/// The response to a header that fails to decode: SYSTEM_ERROR with the field named, as
/// the reference answers a `RemotingCommandException`.
pub fn field_error(request: &Header, e: &ramjet_proto::FieldError) -> Response {
    error(request, response::SYSTEM_ERROR, e.to_string())
}

/// A SUCCESS response with `header` ext fields already filled by the caller.
pub fn success(request: &Header) -> Header {
    Header::response_to(request, response::SUCCESS)
}
