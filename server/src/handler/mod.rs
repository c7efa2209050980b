//! Request handlers of the broker, one file per request-code family, and the dispatcher
//! that routes each request to the shard that owns its queue.
//!
//! Every request goes through [`dispatch`], driven by the request table ([`table`]):
//! 1. **Route**: find the owner shard (queue-addressed codes by `shard_for`, offsets by
//!    their log id, cluster-wide state on shard 0, everything else locally).
//! 2. **Forward** the whole frame to the owner when it is another shard.
//! 3. **Execute** on the owner ([`execute`]): decode, validate, act, map errors, encode.
//!
//! One-way requests get no response.

pub mod admin;
pub mod client;
pub mod consumer_offset;
pub mod consumer_relay;
pub mod dashboard;
pub mod delay_offset;
pub mod offset;
pub mod pull_message;
pub mod send_back;
pub mod send_message;
pub mod sql_filter;
pub mod stats;
pub mod table;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;

use ramjet_proto::codes::response;
use ramjet_proto::{Frame, Header};

use crate::net::connection::{ConnectionHandle, Response, Service};
use crate::shard::{shard_of_log, Shard};
use table::{Handler, Route};

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
        Box::pin(async move { serve_request(&self.shard, frame, conn.peer()).await })
    }

    fn response_reserve(&self, header: &Header) -> usize {
        let max_message_size = self.shard.settings.borrow().max_message_size_bytes;
        pull_message::response_reserve(header, max_message_size)
            .unwrap_or(crate::net::connection::RESPONSE_RESERVE_BYTES)
    }

    fn opened(self: Rc<Self>, conn: &ConnectionHandle) {
        self.shard.connections.borrow_mut().insert(conn.peer(), conn.clone());
    }

    fn closed(self: Rc<Self>, conn: &ConnectionHandle) {
        self.shard.connections.borrow_mut().remove(&conn.peer());
        client::connection_closed(&self.shard, conn.peer());
    }
}

/// Serves one request received by this shard from the client at `peer`, exactly as a
/// connection does: counted by the request probe, checked by access control when it is
/// on, routed, forwarded and executed.
pub async fn serve_request(shard: &Rc<Shard>, frame: Frame, peer: SocketAddr) -> Option<Response> {
    let ctx = RequestContext { peer, origin: shard.id };
    let probe = crate::metrics::RequestProbe::start(shard, &frame.header, frame.body.len());
    // Access control (ARCHITECTURE §12): a refused request is answered here, before
    // routing, and changes nothing. With ACL off this is one branch.
    let resp = match crate::acl::gate::check(shard, &frame, peer) {
        Ok(()) => dispatch(shard, frame, ctx).await,
        Err(refusal) => refusal,
    };
    probe.finish(shard, resp.as_ref());
    resp
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
    let Some(entry) = table::entry(h.code) else {
        // Unknown codes are answered where they arrived.
        return Ok(Target::Here);
    };
    match entry.route {
        Route::Here => Ok(Target::Here),
        Route::ShardZero => Ok(Target::Shard(0)),
        Route::Send => send_message::route(shard, frame).await.map(Target::Shard),
        Route::QueueOwner => {
            let (topic, queue_id) = queue_of(h)?;
            Ok(Target::Shard(shard.shard_for(topic, queue_id)))
        }
        Route::HalfLog => {
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
        Route::RecordLog => {
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
    }
}

/// Runs a request on the shard that owns its state.
pub async fn execute(shard: &Rc<Shard>, frame: Frame, ctx: RequestContext) -> Option<Response> {
    let h = &frame.header;
    let peer = ctx.peer;
    let Some(entry) = table::entry(h.code) else {
        let code = h.code;
        return Some(error(
            h,
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!("request type {code} not supported"),
        ));
    };
    let resp = match entry.handler {
        Handler::Send => send_message::execute(shard, &frame, peer).await,
        Handler::Pull => pull_message::execute(shard, &frame).await,
        Handler::QueryConsumerOffset => consumer_offset::query(shard, h),
        Handler::UpdateConsumerOffset => consumer_offset::update(shard, h),
        Handler::MaxOffset => offset::max_offset(shard, h),
        Handler::MinOffset => offset::min_offset(shard, h),
        Handler::SearchOffsetByTimestamp => offset::search_by_timestamp(shard, h).await,
        Handler::EarliestStoreTime => offset::earliest_store_time(shard, h).await,
        Handler::ViewMessage => offset::view_message(shard, h).await,
        Handler::SendBack => send_back::execute(shard, h).await,
        Handler::EndTransaction => crate::transaction::end_transaction(shard, h).await,
        Handler::CreateTopic => admin::create_topic(shard, h).await,
        Handler::DeleteTopic => admin::delete_topic(shard, h).await,
        Handler::AllTopicConfig => admin::all_topic_config(shard, h),
        Handler::Heartbeat => client::heartbeat(shard, &frame, ctx).await,
        Handler::ConsumerConnections => client::consumer_connections(shard, h),
        Handler::LockBatch => client::lock_batch(shard, &frame),
        Handler::UnlockBatch => client::unlock_batch(shard, &frame),
        Handler::Unregister => client::unregister(shard, h),
        Handler::ConsumerList => client::consumer_list(shard, h),
        Handler::AllDelayOffsets => delay_offset::all_delay_offsets(shard, h).await,
        Handler::BrokerEpochCache => delay_offset::broker_epoch_cache(shard, h).await,
        Handler::QueryMessage => stats::query_message(shard, h).await,
        Handler::UpdateBrokerConfig => stats::update_broker_config(shard, &frame).await,
        Handler::BrokerConfig => stats::broker_config(shard, h),
        Handler::RuntimeInfo => stats::runtime_info(shard, h).await,
        Handler::AllConsumerOffsets => stats::all_consumer_offsets(shard, h).await,
        Handler::UpsertGroup => stats::upsert_group(shard, &frame).await,
        Handler::AllGroups => stats::all_groups(shard, h),
        Handler::DeleteGroup => stats::delete_group(shard, h).await,
        Handler::TopicStats => stats::topic_stats(shard, h).await,
        Handler::ProducerConnections => stats::producer_connections(shard, h),
        Handler::ConsumeStats => stats::consume_stats(shard, h).await,
        Handler::ResetOffset => stats::reset_offset(shard, h).await,
        Handler::BrokerStats => stats::broker_stats(shard, h).await,
        Handler::TopicConsumedBy => dashboard::topic_consumed_by(shard, h).await,
        Handler::BrokerConsumeStats => dashboard::broker_consume_stats(shard, h).await,
        Handler::AllProducers => dashboard::all_producers(shard, h),
        Handler::TopicConfig => dashboard::topic_config(shard, h),
        Handler::GroupConfig => dashboard::group_config(shard, h),
        Handler::CheckClientConfig => sql_filter::check_client_config(shard, &frame),
        Handler::ConsumerRelay => consumer_relay::relay(shard, &frame, ctx).await,
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
