//! The broker-relayed admin requests a push consumer answers, as the Java client's
//! `ClientRemotingProcessor`: GET_CONSUMER_RUNNING_INFO (307) with a
//! `ConsumerRunningInfo`, CONSUME_MESSAGE_DIRECTLY (309) by running the listener on the
//! one message and answering a `ConsumeMessageDirectlyResult`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use ramjet_proto::admin_body::{
    ConsumeMessageDirectlyResult, ConsumeStatus as RunningStatus, ConsumerRunningInfo,
    ProcessQueueInfo,
};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, Header};

use super::inner::Inner;
use super::{ConsumeContext, ConsumeOrderlyStatus, ConsumeStatus, MessageListener};
use crate::message::MessageQueue;

/// The reply to a 307 or 309 for this consumer; `None` for any other request.
pub(super) fn answer(inner: &Inner, frame: &Frame) -> Option<Frame> {
    let h = &frame.header;
    let code = h.code;
    if code != request::GET_CONSUMER_RUNNING_INFO && code != request::CONSUME_MESSAGE_DIRECTLY {
        return None;
    }
    let group = h.ext_fields.get("consumerGroup").unwrap_or_default();
    if group != inner.config.group {
        let remark = format!(
            "The Consumer Group <{}> not exist in this consumer",
            ramjet_proto::text::clip_echo(group)
        );
        return Some(reply(h, response::SYSTEM_ERROR, Some(remark), Vec::new()));
    }
    Some(if code == request::GET_CONSUMER_RUNNING_INFO {
        reply(h, response::SUCCESS, None, running_info(inner).to_json_fastjson())
    } else {
        consume_directly(inner, frame)
    })
}

fn reply(h: &Header, code: i32, remark: Option<String>, body: Vec<u8>) -> Frame {
    let mut header = Header::response_to(h, code);
    header.remark = remark;
    Frame { header, body: body.into() }
}

fn running_info(inner: &Inner) -> ConsumerRunningInfo {
    let mut info = ConsumerRunningInfo::default();
    let orderly = inner.is_orderly();
    let c = &inner.config;
    for (k, v) in [
        ("PROP_CONSUME_TYPE", "CONSUME_PASSIVELY".to_string()),
        ("PROP_CONSUME_ORDERLY", orderly.to_string()),
        ("PROP_THREADPOOL_CORE_SIZE", "1".to_string()),
        ("PROP_CLIENT_VERSION", "ramjet".to_string()),
        ("PROP_CONSUMER_START_TIMESTAMP", inner.sub_version.to_string()),
        ("consumerGroup", c.group.clone()),
        ("messageModel", format!("{:?}", c.message_model).to_uppercase()),
        ("pullBatchSize", c.pull_batch_size.to_string()),
        ("consumeMessageBatchMaxSize", c.consume_batch_max_size.to_string()),
        ("pullThresholdForQueue", c.pull_threshold_for_queue.to_string()),
    ] {
        info.properties.insert(k.to_string(), v);
    }
    for s in inner.subscriptions.borrow().iter() {
        info.subscription_set.push(crate::protocol::subscription_data(s, inner.sub_version));
        info.status_table.insert(s.topic.clone(), RunningStatus::default());
    }
    let offsets = inner.offsets.borrow();
    for (mq, entry) in inner.queues.borrow().iter() {
        let pq = entry.pq.borrow();
        let (min, max) = pq.cached_offsets().unwrap_or((0, 0));
        let row = ProcessQueueInfo {
            commit_offset: offsets.get(mq).unwrap_or(-1),
            cached_msg_min_offset: min,
            cached_msg_max_offset: max,
            cached_msg_count: pq.msg_count() as i32,
            cached_msg_size_in_mi_b: (pq.msg_size_bytes() / (1024 * 1024)) as i32,
            locked: pq.locked,
            droped: pq.dropped,
            ..Default::default()
        };
        info.mq_table.push((mq.clone(), row));
    }
    info.mq_table.sort_by(|a, b| a.0.cmp(&b.0));
    info
}

fn consume_directly(inner: &Inner, frame: &Frame) -> Frame {
    let h = &frame.header;
    let msg = match ramjet_proto::message::decode_record(&frame.body, false) {
        Ok(m) => m,
        Err(e) => {
            return reply(h, response::SYSTEM_ERROR, Some(format!("bad message: {e}")), Vec::new())
        }
    };
    let Some(listener) = inner.listener.borrow().clone() else {
        return reply(h, response::SYSTEM_ERROR, Some("no listener registered".into()), Vec::new());
    };
    let queue = MessageQueue {
        topic: msg.topic_str(),
        broker_name: h.ext_fields.get("brokerName").unwrap_or_default().to_string(),
        queue_id: msg.queue_id,
    };
    let ctx = ConsumeContext::new(queue);
    let batch = [msg];
    let start = Instant::now();
    let mut result = ConsumeMessageDirectlyResult::default();
    let outcome = match listener {
        MessageListener::Concurrently(f) => {
            result.auto_commit = true;
            catch_unwind(AssertUnwindSafe(|| f(&batch, &ctx))).map(|s| match s {
                ConsumeStatus::Success => "CR_SUCCESS",
                ConsumeStatus::ReconsumeLater => "CR_LATER",
            })
        }
        MessageListener::Orderly(f) => {
            result.order = true;
            result.auto_commit = true;
            catch_unwind(AssertUnwindSafe(|| f(&batch, &ctx))).map(|s| match s {
                ConsumeOrderlyStatus::Success => "CR_SUCCESS",
                ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => "CR_LATER",
            })
        }
    };
    match outcome {
        Ok(r) => result.consume_result = r.to_string(),
        Err(_) => {
            result.consume_result = "CR_THROW_EXCEPTION".into();
            result.remark = Some("the listener panicked".into());
        }
    }
    result.spent_time_mills = start.elapsed().as_millis() as i64;
    reply(h, response::SUCCESS, None, ramjet_proto::body::to_json(&result))
}
