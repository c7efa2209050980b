//! The push consumer's pull loop decisions as pure functions: whether to pause before a
//! pull ([`pull_pause`], flow control and ordered locks), and what to do with a pull
//! result ([`pull_step`]) given its status, whether it carried messages, and what the
//! queue still holds.
//!
//! Lives on: the stack of one pull loop iteration; no I/O, no clock.
//!
//! What [`pull_step`] answers:
//!
//! | status | messages | step |
//! |---|---|---|
//! | FOUND | some | [`PullStep::Deliver`]: into the process queue, wake the consume loop |
//! | FOUND (all filtered), NO_NEW_MSG, NO_MATCHED_MSG, RETRY_IMMEDIATELY | none | [`PullStep::Skip`] |
//! | OFFSET_ILLEGAL | — | [`PullStep::Restart`] |
//!
//! Every step but `Restart` pulls next from the result's `nextBeginOffset`. `Skip` also
//! moves the consumer offset there when the process queue holds nothing (the reference's
//! `correctTagsOffset`): nothing held can still fail, so the filtered range is done.
//! `Restart` drops the process queue, stores `nextBeginOffset` as the consumer offset
//! and asks for a rebalance, which starts the queue again there.

use std::time::Duration;

use crate::message::PullStatus;
use crate::push_consumer::PushConsumerConfig;

/// The pull loop's next step after a pull result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullStep {
    /// Hand the result's messages to the process queue, wake the consume loop, and pull
    /// next from `next_offset`.
    Deliver {
        /// Where the next pull starts.
        next_offset: i64,
    },
    /// Nothing to consume; pull next from `next_offset`, and when `commit` is set move the
    /// consumer offset there (nothing is held that could still fail).
    Skip {
        /// Where the next pull starts.
        next_offset: i64,
        /// The consumer offset to advance to, if any.
        commit: Option<i64>,
    },
    /// The pulled offset is out of range: stop this queue's pull loop, drop what it holds,
    /// store `reset_offset` as its consumer offset and rebalance, which starts it again.
    Restart {
        /// The offset the broker says to restart from.
        reset_offset: i64,
    },
}

/// The step for a pull that answered `status` with `message_count` messages and
/// `next_begin_offset`, while the queue's process queue holds `held_count` messages.
pub fn pull_step(
    status: PullStatus,
    message_count: usize,
    next_begin_offset: i64,
    held_count: usize,
) -> PullStep {
    match status {
        PullStatus::Found if message_count > 0 => {
            PullStep::Deliver { next_offset: next_begin_offset }
        }
        PullStatus::Found
        | PullStatus::NoNewMsg
        | PullStatus::NoMatchedMsg
        | PullStatus::RetryImmediately => PullStep::Skip {
            next_offset: next_begin_offset,
            commit: (held_count == 0).then_some(next_begin_offset),
        },
        PullStatus::OffsetIllegal => PullStep::Restart { reset_offset: next_begin_offset },
    }
}

/// What flow control looks at before a pull: the load of the queue's process queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueLoad {
    /// Messages held (pulled, not yet consumed).
    pub msg_count: usize,
    /// Their body bytes.
    pub msg_size_bytes: usize,
    /// Distance between the first and the last held offset.
    pub max_span: i64,
    /// Ordered mode: the broker's lock on the queue is held.
    pub locked: bool,
}

/// How long the pull loop waits before its next pull, if at all: the reference's flow
/// control (too many messages, bytes, or too wide a span held: `flow_control_delay`),
/// and, for an ordered clustering consumer, a queue whose lock is not held yet
/// (`pull_retry_delay`). The span limit applies to concurrent consumption only.
pub fn pull_pause(
    config: &PushConsumerConfig,
    load: &QueueLoad,
    orderly: bool,
    clustering: bool,
) -> Option<Duration> {
    let flow_control = load.msg_count > config.pull_threshold_for_queue
        || load.msg_size_bytes > config.pull_threshold_size_for_queue_bytes
        || (!orderly && load.max_span > config.consume_concurrently_max_span);
    if flow_control {
        return Some(config.flow_control_delay);
    }
    if orderly && clustering && !load.locked {
        return Some(config.pull_retry_delay);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: each limit of flow control pauses, each at its own threshold, and the span
    // limit only for concurrent consumption. Method: loads just at and just past each
    // threshold of the default config.
    #[test]
    fn flow_control_pauses_past_each_threshold() {
        let c = PushConsumerConfig::new("g");
        let at = QueueLoad {
            msg_count: c.pull_threshold_for_queue,
            msg_size_bytes: c.pull_threshold_size_for_queue_bytes,
            max_span: c.consume_concurrently_max_span,
            locked: true,
        };
        assert_eq!(pull_pause(&c, &at, false, true), None, "at every limit: pull");
        let over = [
            QueueLoad { msg_count: at.msg_count + 1, ..at },
            QueueLoad { msg_size_bytes: at.msg_size_bytes + 1, ..at },
            QueueLoad { max_span: at.max_span + 1, ..at },
        ];
        for load in over {
            assert_eq!(pull_pause(&c, &load, false, true), Some(c.flow_control_delay), "{load:?}");
        }
        let wide = QueueLoad { max_span: at.max_span + 1, ..at };
        assert_eq!(pull_pause(&c, &wide, true, true), None, "ordered ignores the span");
    }

    #[test]
    fn ordered_clustering_waits_for_the_lock() {
        let c = PushConsumerConfig::new("g");
        let unlocked = QueueLoad::default();
        assert_eq!(pull_pause(&c, &unlocked, true, true), Some(c.pull_retry_delay));
        assert_eq!(pull_pause(&c, &unlocked, true, false), None, "broadcasting locks nothing");
        assert_eq!(pull_pause(&c, &unlocked, false, true), None, "concurrent locks nothing");
    }

    // Goal: every row of the module's table. Method: one call per status, with and
    // without messages held.
    #[test]
    fn found_with_messages_delivers_and_moves_on() {
        assert_eq!(pull_step(PullStatus::Found, 3, 13, 5), PullStep::Deliver { next_offset: 13 });
    }

    #[test]
    fn empty_answers_move_on_and_commit_only_when_nothing_is_held() {
        for status in [
            PullStatus::Found,
            PullStatus::NoNewMsg,
            PullStatus::NoMatchedMsg,
            PullStatus::RetryImmediately,
        ] {
            assert_eq!(
                pull_step(status, 0, 20, 0),
                PullStep::Skip { next_offset: 20, commit: Some(20) },
                "{status:?}, nothing held"
            );
            assert_eq!(
                pull_step(status, 0, 20, 2),
                PullStep::Skip { next_offset: 20, commit: None },
                "{status:?}, messages held"
            );
        }
    }

    #[test]
    fn offset_illegal_restarts_the_queue_at_the_brokers_offset() {
        assert_eq!(
            pull_step(PullStatus::OffsetIllegal, 0, 7, 4),
            PullStep::Restart { reset_offset: 7 }
        );
    }
}
