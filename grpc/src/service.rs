//! `apache.rocketmq.v2.MessagingService`: each call, its checks and statuses.
//!
//! | call | served as |
//! |---|---|
//! | QueryRoute | the topic's queues (GET_TOPIC_CONFIG), endpoints = this gRPC address |
//! | Heartbeat, NotifyClientTermination | OK (no per-client state is kept) |
//! | SendMessage | SEND_MESSAGE_V2 per message (FIFO: queue by message-group hash; delay: TIMER_DELIVER_MS) |
//! | QueryAssignment | one broker-wide assignment (queue id -1), as the reference proxy |
//! | ReceiveMessage | POP over PULL_MESSAGE reads ([`crate::pop`]), long polling by parked pulls |
//! | AckMessage, ChangeInvisibleDuration | POP state |
//! | ForwardMessageToDeadLetterQueue | CONSUMER_SEND_MSG_BACK with delay level -1, then acked |
//! | Telemetry | settings answered with the broker's settings |
//! | EndTransaction, PullMessage, UpdateOffset, GetOffset, QueryOffset, RecallMessage, SyncLiteSubscription | NOT_IMPLEMENTED status |

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ramjet_proto::codes::response;
use ramjet_proto::message::decode_records;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::backend::{Backend, Broker, BrokerFailure};
use crate::convert::{self, Delivery, Handle};
use crate::pb;
use crate::pop::{BeginError, HandleError, PopStore, QueueKey};
use crate::GrpcOptions;

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn status(code: pb::Code, message: impl Into<String>) -> pb::Status {
    pb::Status { code: code as i32, message: message.into() }
}

fn ok() -> pb::Status {
    status(pb::Code::Ok, "OK")
}

/// The 5.x code of a remoting failure, as the reference proxy maps it.
fn broker_code(f: &BrokerFailure) -> pb::Code {
    match f.code {
        response::TOPIC_NOT_EXIST => pb::Code::TopicNotFound,
        response::NO_PERMISSION => pb::Code::Forbidden,
        response::MESSAGE_ILLEGAL => pb::Code::BadRequest,
        response::SYSTEM_BUSY => pb::Code::TooManyRequests,
        response::FLUSH_DISK_TIMEOUT => pb::Code::MasterPersistenceTimeout,
        response::FLUSH_SLAVE_TIMEOUT => pb::Code::SlavePersistenceTimeout,
        response::SLAVE_NOT_AVAILABLE => pb::Code::HaNotAvailable,
        response::SERVICE_NOT_AVAILABLE => pb::Code::InternalServerError,
        _ => pb::Code::InternalServerError,
    }
}

fn failure(f: &BrokerFailure) -> pb::Status {
    status(broker_code(f), f.remark.clone())
}

fn name(r: Option<&pb::Resource>) -> &str {
    r.map_or("", |r| r.name.as_str())
}

/// Group and topic names: non-empty, at most 255 bytes, no control characters.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control)
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The service (cheap to clone: shared state behind `Arc`s).
#[derive(Clone)]
pub struct Service {
    broker: Broker,
    options: Arc<GrpcOptions>,
    pop: Arc<Mutex<PopStore>>,
    rotate: Arc<AtomicUsize>,
}

/// A queue being read by one receive; frees it if the receive ends without committing.
struct Reading {
    pop: Arc<Mutex<PopStore>>,
    key: QueueKey,
    open: bool,
}

impl Drop for Reading {
    fn drop(&mut self) {
        if self.open {
            if let Ok(mut p) = self.pop.lock() {
                p.abort(&self.key);
            }
        }
    }
}

/// One message ready to go to the client.
struct Ready {
    message: pb::Message,
}

impl Service {
    /// A service over `backend`.
    pub fn new(backend: Arc<dyn Backend>, options: GrpcOptions, pop: PopStore) -> Service {
        Service {
            broker: Broker::new(backend),
            options: Arc::new(options),
            pop: Arc::new(Mutex::new(pop)),
            rotate: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PopStore> {
        match self.pop.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Syncs the POP journal every 200 ms while the server runs (never returns).
    pub async fn pop_sync_task(&self) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            self.lock().sync();
        }
    }

    /// Final sync at stop.
    pub fn pop_close(&self) {
        self.lock().sync();
    }

    fn broker_resource(&self) -> pb::Broker {
        let a = self.options.advertised;
        pb::Broker {
            name: self.options.broker_name.clone(),
            id: 0,
            endpoints: Some(pb::Endpoints {
                scheme: if a.is_ipv4() { pb::AddressScheme::IPv4 } else { pb::AddressScheme::IPv6 }
                    as i32,
                addresses: vec![pb::Address {
                    host: a.ip().to_string(),
                    port: i32::from(a.port()),
                }],
            }),
        }
    }

    fn accept_types() -> Vec<i32> {
        vec![
            pb::MessageType::Normal as i32,
            pb::MessageType::Fifo as i32,
            pb::MessageType::Delay as i32,
        ]
    }

    async fn query_route_impl(
        &self,
        req: pb::QueryRouteRequest,
        peer: SocketAddr,
    ) -> pb::QueryRouteResponse {
        let topic = name(req.topic.as_ref()).to_string();
        if !valid_name(&topic) {
            return pb::QueryRouteResponse {
                status: Some(status(pb::Code::IllegalTopic, "topic name is illegal")),
                message_queues: vec![],
            };
        }
        match self.broker.topic_config(&topic, peer).await {
            Ok(Some(cfg)) => {
                let read = cfg.perm & 4 != 0;
                let write = cfg.perm & 2 != 0;
                let n = cfg.read_queue_nums.max(cfg.write_queue_nums).clamp(0, 1024);
                let queues = (0..n)
                    .map(|i| {
                        let r = read && i < cfg.read_queue_nums;
                        let w = write && i < cfg.write_queue_nums;
                        let permission = match (r, w) {
                            (true, true) => pb::Permission::ReadWrite,
                            (true, false) => pb::Permission::Read,
                            (false, true) => pb::Permission::Write,
                            (false, false) => pb::Permission::None,
                        };
                        pb::MessageQueue {
                            topic: req.topic.clone(),
                            id: i,
                            permission: permission as i32,
                            broker: Some(self.broker_resource()),
                            accept_message_types: Self::accept_types(),
                        }
                    })
                    .collect();
                pb::QueryRouteResponse { status: Some(ok()), message_queues: queues }
            }
            Ok(None) => pb::QueryRouteResponse {
                status: Some(status(
                    pb::Code::TopicNotFound,
                    format!("topic {} not found", ramjet_proto::text::clip_echo(&topic)),
                )),
                message_queues: vec![],
            },
            Err(f) => pb::QueryRouteResponse { status: Some(failure(&f)), message_queues: vec![] },
        }
    }

    async fn send_impl(
        &self,
        req: pb::SendMessageRequest,
        peer: SocketAddr,
    ) -> pb::SendMessageResponse {
        if req.messages.is_empty() {
            return pb::SendMessageResponse {
                status: Some(status(pb::Code::BadRequest, "no message to send")),
                entries: vec![],
            };
        }
        if req.messages.len() > 1024 {
            return pb::SendMessageResponse {
                status: Some(status(pb::Code::BadRequest, "too many messages in one request")),
                entries: vec![],
            };
        }
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let mut entries = Vec::with_capacity(req.messages.len());
        for m in &req.messages {
            let mut out = match convert::outgoing(m, now) {
                Ok(o) => o,
                Err(r) => {
                    entries.push(pb::SendResultEntry {
                        status: Some(status(r.code, r.message)),
                        ..Default::default()
                    });
                    continue;
                }
            };
            if let Some(g) = &out.group {
                // FIFO: one queue per message group, so the group stays in order.
                match self.broker.topic_config(&out.header.topic, peer).await {
                    Ok(Some(cfg)) if cfg.write_queue_nums > 0 => {
                        let h = crc32fast::hash(g.as_bytes());
                        out.header.queue_id =
                            i32::try_from(h % u32::try_from(cfg.write_queue_nums).unwrap_or(1))
                                .unwrap_or(0);
                    }
                    Ok(_) => {
                        entries.push(pb::SendResultEntry {
                            status: Some(status(pb::Code::TopicNotFound, "topic not found")),
                            ..Default::default()
                        });
                        continue;
                    }
                    Err(f) => {
                        entries.push(pb::SendResultEntry {
                            status: Some(failure(&f)),
                            ..Default::default()
                        });
                        continue;
                    }
                }
            }
            match self.broker.send(&out.header, out.body.clone(), peer).await {
                Ok(r) => entries.push(pb::SendResultEntry {
                    status: Some(ok()),
                    message_id: out.message_id,
                    transaction_id: String::new(),
                    offset: r.queue_offset,
                    recall_handle: String::new(),
                }),
                Err(f) => entries.push(pb::SendResultEntry {
                    status: Some(failure(&f)),
                    message_id: out.message_id,
                    ..Default::default()
                }),
            }
        }
        let first = entries.first().and_then(|e| e.status.clone()).unwrap_or_else(ok);
        let same = entries.iter().all(|e| e.status.as_ref().map(|s| s.code) == Some(first.code));
        let top = if same { first } else { status(pb::Code::MultipleResults, "multiple results") };
        pb::SendMessageResponse { status: Some(top), entries }
    }

    async fn max_attempts(&self, group: &str, peer: SocketAddr) -> u32 {
        match self.broker.group_retry_max(group, peer).await {
            Some(n) if n >= 0 => u32::try_from(n).unwrap_or(16).saturating_add(1),
            _ => self.options.max_delivery_attempts,
        }
    }

    /// Reads one queue for a receive: expired deliveries first (redelivered, or to the DLQ
    /// past `max_attempts`), then new messages. Appends to `out`.
    #[allow(clippy::too_many_arguments)]
    async fn pop_queue(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
        want: usize,
        filter: (&str, &str),
        invisible_ms: u64,
        max_attempts: u32,
        peer: SocketAddr,
        out: &mut Vec<Ready>,
    ) -> Result<(), pb::Status> {
        let key: QueueKey = (group.to_string(), topic.to_string(), queue_id);
        let state = {
            let mut p = self.lock();
            let room = self.options.max_inflight_per_group.saturating_sub(p.group_inflight(group));
            match p.begin(&key) {
                Ok(s) => (s, room),
                Err(BeginError::Busy) => return Ok(()),
                Err(BeginError::TooManyGroups) => {
                    return Err(status(pb::Code::TooManyRequests, "too many consumer groups"))
                }
            }
        };
        let (state, room) = state;
        let mut reading = Reading { pop: self.pop.clone(), key: key.clone(), open: true };
        let now = now_ms();
        let deadline = now.saturating_add(invisible_ms);
        let mut delivered: Vec<(i64, u32)> = Vec::new();
        let mut done: Vec<i64> = Vec::new();
        let mut records = Vec::new();
        // Redeliveries.
        let expired: Vec<(i64, u32)> = state
            .inflight
            .iter()
            .filter(|(_, f)| f.deadline_ms <= now)
            .map(|(o, f)| (*o, f.attempt))
            .take(want)
            .collect();
        for (offset, attempt) in expired {
            let pulled = self
                .broker
                .pull(group, topic, queue_id, offset, 1, None, 0, peer)
                .await
                .map_err(|f| failure(&f))?;
            let found = decode_records(&pulled.body, false)
                .ok()
                .and_then(|v| v.into_iter().find(|m| m.queue_offset == offset));
            let Some(m) = found else {
                // Gone from the store (retention): nothing left to deliver.
                done.push(offset);
                continue;
            };
            if attempt >= max_attempts {
                let id = m
                    .property(ramjet_proto::message::property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
                    .unwrap_or_default();
                match self.broker.to_dlq(group, m.physical_offset, &id, topic, peer).await {
                    Ok(()) => done.push(offset),
                    Err(f) => {
                        tracing::warn!(code = f.code, remark = %f.remark, "POP: DLQ send failed; retried later")
                    }
                }
                continue;
            }
            delivered.push((offset, attempt + 1));
            records.push((m, attempt + 1));
        }
        // New messages.
        let mut next = state.next;
        let mut fresh = want.saturating_sub(records.len()).min(room.saturating_sub(records.len()));
        let mut rounds = 0;
        while fresh > 0 && rounds < 4 {
            rounds += 1;
            let max = i32::try_from(fresh).unwrap_or(32);
            let pulled = self
                .broker
                .pull(group, topic, queue_id, next, max, Some(filter), 0, peer)
                .await
                .map_err(|f| failure(&f))?;
            let moved = pulled.next_begin_offset.max(pulled.min_offset);
            match pulled.code {
                response::SUCCESS => {
                    for m in decode_records(&pulled.body, false).unwrap_or_default() {
                        if m.queue_offset < next
                            || delivered.iter().any(|(o, _)| *o == m.queue_offset)
                        {
                            continue;
                        }
                        delivered.push((m.queue_offset, 1));
                        records.push((m, 1));
                        fresh = fresh.saturating_sub(1);
                    }
                    next = next.max(pulled.next_begin_offset);
                }
                response::PULL_RETRY_IMMEDIATELY => next = next.max(pulled.next_begin_offset),
                response::PULL_OFFSET_MOVED => {
                    next = moved;
                    continue;
                }
                _ => break,
            }
            if pulled.next_begin_offset >= pulled.max_offset {
                break;
            }
        }
        let gens = {
            let mut p = self.lock();
            reading.open = false;
            p.commit(&key, next, &delivered, deadline, &done)
        };
        for ((m, attempt), gen) in records.into_iter().zip(gens) {
            let handle = Handle { queue_id, offset: m.queue_offset, gen, deadline_ms: deadline };
            let d = Delivery { receipt_handle: handle.encode(), invisible_ms, attempt };
            out.push(Ready { message: convert::incoming(&m, &d) });
        }
        Ok(())
    }

    async fn receive_impl(
        &self,
        req: pb::ReceiveMessageRequest,
        peer: SocketAddr,
    ) -> Vec<pb::ReceiveMessageResponse> {
        let one = |s: pb::Status| {
            vec![pb::ReceiveMessageResponse {
                content: Some(pb::receive_message_response::Content::Status(s)),
            }]
        };
        let group = name(req.group.as_ref()).to_string();
        let topic = req
            .message_queue
            .as_ref()
            .map(|q| name(q.topic.as_ref()))
            .unwrap_or_default()
            .to_string();
        if !valid_name(&group) {
            return one(status(pb::Code::IllegalConsumerGroup, "consumer group name is illegal"));
        }
        if !valid_name(&topic) {
            return one(status(pb::Code::IllegalTopic, "topic name is illegal"));
        }
        let batch = usize::try_from(req.batch_size).unwrap_or(0);
        if batch == 0 {
            return one(status(pb::Code::BadRequest, "batch size must be positive"));
        }
        let batch = batch.min(self.options.max_receive_batch);
        let invisible_ms = req.invisible_duration.as_ref().map_or(30_000, convert::duration_ms);
        if invisible_ms < self.options.min_invisible_ms
            || invisible_ms > self.options.max_invisible_ms
        {
            return one(status(
                pb::Code::IllegalInvisibleTime,
                format!(
                    "the invisible duration must be within [{}, {}] ms",
                    self.options.min_invisible_ms, self.options.max_invisible_ms
                ),
            ));
        }
        let polling_ms = req.long_polling_timeout.as_ref().map_or(0, convert::duration_ms);
        if polling_ms > self.options.max_long_polling_ms {
            return one(status(
                pb::Code::IllegalPollingTime,
                format!(
                    "the long polling timeout must be at most {} ms",
                    self.options.max_long_polling_ms
                ),
            ));
        }
        let (kind, expr) = match req.filter_expression.as_ref() {
            Some(f) if f.r#type == pb::FilterType::Sql as i32 => ("SQL92", f.expression.clone()),
            Some(f) if !f.expression.trim().is_empty() => ("TAG", f.expression.clone()),
            _ => ("TAG", "*".to_string()),
        };
        let cfg = match self.broker.topic_config(&topic, peer).await {
            Ok(Some(c)) => c,
            Ok(None) => return one(status(pb::Code::TopicNotFound, "topic not found")),
            Err(f) => return one(failure(&f)),
        };
        if cfg.perm & 4 == 0 {
            return one(status(pb::Code::Forbidden, "the topic is not readable"));
        }
        let queues = cfg.read_queue_nums.clamp(0, 1024);
        let max_attempts = self.max_attempts(&group, peer).await;
        let start = now_ms();
        let end = start.saturating_add(polling_ms);
        let mut out: Vec<Ready> = Vec::new();
        // Bounded: each round either returns or waits (long poll) until `end`.
        for _round in 0..10_000 {
            let first = self.rotate.fetch_add(1, Ordering::Relaxed);
            for i in 0..queues {
                let q = i32::try_from(
                    (first + usize::try_from(i).unwrap_or(0))
                        % usize::try_from(queues).unwrap_or(1),
                )
                .unwrap_or(0);
                let want = batch.saturating_sub(out.len());
                if want == 0 {
                    break;
                }
                if let Err(s) = self
                    .pop_queue(
                        &group,
                        &topic,
                        q,
                        want,
                        (kind, &expr),
                        invisible_ms,
                        max_attempts,
                        peer,
                        &mut out,
                    )
                    .await
                {
                    if out.is_empty() {
                        return one(s);
                    }
                    break;
                }
            }
            let now = now_ms();
            if !out.is_empty() || now >= end || queues == 0 {
                break;
            }
            self.wait_for_messages(&group, &topic, queues, (kind, &expr), end, peer).await;
        }
        if out.is_empty() {
            return one(status(pb::Code::MessageNotFound, "no new message"));
        }
        let mut v = Vec::with_capacity(out.len() + 1);
        v.push(pb::ReceiveMessageResponse {
            content: Some(pb::receive_message_response::Content::Status(ok())),
        });
        for r in out {
            v.push(pb::ReceiveMessageResponse {
                content: Some(pb::receive_message_response::Content::Message(r.message)),
            });
        }
        v
    }

    /// Long polling: waits until a queue of the topic gets a message past the group's read
    /// position (parked pulls, at most 16 queues), an in-flight message becomes visible
    /// again, or `end`. Waits at most 5 s per call, so parked pulls left behind by a wake
    /// on another queue end soon.
    async fn wait_for_messages(
        &self,
        group: &str,
        topic: &str,
        queues: i32,
        filter: (&str, &str),
        end: u64,
        peer: SocketAddr,
    ) {
        let now = now_ms();
        let mut until = end.min(now.saturating_add(5_000));
        let positions: Vec<(i32, i64)> = {
            let p = self.lock();
            if let Some(d) = p.earliest_deadline(group, topic) {
                until = until.min(d.max(now));
            }
            (0..queues.min(16))
                .map(|q| (q, p.peek(&(group.to_string(), topic.to_string(), q)).next))
                .collect()
        };
        let wait = until.saturating_sub(now);
        if wait == 0 {
            return;
        }
        let mut set = tokio::task::JoinSet::new();
        for (q, next) in positions {
            let broker = self.broker.clone();
            let (g, t, k, e) =
                (group.to_string(), topic.to_string(), filter.0.to_string(), filter.1.to_string());
            let suspend = i64::try_from(wait).unwrap_or(5_000);
            set.spawn(async move {
                broker.pull(&g, &t, q, next, 1, Some((&k, &e)), suspend, peer).await.map(|p| p.code)
            });
        }
        let sleep = tokio::time::sleep(Duration::from_millis(wait));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return,
                r = set.join_next() => match r {
                    None => {
                        // No queue could park: wait out the time instead of spinning.
                        sleep.as_mut().await;
                        return;
                    }
                    Some(Ok(Ok(code))) if code == response::PULL_NOT_FOUND => {}
                    Some(_) => return,
                },
            }
        }
    }

    fn handle_key(
        &self,
        group: &str,
        topic: &str,
        receipt: &str,
    ) -> Result<(QueueKey, Handle), pb::Status> {
        if !valid_name(group) {
            return Err(status(pb::Code::IllegalConsumerGroup, "consumer group name is illegal"));
        }
        if !valid_name(topic) {
            return Err(status(pb::Code::IllegalTopic, "topic name is illegal"));
        }
        let h = Handle::decode(receipt)
            .ok_or_else(|| status(pb::Code::InvalidReceiptHandle, "receipt handle is invalid"))?;
        Ok(((group.to_string(), topic.to_string(), h.queue_id), h))
    }

    fn ack_one(&self, group: &str, topic: &str, receipt: &str) -> pb::Status {
        let (key, h) = match self.handle_key(group, topic, receipt) {
            Ok(k) => k,
            Err(s) => return s,
        };
        if h.deadline_ms <= now_ms() {
            return status(pb::Code::InvalidReceiptHandle, "receipt handle is expired");
        }
        match self.lock().ack(&key, h.offset, h.gen) {
            Ok(()) | Err(HandleError::Done) => ok(),
            Err(HandleError::Stale) => {
                status(pb::Code::InvalidReceiptHandle, "receipt handle is expired")
            }
        }
    }

    fn change_impl(
        &self,
        req: &pb::ChangeInvisibleDurationRequest,
    ) -> pb::ChangeInvisibleDurationResponse {
        let fail = |s: pb::Status| pb::ChangeInvisibleDurationResponse {
            status: Some(s),
            receipt_handle: String::new(),
        };
        let (key, h) = match self.handle_key(
            name(req.group.as_ref()),
            name(req.topic.as_ref()),
            &req.receipt_handle,
        ) {
            Ok(k) => k,
            Err(s) => return fail(s),
        };
        let ms = req.invisible_duration.as_ref().map_or(0, convert::duration_ms);
        if ms > self.options.max_invisible_ms {
            return fail(status(
                pb::Code::IllegalInvisibleTime,
                "the invisible duration is too long",
            ));
        }
        let now = now_ms();
        if h.deadline_ms <= now {
            return fail(status(pb::Code::InvalidReceiptHandle, "receipt handle is expired"));
        }
        let deadline = now.saturating_add(ms);
        match self.lock().change(&key, h.offset, h.gen, deadline) {
            Ok(f) => pb::ChangeInvisibleDurationResponse {
                status: Some(ok()),
                receipt_handle: Handle {
                    queue_id: h.queue_id,
                    offset: h.offset,
                    gen: f.gen,
                    deadline_ms: deadline,
                }
                .encode(),
            },
            Err(_) => fail(status(pb::Code::InvalidReceiptHandle, "receipt handle is expired")),
        }
    }

    async fn forward_dlq_impl(
        &self,
        req: pb::ForwardMessageToDeadLetterQueueRequest,
        peer: SocketAddr,
    ) -> pb::Status {
        let group = name(req.group.as_ref()).to_string();
        let topic = name(req.topic.as_ref()).to_string();
        let (key, h) = match self.handle_key(&group, &topic, &req.receipt_handle) {
            Ok(k) => k,
            Err(s) => return s,
        };
        if self.lock().current(&key, h.offset, h.gen).is_none() {
            return status(pb::Code::InvalidReceiptHandle, "receipt handle is expired");
        }
        let pulled =
            match self.broker.pull(&group, &topic, h.queue_id, h.offset, 1, None, 0, peer).await {
                Ok(p) => p,
                Err(f) => return failure(&f),
            };
        let Some(m) = decode_records(&pulled.body, false)
            .ok()
            .and_then(|v| v.into_iter().find(|m| m.queue_offset == h.offset))
        else {
            return status(pb::Code::MessageNotFound, "message not found");
        };
        if let Err(f) =
            self.broker.to_dlq(&group, m.physical_offset, &req.message_id, &topic, peer).await
        {
            return failure(&f);
        }
        let _ = self.lock().ack(&key, h.offset, h.gen);
        ok()
    }

    fn settings_reply(&self, s: &pb::Settings) -> pb::Settings {
        let mut out = s.clone();
        out.access_point = Some(pb::Endpoints {
            scheme: if self.options.advertised.is_ipv4() {
                pb::AddressScheme::IPv4
            } else {
                pb::AddressScheme::IPv6
            } as i32,
            addresses: vec![pb::Address {
                host: self.options.advertised.ip().to_string(),
                port: i32::from(self.options.advertised.port()),
            }],
        });
        match &mut out.pub_sub {
            Some(pb::settings::PubSub::Publishing(p)) => {
                p.max_body_size = i32::try_from(convert::BODY_BYTES_MAX).unwrap_or(i32::MAX);
                out.backoff_policy = Some(pb::RetryPolicy {
                    max_attempts: 3,
                    strategy: Some(pb::retry_policy::Strategy::ExponentialBackoff(
                        pb::ExponentialBackoff {
                            initial: Some(convert::duration(10)),
                            max: Some(convert::duration(1000)),
                            multiplier: 2.0,
                        },
                    )),
                });
            }
            Some(pb::settings::PubSub::Subscription(sub)) => {
                sub.receive_batch_size =
                    Some(i32::try_from(self.options.max_receive_batch).unwrap_or(32));
                sub.long_polling_timeout =
                    Some(convert::duration(self.options.max_long_polling_ms.min(20_000)));
                sub.fifo = Some(sub.fifo.unwrap_or(false));
                out.backoff_policy = Some(pb::RetryPolicy {
                    max_attempts: i32::try_from(self.options.max_delivery_attempts).unwrap_or(17),
                    strategy: Some(pb::retry_policy::Strategy::CustomizedBackoff(
                        pb::CustomizedBackoff {
                            next: [
                                1u64, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600,
                                1200, 1800, 3600, 7200,
                            ]
                            .iter()
                            .map(|s| convert::duration(s * 1000))
                            .collect(),
                        },
                    )),
                });
            }
            None => {}
        }
        out
    }
}

fn peer_of<T>(r: &Request<T>) -> SocketAddr {
    r.remote_addr().unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
}

fn not_implemented(call: &str) -> pb::Status {
    status(pb::Code::NotImplemented, format!("{call} is not supported by ramjet"))
}

#[tonic::async_trait]
impl pb::messaging_service_server::MessagingService for Service {
    async fn query_route(
        &self,
        request: Request<pb::QueryRouteRequest>,
    ) -> Result<Response<pb::QueryRouteResponse>, Status> {
        let peer = peer_of(&request);
        Ok(Response::new(self.query_route_impl(request.into_inner(), peer).await))
    }

    async fn heartbeat(
        &self,
        _request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        Ok(Response::new(pb::HeartbeatResponse { status: Some(ok()) }))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let peer = peer_of(&request);
        Ok(Response::new(self.send_impl(request.into_inner(), peer).await))
    }

    async fn query_assignment(
        &self,
        request: Request<pb::QueryAssignmentRequest>,
    ) -> Result<Response<pb::QueryAssignmentResponse>, Status> {
        let peer = peer_of(&request);
        let req = request.into_inner();
        let topic = name(req.topic.as_ref()).to_string();
        if !valid_name(&topic) {
            return Ok(Response::new(pb::QueryAssignmentResponse {
                status: Some(status(pb::Code::IllegalTopic, "topic name is illegal")),
                assignments: vec![],
            }));
        }
        let resp = match self.broker.topic_config(&topic, peer).await {
            Ok(Some(cfg)) if cfg.perm & 4 != 0 && cfg.read_queue_nums > 0 => {
                pb::QueryAssignmentResponse {
                    status: Some(ok()),
                    assignments: vec![pb::Assignment {
                        message_queue: Some(pb::MessageQueue {
                            topic: req.topic.clone(),
                            id: -1,
                            permission: pb::Permission::ReadWrite as i32,
                            broker: Some(self.broker_resource()),
                            accept_message_types: Self::accept_types(),
                        }),
                    }],
                }
            }
            Ok(Some(_)) => pb::QueryAssignmentResponse { status: Some(ok()), assignments: vec![] },
            Ok(None) => pb::QueryAssignmentResponse {
                status: Some(status(pb::Code::TopicNotFound, "topic not found")),
                assignments: vec![],
            },
            Err(f) => {
                pb::QueryAssignmentResponse { status: Some(failure(&f)), assignments: vec![] }
            }
        };
        Ok(Response::new(resp))
    }

    type ReceiveMessageStream = BoxStream<pb::ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        request: Request<pb::ReceiveMessageRequest>,
    ) -> Result<Response<Self::ReceiveMessageStream>, Status> {
        let peer = peer_of(&request);
        let items = self.receive_impl(request.into_inner(), peer).await;
        Ok(Response::new(Box::pin(tokio_stream::iter(items.into_iter().map(Ok)))))
    }

    async fn ack_message(
        &self,
        request: Request<pb::AckMessageRequest>,
    ) -> Result<Response<pb::AckMessageResponse>, Status> {
        let req = request.into_inner();
        let group = name(req.group.as_ref()).to_string();
        let topic = name(req.topic.as_ref()).to_string();
        if req.entries.is_empty() || req.entries.len() > 1024 {
            return Ok(Response::new(pb::AckMessageResponse {
                status: Some(status(pb::Code::BadRequest, "1 to 1024 entries")),
                entries: vec![],
            }));
        }
        let entries: Vec<pb::AckMessageResultEntry> = req
            .entries
            .iter()
            .map(|e| pb::AckMessageResultEntry {
                message_id: e.message_id.clone(),
                receipt_handle: e.receipt_handle.clone(),
                status: Some(self.ack_one(&group, &topic, &e.receipt_handle)),
            })
            .collect();
        let first = entries.first().and_then(|e| e.status.clone()).unwrap_or_else(ok);
        let same = entries.iter().all(|e| e.status.as_ref().map(|s| s.code) == Some(first.code));
        let top = if same { first } else { status(pb::Code::MultipleResults, "multiple results") };
        Ok(Response::new(pb::AckMessageResponse { status: Some(top), entries }))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<pb::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<Response<pb::ForwardMessageToDeadLetterQueueResponse>, Status> {
        let peer = peer_of(&request);
        let s = self.forward_dlq_impl(request.into_inner(), peer).await;
        Ok(Response::new(pb::ForwardMessageToDeadLetterQueueResponse { status: Some(s) }))
    }

    type PullMessageStream = BoxStream<pb::PullMessageResponse>;

    async fn pull_message(
        &self,
        _request: Request<pb::PullMessageRequest>,
    ) -> Result<Response<Self::PullMessageStream>, Status> {
        let r = pb::PullMessageResponse {
            content: Some(pb::pull_message_response::Content::Status(not_implemented(
                "PullMessage",
            ))),
        };
        Ok(Response::new(Box::pin(tokio_stream::iter(std::iter::once(Ok(r))))))
    }

    async fn update_offset(
        &self,
        _request: Request<pb::UpdateOffsetRequest>,
    ) -> Result<Response<pb::UpdateOffsetResponse>, Status> {
        Ok(Response::new(pb::UpdateOffsetResponse {
            status: Some(not_implemented("UpdateOffset")),
        }))
    }

    async fn get_offset(
        &self,
        _request: Request<pb::GetOffsetRequest>,
    ) -> Result<Response<pb::GetOffsetResponse>, Status> {
        Ok(Response::new(pb::GetOffsetResponse {
            status: Some(not_implemented("GetOffset")),
            offset: 0,
        }))
    }

    async fn query_offset(
        &self,
        _request: Request<pb::QueryOffsetRequest>,
    ) -> Result<Response<pb::QueryOffsetResponse>, Status> {
        Ok(Response::new(pb::QueryOffsetResponse {
            status: Some(not_implemented("QueryOffset")),
            offset: 0,
        }))
    }

    async fn end_transaction(
        &self,
        _request: Request<pb::EndTransactionRequest>,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        Ok(Response::new(pb::EndTransactionResponse {
            status: Some(not_implemented("EndTransaction")),
        }))
    }

    type TelemetryStream = BoxStream<pb::TelemetryCommand>;

    async fn telemetry(
        &self,
        request: Request<Streaming<pb::TelemetryCommand>>,
    ) -> Result<Response<Self::TelemetryStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::TelemetryCommand, Status>>(16);
        let svc = self.clone();
        tokio::spawn(async move {
            // Bounded by the client's stream: ends when it closes or errs.
            while let Ok(Some(cmd)) = inbound.message().await {
                let reply = match cmd.command {
                    Some(pb::telemetry_command::Command::Settings(s)) => pb::TelemetryCommand {
                        status: Some(ok()),
                        command: Some(pb::telemetry_command::Command::Settings(
                            svc.settings_reply(&s),
                        )),
                    },
                    // Thread stacks, verification results: nothing to answer.
                    _ => continue,
                };
                if tx.send(Ok(reply)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn notify_client_termination(
        &self,
        _request: Request<pb::NotifyClientTerminationRequest>,
    ) -> Result<Response<pb::NotifyClientTerminationResponse>, Status> {
        Ok(Response::new(pb::NotifyClientTerminationResponse { status: Some(ok()) }))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<pb::ChangeInvisibleDurationRequest>,
    ) -> Result<Response<pb::ChangeInvisibleDurationResponse>, Status> {
        Ok(Response::new(self.change_impl(&request.into_inner())))
    }

    async fn recall_message(
        &self,
        _request: Request<pb::RecallMessageRequest>,
    ) -> Result<Response<pb::RecallMessageResponse>, Status> {
        Ok(Response::new(pb::RecallMessageResponse {
            status: Some(not_implemented("RecallMessage")),
            message_id: String::new(),
        }))
    }

    async fn sync_lite_subscription(
        &self,
        _request: Request<pb::SyncLiteSubscriptionRequest>,
    ) -> Result<Response<pb::SyncLiteSubscriptionResponse>, Status> {
        Ok(Response::new(pb::SyncLiteSubscriptionResponse {
            status: Some(not_implemented("SyncLiteSubscription")),
        }))
    }
}
