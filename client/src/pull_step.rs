//! What a push consumer's pull loop does with a pull result, as a pure function of the
//! result's status, whether it carried messages, and what the queue still holds.
//!
//! Lives on: the stack of one pull loop iteration; no I/O, no clock.
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

use crate::message::PullStatus;

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

#[cfg(test)]
mod tests {
    use super::*;

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
