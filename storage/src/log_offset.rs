//! Global commit-log offsets: one 63-bit offset space per broker that also names the log.
//!
//! Lives on: every shard (pure functions).
//!
//! ```text
//!  63  62        56 55                                                    0
//! ┌───┬────────────┬───────────────────────────────────────────────────────┐
//! │ 0 │ log id (7) │ position in that log's byte stream (56 bits, 64 PiB)  │
//! └───┴────────────┴───────────────────────────────────────────────────────┘
//! ```
//!
//! The global offset is what leaves the broker: the stored record's PHYSICALOFFSET, the
//! offsetMsgId, the consume-queue entry, and what clients send back in
//! CONSUMER_SEND_MSG_BACK, END_TRANSACTION and VIEW_MESSAGE_BY_ID. So a request carrying
//! only an offset is routed to its log's shard without a lookup. The sign bit stays 0, so
//! Java clients see a positive `long`. Log 0's offsets equal its positions, as in RocketMQ.

/// Bits of the position part.
pub const LOG_POSITION_BITS: u32 = 56;
/// Largest log id (7 bits).
pub const LOG_ID_MAX: u32 = 127;
/// Largest position in one log.
pub const LOG_POSITION_MAX: u64 = (1 << LOG_POSITION_BITS) - 1;

/// The global offset of `position` in log `log_id`.
///
/// ```
/// use ramjet_storage::{log_offset_of, split_log_offset};
/// let offset = log_offset_of(3, 4096);
/// assert_eq!(offset, (3 << 56) | 4096);
/// assert_eq!(split_log_offset(offset), Some((3, 4096)));
/// ```
///
/// # Panics
/// When `log_id > LOG_ID_MAX` or `position > LOG_POSITION_MAX` (caller bugs: log ids are
/// fixed at store creation and positions cannot reach 2^56).
pub fn log_offset_of(log_id: u32, position: u64) -> i64 {
    assert!(log_id <= LOG_ID_MAX, "log id {log_id} over {LOG_ID_MAX}");
    assert!(position <= LOG_POSITION_MAX, "log position {position} over 2^56");
    ((u64::from(log_id) << LOG_POSITION_BITS) | position) as i64
}

/// Splits a global offset into log id and position; `None` for a negative offset (which
/// no log produces, so it came from a bad request).
///
/// ```
/// use ramjet_storage::split_log_offset;
/// assert_eq!(split_log_offset(100), Some((0, 100)));
/// assert_eq!(split_log_offset(-1), None);
/// ```
pub fn split_log_offset(offset: i64) -> Option<(u32, u64)> {
    let raw = u64::try_from(offset).ok()?;
    Some(((raw >> LOG_POSITION_BITS) as u32, raw & LOG_POSITION_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn split_inverts_log_offset_of(log_id in 0u32..=LOG_ID_MAX, position in 0u64..=LOG_POSITION_MAX) {
            let offset = log_offset_of(log_id, position);
            prop_assert!(offset >= 0);
            prop_assert_eq!(split_log_offset(offset), Some((log_id, position)));
        }
    }
}
