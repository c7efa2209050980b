//! Which commit log a `(topic, queue id)` belongs to.
//!
//! Lives on: every shard (a pure function; never cache its result in a shared map).
//!
//! `log_for(topic, queue_id, log_count) = (crc32c(topic bytes) + queue_id) mod log_count`,
//! with the addition wrapping in `u32` (a negative queue id is reinterpreted as `u32`).
//!
//! Why this hash: crc32c is stable across versions and platforms (unlike `std`'s
//! `DefaultHasher`), hardware-accelerated, and already a dependency. Adding the queue id
//! *after* hashing the topic puts a topic's queues `0..n` on `n` consecutive logs, so one
//! topic with at least `log_count` queues uses every log, and so every shard. The log count
//! is fixed when the store is created (`store.meta`), so the mapping never changes for a
//! store; shards own whole logs, so the shard count can change freely.

/// The log that owns `(topic, queue_id)` in a store of `log_count` logs.
///
/// ```
/// use ramjet_storage::log_for;
/// let logs: std::collections::BTreeSet<u32> = (0..8).map(|q| log_for("orders", q, 8)).collect();
/// assert_eq!(logs.len(), 8); // eight queues, eight logs
/// ```
///
/// # Panics
/// When `log_count` is 0 (a store always has at least one log).
pub fn log_for(topic: &str, queue_id: i32, log_count: u32) -> u32 {
    assert!(log_count >= 1, "a store has at least one log");
    crc32c::crc32c(topic.as_bytes()).wrapping_add(queue_id as u32) % log_count
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn log_for_is_stable() {
        // Pinned values: changing the function would remap existing stores.
        assert_eq!(log_for("TopicTest", 0, 1), 0);
        let pinned = crc32c::crc32c(b"TopicTest") % 16;
        assert_eq!(log_for("TopicTest", 0, 16), pinned);
        assert_eq!(log_for("TopicTest", 1, 16), (pinned + 1) % 16);
    }

    proptest! {
        // Goal: one topic's queues spread over all logs. Method: for any topic and log
        // count, `log_count` consecutive queue ids hit every log exactly once.
        #[test]
        fn one_topic_spreads_over_all_logs(topic in "[a-zA-Z0-9_%|-]{1,64}", log_count in 1u32..=128) {
            let logs: BTreeSet<u32> =
                (0..log_count as i32).map(|q| log_for(&topic, q, log_count)).collect();
            prop_assert_eq!(logs.len(), log_count as usize);
        }

        #[test]
        fn log_for_is_in_range(topic in ".{0,200}", queue_id in any::<i32>(), log_count in 1u32..=128) {
            prop_assert!(log_for(&topic, queue_id, log_count) < log_count);
        }
    }
}
