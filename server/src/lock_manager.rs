//! Order locks for ordered consumption (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ).
//!
//! Lives on: shard 0. A plain state machine over `now`: a queue of a group is granted to a
//! client when free, already its own, or when the holder has not renewed it for
//! `LOCK_EXPIRY_MS` (the reference's 60 s `lockMaxLiveTime`). Unlock releases only locks
//! the asking client holds.

use std::collections::HashMap;

use ramjet_proto::body::MessageQueue;

/// A lock not renewed for this long is free for others.
pub const LOCK_EXPIRY_MS: u64 = 60_000;

#[derive(Debug, Clone)]
struct Holder {
    client_id: String,
    last_update_ms: u64,
}

/// Locks by (group, queue).
#[derive(Debug, Default)]
pub struct LockManager {
    locks: HashMap<(String, MessageQueue), Holder>,
}

impl LockManager {
    /// Tries to lock each queue for `client_id`; returns the ones it now holds.
    pub fn lock(
        &mut self,
        group: &str,
        client_id: &str,
        queues: &[MessageQueue],
        now_ms: u64,
    ) -> Vec<MessageQueue> {
        let mut granted = Vec::new();
        for q in queues {
            let key = (group.to_string(), q.clone());
            let free = match self.locks.get(&key) {
                None => true,
                Some(h) => {
                    h.client_id == client_id
                        || now_ms.saturating_sub(h.last_update_ms) > LOCK_EXPIRY_MS
                }
            };
            if free {
                self.locks.insert(
                    key,
                    Holder { client_id: client_id.to_string(), last_update_ms: now_ms },
                );
                granted.push(q.clone());
            }
        }
        granted
    }

    /// Releases the queues `client_id` holds among `queues`.
    pub fn unlock(&mut self, group: &str, client_id: &str, queues: &[MessageQueue]) {
        for q in queues {
            let key = (group.to_string(), q.clone());
            if self.locks.get(&key).is_some_and(|h| h.client_id == client_id) {
                self.locks.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: i32) -> MessageQueue {
        MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id: id }
    }

    #[test]
    fn a_lock_is_exclusive_until_released_or_expired() {
        let mut m = LockManager::default();
        assert_eq!(m.lock("g", "c1", &[q(0), q(1)], 0), vec![q(0), q(1)]);
        assert!(m.lock("g", "c2", &[q(0)], 1_000).is_empty());
        assert_eq!(m.lock("g2", "c2", &[q(0)], 1_000), vec![q(0)], "groups are independent");
        assert_eq!(m.lock("g", "c1", &[q(0)], 2_000), vec![q(0)], "renewal");
        m.unlock("g", "c2", &[q(0)]);
        assert!(m.lock("g", "c2", &[q(0)], 3_000).is_empty(), "only the holder unlocks");
        m.unlock("g", "c1", &[q(1)]);
        assert_eq!(m.lock("g", "c2", &[q(1)], 3_000), vec![q(1)]);
        assert_eq!(m.lock("g", "c2", &[q(0)], 2_000 + LOCK_EXPIRY_MS + 1), vec![q(0)], "expired");
    }
}
