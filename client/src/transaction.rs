//! Transactional sends: half message, local transaction, END_TRANSACTION, and answers
//! to the broker's CHECK_TRANSACTION_STATE.
//!
//! Lives on: the executor of its [`Client`] (tasks for the heartbeat and the check
//! answers are spawned there).
//!
//! [`TransactionProducer::send_in_transaction`] sends the message as a half (sysFlag
//! 0x4, properties TRAN_MSG=true and PGROUP=group), runs the local transaction, and
//! sends END_TRANSACTION (one-way) with its outcome: commit (8), rollback (12), or
//! nothing for [`LocalTransactionState::Unknown`], which leaves the decision to a later
//! check. The broker checks a half without an end by sending CHECK_TRANSACTION_STATE to
//! a producer of the group it learned from HEART_BEAT; the connection's handler is
//! synchronous, so it queues the check on a channel and a task asks the check listener
//! and sends the END (fromTransactionCheck=true). The producer heartbeats its group to
//! every master at start and every 30 s.
//!
//! The request building and parsing below are pure functions, unit-tested here.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use ramjet_proto::body::{self, HeartbeatData, ProducerData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CheckTransactionStateRequestHeader, CommandHeader, EndTransactionRequestHeader,
};
use ramjet_proto::message::{
    decode_offset_msg_id, decode_record, property, StoredMessage, SYSFLAG_TRANSACTION_COMMIT,
    SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK,
};
use ramjet_proto::{Frame, Header, LanguageCode, SerializeType};

use crate::client::Client;
use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::message::{Message, SendResult};
use crate::producer::Producer;
use crate::runtime::{self, Task};
use crate::transport::ServerRequestHandler;

/// How often the producer group is heartbeated to the brokers.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);

/// The outcome of a local transaction (the reference's `LocalTransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTransactionState {
    /// Make the message visible (END with 8).
    Commit,
    /// Drop the message (END with 12).
    Rollback,
    /// Not decided yet: no END; the broker will check back.
    Unknown,
}

impl LocalTransactionState {
    /// The END_TRANSACTION `commitOrRollback` value, `None` for `Unknown`.
    pub fn end_code(self) -> Option<i32> {
        match self {
            LocalTransactionState::Commit => Some(SYSFLAG_TRANSACTION_COMMIT),
            LocalTransactionState::Rollback => Some(SYSFLAG_TRANSACTION_ROLLBACK),
            LocalTransactionState::Unknown => None,
        }
    }
}

/// What [`TransactionProducer::send_in_transaction`] did.
#[derive(Debug, Clone)]
pub struct TransactionSendResult {
    /// The half message's send result (`offset_msg_id` locates it in the commit log).
    pub send: SendResult,
    /// The local transaction's outcome (what END carried, if any).
    pub state: LocalTransactionState,
}

/// The check listener: asked about a half message the broker has no end for.
pub type CheckListener = Rc<dyn Fn(&StoredMessage) -> LocalTransactionState>;

// ---------------------------------------------------------------------------------------
// Pure protocol pieces.

/// `msg` marked as a half message of `group` (TRAN_MSG=true, PGROUP=group).
pub fn half_message(mut msg: Message, group: &str) -> Message {
    msg.set_property(property::TRANSACTION_PREPARED, "true");
    msg.set_property(property::PRODUCER_GROUP, group);
    msg
}

/// Where an END goes and what it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndArgs {
    /// Producer group.
    pub producer_group: String,
    /// Queue offset of the half message.
    pub tran_state_table_offset: i64,
    /// Commit-log offset of the half message.
    pub commit_log_offset: i64,
    /// 8 commit, 12 rollback.
    pub commit_or_rollback: i32,
    /// True when answering a check.
    pub from_transaction_check: bool,
    /// The message's UNIQ_KEY (or offset id).
    pub msg_id: String,
    /// Transaction id, when known.
    pub transaction_id: Option<String>,
}

/// END_TRANSACTION (37) for `args`.
pub fn end_request(args: &EndArgs, st: SerializeType) -> Header {
    let mut h = Header::request(request::END_TRANSACTION, 0, st);
    EndTransactionRequestHeader {
        topic: None,
        producer_group: args.producer_group.clone(),
        tran_state_table_offset: args.tran_state_table_offset,
        commit_log_offset: args.commit_log_offset,
        commit_or_rollback: args.commit_or_rollback,
        from_transaction_check: Some(args.from_transaction_check),
        msg_id: args.msg_id.clone(),
        transaction_id: args.transaction_id.clone(),
    }
    .encode(&mut h.ext_fields);
    h
}

/// The END for a half send whose local transaction gave `state` (`None` for Unknown).
///
/// # Errors
/// `InvalidArgument` when the send result's offsetMsgId does not decode.
pub fn end_after_send(
    group: &str,
    send: &SendResult,
    state: LocalTransactionState,
) -> Result<Option<EndArgs>, ClientError> {
    let Some(code) = state.end_code() else { return Ok(None) };
    let (_, commit_log_offset) = decode_offset_msg_id(&send.offset_msg_id).ok_or_else(|| {
        ClientError::InvalidArgument { reason: format!("offsetMsgId {:?}", send.offset_msg_id) }
    })?;
    Ok(Some(EndArgs {
        producer_group: group.to_string(),
        tran_state_table_offset: send.queue_offset,
        commit_log_offset,
        commit_or_rollback: code,
        from_transaction_check: false,
        msg_id: send.msg_id.clone(),
        transaction_id: Some(send.msg_id.clone()),
    }))
}

/// One CHECK_TRANSACTION_STATE from a broker.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    /// The request header.
    pub header: CheckTransactionStateRequestHeader,
    /// The half message, with its real topic.
    pub message: StoredMessage,
}

/// Parses a CHECK_TRANSACTION_STATE frame; `None` for other codes or a malformed one.
pub fn parse_check_request(frame: &Frame) -> Option<CheckRequest> {
    if frame.header.code != request::CHECK_TRANSACTION_STATE {
        return None;
    }
    let header = CheckTransactionStateRequestHeader::decode(&frame.header.ext_fields).ok()?;
    let message = decode_record(&frame.body, false).ok()?;
    Some(CheckRequest { header, message })
}

/// The END answering `check` with `state` (`None` for Unknown: the broker asks again).
pub fn end_for_check(
    group: &str,
    check: &CheckRequest,
    state: LocalTransactionState,
) -> Option<EndArgs> {
    let code = state.end_code()?;
    let uniq = check.message.property(property::UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
    let msg_id = check.header.msg_id.clone().or(uniq).unwrap_or_default();
    Some(EndArgs {
        producer_group: group.to_string(),
        tran_state_table_offset: check.header.tran_state_table_offset,
        commit_log_offset: check.header.commit_log_offset,
        commit_or_rollback: code,
        from_transaction_check: true,
        transaction_id: check.header.transaction_id.clone().or_else(|| Some(msg_id.clone())),
        msg_id,
    })
}

/// The broker address to answer a check about a record stored by `store_host`: the
/// known master with the same port (and the same IP unless the store host's is
/// unspecified), else the store host itself.
pub fn check_reply_addr(store_host: SocketAddr, known: &BTreeSet<String>) -> String {
    let matches = |addr: &String| match addr.parse::<SocketAddr>() {
        Ok(a) => {
            a.port() == store_host.port()
                && (store_host.ip().is_unspecified() || a.ip() == store_host.ip())
        }
        Err(_) => false,
    };
    known.iter().find(|a| matches(a)).cloned().unwrap_or_else(|| store_host.to_string())
}

/// HEART_BEAT (34) naming `group` as a producer group of `client_id`.
pub fn producer_heartbeat_request(
    client_id: &str,
    group: &str,
    st: SerializeType,
) -> (Header, Vec<u8>) {
    let data = HeartbeatData {
        client_id: client_id.to_string(),
        producer_data_set: vec![ProducerData { group_name: group.to_string() }],
        ..Default::default()
    };
    let mut h = Header::request(request::HEART_BEAT, 0, st);
    h.language = LanguageCode::JAVA;
    (h, body::to_json(&data))
}

// ---------------------------------------------------------------------------------------
// The producer.

/// A producer of transactional messages. Cheap to clone; clones share the producer,
/// the heartbeat and the check answering. Call [`TransactionProducer::shutdown`] to
/// stop the background tasks and flush queued ENDs.
#[derive(Clone)]
pub struct TransactionProducer {
    producer: Producer,
    shared: Rc<Shared>,
}

struct Shared {
    /// Master addresses the group was heartbeated to.
    heartbeated: RefCell<BTreeSet<String>>,
    closed: Cell<bool>,
    tasks: RefCell<Vec<Task<()>>>,
}

impl std::fmt::Debug for TransactionProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionProducer").field("group", &self.producer.group()).finish()
    }
}

impl TransactionProducer {
    /// A transactional producer of `group`: creates its client (whose connections pass
    /// checks to `check_listener`), heartbeats the group to every master the NameServer
    /// knows, and starts the heartbeat and check-answering tasks.
    ///
    /// # Panics
    /// When called outside an executor of an enabled runtime ([`crate::runtime`]).
    ///
    /// # Errors
    /// Transport errors of the first cluster lookup or heartbeat.
    pub async fn start(
        config: ClientConfig,
        group: impl Into<String>,
        check_listener: impl Fn(&StoredMessage) -> LocalTransactionState + 'static,
    ) -> Result<TransactionProducer, ClientError> {
        let (sender, receiver) = flume::unbounded::<CheckRequest>();
        let handler: ServerRequestHandler = Rc::new(move |frame: &Frame| {
            if frame.header.code != request::CHECK_TRANSACTION_STATE {
                return None;
            }
            let Some(check) = parse_check_request(frame) else {
                tracing::warn!("malformed CHECK_TRANSACTION_STATE ignored");
                return None;
            };
            if sender.try_send(check).is_err() {
                tracing::debug!("transaction check dropped: producer closed");
            }
            None
        });
        let client = Client::with_handler(config, Some(handler));
        let producer = Producer::new(client, group);
        let tp = TransactionProducer {
            producer,
            shared: Rc::new(Shared {
                heartbeated: RefCell::new(BTreeSet::new()),
                closed: Cell::new(false),
                tasks: RefCell::new(Vec::new()),
            }),
        };
        tp.heartbeat_all().await?;
        let checks =
            runtime::spawn_local(tp.clone().answer_checks(receiver, Rc::new(check_listener)));
        let beats = runtime::spawn_local(tp.clone().heartbeat_loop());
        tp.shared.tasks.borrow_mut().extend([checks, beats]);
        Ok(tp)
    }

    /// The underlying producer (for plain sends on the same client).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// The producer group.
    pub fn group(&self) -> &str {
        self.producer.group()
    }

    /// Sends `msg` as a half message, runs `local` with it, and sends END with the
    /// outcome (none for `Unknown`; the broker will check back). The END is one-way: it
    /// is queued on the connection when this returns.
    ///
    /// # Errors
    /// The half send's errors (then `local` does not run), and transport errors of END.
    pub async fn send_in_transaction(
        &self,
        msg: Message,
        local: impl FnOnce(&Message) -> LocalTransactionState,
    ) -> Result<TransactionSendResult, ClientError> {
        let half = half_message(msg, self.group());
        let send =
            self.producer.send_with_sys_flag(half.clone(), SYSFLAG_TRANSACTION_PREPARED).await?;
        let addr =
            self.producer.client().master_addr(&send.queue.broker_name, &send.queue.topic).await?;
        if !self.shared.heartbeated.borrow().contains(&addr) {
            // A broker the start-up heartbeat missed: tell it now, so it can check back.
            self.heartbeat(&addr).await?;
        }
        let state = local(&half);
        if let Some(args) = end_after_send(self.group(), &send, state)? {
            let header = end_request(&args, self.producer.client().config().serialize_type);
            self.producer.client().invoke_oneway(&addr, header, &[]).await?;
        }
        Ok(TransactionSendResult { send, state })
    }

    /// Stops the background tasks, flushes queued ENDs and closes the connections.
    pub async fn shutdown(&self) {
        self.shared.closed.set(true);
        // Dropping a task cancels it.
        let tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
        drop(tasks);
        self.producer.client().shutdown().await;
    }

    async fn heartbeat(&self, addr: &str) -> Result<(), ClientError> {
        let client = self.producer.client();
        let st = client.config().serialize_type;
        let (header, body) =
            producer_heartbeat_request(&client.config().client_id, self.group(), st);
        let reply = client.invoke(addr, header, &body).await?;
        if reply.header.code != response::SUCCESS {
            return Err(ClientError::Broker {
                code: reply.header.code,
                remark: reply.header.remark.unwrap_or_default(),
            });
        }
        self.shared.heartbeated.borrow_mut().insert(addr.to_string());
        Ok(())
    }

    async fn heartbeat_all(&self) -> Result<(), ClientError> {
        let info = self.producer.client().cluster_info().await?;
        let mut addrs: BTreeSet<String> = info
            .broker_addr_table
            .values()
            .filter_map(|b| b.master_addr().map(str::to_string))
            .collect();
        addrs.extend(self.shared.heartbeated.borrow().iter().cloned());
        for addr in addrs {
            self.heartbeat(&addr).await?;
        }
        Ok(())
    }

    async fn heartbeat_loop(self) {
        while !self.shared.closed.get() {
            runtime::sleep(HEARTBEAT_INTERVAL).await;
            if let Err(e) = self.heartbeat_all().await {
                tracing::warn!(error = %e, group = self.group(), "producer heartbeat failed");
            }
        }
    }

    async fn answer_checks(self, checks: flume::Receiver<CheckRequest>, listener: CheckListener) {
        while let Ok(check) = checks.recv_async().await {
            if self.shared.closed.get() {
                return;
            }
            let state = listener(&check.message);
            let Some(args) = end_for_check(self.group(), &check, state) else { continue };
            let addr =
                check_reply_addr(check.message.store_host, &self.shared.heartbeated.borrow());
            let client = self.producer.client();
            let header = end_request(&args, client.config().serialize_type);
            if let Err(e) = client.invoke_oneway(&addr, header, &[]).await {
                tracing::warn!(error = %e, %addr, "END for a transaction check failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageQueue, SendStatus};

    #[test]
    fn half_message_carries_tran_msg_and_group() {
        let m = half_message(Message::new("t", "b").with_delay_level(2), "g");
        assert_eq!(m.property("TRAN_MSG"), Some("true"));
        assert_eq!(m.property("PGROUP"), Some("g"));
        assert_eq!(m.property("DELAY"), Some("2"));
    }

    #[test]
    fn outcomes_map_to_end_codes() {
        assert_eq!(LocalTransactionState::Commit.end_code(), Some(8));
        assert_eq!(LocalTransactionState::Rollback.end_code(), Some(12));
        assert_eq!(LocalTransactionState::Unknown.end_code(), None);
    }

    fn send_result() -> SendResult {
        let store: SocketAddr = "127.0.0.1:10911".parse().expect("addr");
        SendResult {
            status: SendStatus::Ok,
            msg_id: "UNIQ".into(),
            offset_msg_id: ramjet_proto::message::offset_msg_id(&store, 4096),
            queue: MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: 1 },
            queue_offset: 7,
        }
    }

    #[test]
    fn end_after_send_names_the_half() {
        let args = end_after_send("g", &send_result(), LocalTransactionState::Commit)
            .expect("decodes")
            .expect("an end");
        assert_eq!((args.commit_log_offset, args.tran_state_table_offset), (4096, 7));
        assert_eq!(args.commit_or_rollback, 8);
        assert!(!args.from_transaction_check);
        assert!(end_after_send("g", &send_result(), LocalTransactionState::Unknown)
            .expect("ok")
            .is_none());
        let mut bad = send_result();
        bad.offset_msg_id = "zz".into();
        assert!(end_after_send("g", &bad, LocalTransactionState::Rollback).is_err());
    }

    #[test]
    fn end_request_round_trips_through_the_typed_header() {
        let args = end_after_send("g", &send_result(), LocalTransactionState::Rollback)
            .expect("ok")
            .expect("end");
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let h = end_request(&args, st);
            assert_eq!(h.code, request::END_TRANSACTION);
            let d = EndTransactionRequestHeader::decode(&h.ext_fields).expect("decodes");
            assert_eq!(d.commit_or_rollback, 12);
            assert_eq!(d.commit_log_offset, 4096);
            assert_eq!(d.producer_group, "g");
        }
    }

    #[test]
    fn check_frames_parse_and_answer_with_from_check() {
        let mut h = Header::request(request::CHECK_TRANSACTION_STATE, 0, SerializeType::Json);
        h.ext_fields.insert("tranStateTableOffset", "3");
        h.ext_fields.insert("commitLogOffset", "99");
        h.ext_fields.insert("msgId", "K");
        // Not a record: parsing refuses it without panicking.
        let frame = Frame { header: h.clone(), body: bytes::Bytes::from_static(b"junk") };
        assert!(parse_check_request(&frame).is_none());
        let other = Frame {
            header: Header::request(request::HEART_BEAT, 0, SerializeType::Json),
            body: bytes::Bytes::new(),
        };
        assert!(parse_check_request(&other).is_none());
    }

    #[test]
    fn a_check_with_a_record_is_answered_from_the_check() {
        use ramjet_proto::message::{encode_properties, encode_record, MessageMeta};
        let host: SocketAddr = "127.0.0.1:10911".parse().expect("addr");
        let meta = MessageMeta {
            queue_id: 0,
            flag: 0,
            sys_flag: SYSFLAG_TRANSACTION_PREPARED,
            born_timestamp: 1,
            born_host: host,
            store_host: host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
        };
        let props = encode_properties([("UNIQ_KEY", "U1"), ("TRAN_MSG", "true")]);
        let mut record = bytes::BytesMut::new();
        encode_record(&mut record, &meta, b"body", "real-topic", &props).expect("encodes");
        let mut h = Header::request(request::CHECK_TRANSACTION_STATE, 0, SerializeType::Json);
        h.ext_fields.insert("tranStateTableOffset", "3");
        h.ext_fields.insert("commitLogOffset", "99");
        let frame = Frame { header: h, body: record.freeze() };
        let check = parse_check_request(&frame).expect("parses");
        assert_eq!(&check.message.body[..], b"body");
        let args = end_for_check("g", &check, LocalTransactionState::Commit).expect("an end");
        assert_eq!((args.tran_state_table_offset, args.commit_log_offset), (3, 99));
        assert!(args.from_transaction_check);
        assert_eq!(args.msg_id, "U1");
        assert_eq!(args.commit_or_rollback, 8);
        assert!(end_for_check("g", &check, LocalTransactionState::Unknown).is_none());
    }

    #[test]
    fn check_reply_goes_to_the_known_master_on_the_store_port() {
        let known: BTreeSet<String> =
            ["10.0.0.1:10911".to_string(), "10.0.0.1:10921".to_string()].into();
        let any: SocketAddr = "0.0.0.0:10921".parse().expect("addr");
        assert_eq!(check_reply_addr(any, &known), "10.0.0.1:10921");
        let other: SocketAddr = "10.0.0.9:10911".parse().expect("addr");
        assert_eq!(check_reply_addr(other, &known), "10.0.0.9:10911");
    }

    #[test]
    fn producer_heartbeat_names_the_group() {
        let (h, body) = producer_heartbeat_request("cid", "g", SerializeType::Json);
        assert_eq!(h.code, request::HEART_BEAT);
        let data: HeartbeatData = body::from_json(&body).expect("json");
        assert_eq!(data.producer_data_set[0].group_name, "g");
        assert!(data.consumer_data_set.is_empty());
    }
}
