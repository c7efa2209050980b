//! Order locks for ordered consumption (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ).
//!
//! Lives on: shard 0. A plain state machine over `now`: a queue of a group is granted to a
//! client when free, already its own, or when the holder has not renewed it for
//! `LOCK_EXPIRY_MS` (the reference's 60 s `lockMaxLiveTime`). Unlock releases only locks
//! the asking client holds.
//!
//! Limit: at most `orderLockMaxCount` locks are held; when a new lock would pass it, expired
//! locks are dropped first, and if none is, the queue is not granted (LOCK_BATCH_MQ answers
//! without it, as for a queue another client holds).

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
        let max = crate::table_limits::limits().order_locks_max;
        let mut reported = false;
        for q in queues {
            let key = (group.to_string(), q.clone());
            if !self.locks.contains_key(&key) && !self.room_for_one(max, now_ms) {
                if !reported {
                    crate::table_limits::report(crate::table_limits::TableLimit::OrderLocks);
                    reported = true;
                }
                continue;
            }
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

    /// Whether one more lock fits under `max`, after dropping expired locks if needed.
    fn room_for_one(&mut self, max: usize, now_ms: u64) -> bool {
        if self.locks.len() < max {
            return true;
        }
        self.locks.retain(|_, h| now_ms.saturating_sub(h.last_update_ms) <= LOCK_EXPIRY_MS);
        self.locks.len() < max
    }

    /// Locks held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.locks.len()
    }

    /// True when no lock is held.
    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
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

    #[test]
    fn locks_are_bounded_and_expired_ones_make_room() {
        let max = crate::table_limits::limits().order_locks_max;
        let mut m = LockManager::default();
        let queues: Vec<MessageQueue> = (0..max as i32).map(q).collect();
        assert_eq!(m.lock("g", "c1", &queues, 0).len(), max);
        assert!(m.lock("g2", "c2", &[q(0)], 1_000).is_empty(), "full");
        assert_eq!(m.lock("g", "c1", &[q(0)], 1_000), vec![q(0)], "a renewal needs no room");
        let later = 1_000 + LOCK_EXPIRY_MS + 1;
        assert_eq!(m.lock("g2", "c2", &[q(0)], later), vec![q(0)], "expired locks dropped");
        assert!(m.len() <= max);
    }
}
