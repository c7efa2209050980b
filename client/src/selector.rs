//! Queue selectors: the caller picks the write queue of a send, so that messages with the
//! same key (an order id, say) land in the same queue and are consumed in send order.
//!
//! Pure functions, no I/O.
//!
//! ```
//! use ramjet_client::selector::{MessageQueueSelector, SelectByHash};
//! use ramjet_client::{Message, MessageQueue};
//!
//! let queues: Vec<MessageQueue> = (0..4)
//!     .map(|queue_id| MessageQueue { topic: "t".into(), broker_name: "b".into(), queue_id })
//!     .collect();
//! let msg = Message::new("t", "paid");
//! let a = SelectByHash::new("order-17").select(&queues, &msg);
//! let b = SelectByHash::new("order-17").select(&queues, &msg);
//! assert_eq!(a, b);
//! // Any closure with the same shape is a selector too.
//! let first = |_: &[MessageQueue], _: &Message| 0;
//! assert_eq!(first.select(&queues, &msg), 0);
//! ```

use crate::message::{Message, MessageQueue};

/// Picks one of a topic's write queues for a message: returns an index into `queues`
/// (taken modulo `queues.len()` by the producer, so any value is safe).
pub trait MessageQueueSelector {
    /// The index of the queue to send `msg` to; `queues` is never empty.
    fn select(&self, queues: &[MessageQueue], msg: &Message) -> usize;
}

impl<F> MessageQueueSelector for F
where
    F: Fn(&[MessageQueue], &Message) -> usize,
{
    fn select(&self, queues: &[MessageQueue], msg: &Message) -> usize {
        self(queues, msg)
    }
}

/// Selects by the Java `String.hashCode` of a key, as the reference's
/// `SelectMessageQueueByHash` does with a string argument: the same key always maps to
/// the same queue index for the same queue count, in Rust and Java clients alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectByHash {
    key: String,
}

impl SelectByHash {
    /// A selector for `key`.
    pub fn new(key: impl Into<String>) -> SelectByHash {
        SelectByHash { key: key.into() }
    }
}

impl MessageQueueSelector for SelectByHash {
    fn select(&self, queues: &[MessageQueue], _msg: &Message) -> usize {
        hash_index(&self.key, queues.len())
    }
}

/// `abs(hashCode(key) % len)`, the reference's arithmetic; 0 when `len` is 0.
pub fn hash_index(key: &str, len: usize) -> usize {
    let Ok(len) = i32::try_from(len) else { return 0 };
    if len == 0 {
        return 0;
    }
    (java_string_hash(key) % len).unsigned_abs() as usize
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units,
/// wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values from java.lang.String#hashCode.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash("hello world"), 1_794_106_052);
        assert_eq!(java_string_hash("order-1234567890"), 1_160_240_762);
        assert_eq!(java_string_hash("order-3000009"), -1_983_210_371);
    }

    #[test]
    fn hash_index_is_the_absolute_remainder() {
        // -1983210371 % 7 = -2 in Java (the remainder keeps the dividend's sign); abs → 2.
        assert_eq!(hash_index("order-3000009", 7), 2);
        assert_eq!(hash_index("order-1234567890", 7), 2);
        assert_eq!(hash_index("a", 4), 1);
        assert_eq!(hash_index("anything", 0), 0);
        for n in 1..20 {
            assert!(hash_index("k", n) < n);
        }
    }
}
