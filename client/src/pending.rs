//! The pending-request table of one connection: opaque allocation and the requests
//! waiting for their replies. Pure state, no I/O; the transport stores its completion
//! handle as `T`.
//!
//! Lives on: the executor that owns the connection.
//!
//! Invariants:
//! - an opaque is never handed out while an entry with it is pending;
//! - opaques are positive (`1..=i32::MAX`, wrapping back to 1), so they never collide with
//!   the 0 some peers put in server-initiated requests;
//! - `len() <= in_flight_max`.

use std::collections::HashMap;

/// Requests waiting for replies, keyed by opaque.
#[derive(Debug)]
pub struct PendingTable<T> {
    next_opaque: i32,
    entries: HashMap<i32, T>,
    in_flight_max: usize,
}

impl<T> PendingTable<T> {
    /// An empty table admitting at most `in_flight_max` pending requests.
    ///
    /// # Panics
    /// When `in_flight_max` is 0.
    pub fn new(in_flight_max: usize) -> Self {
        assert!(in_flight_max > 0, "in_flight_max must be at least 1");
        PendingTable { next_opaque: 1, entries: HashMap::new(), in_flight_max }
    }

    /// Allocates an opaque and files `value` under it.
    ///
    /// # Errors
    /// Gives `value` back when the table is full.
    pub fn register(&mut self, value: T) -> Result<i32, T> {
        if self.entries.len() >= self.in_flight_max {
            return Err(value);
        }
        let opaque = self.allocate_opaque();
        let previous = self.entries.insert(opaque, value);
        assert!(previous.is_none(), "opaque {opaque} handed out twice");
        Ok(opaque)
    }

    /// Allocates an opaque that is not pending, without filing anything (for one-way
    /// requests, which get no reply).
    pub fn allocate_opaque(&mut self) -> i32 {
        // The table holds fewer than i32::MAX entries, so this loop ends; in practice it
        // runs once.
        loop {
            let opaque = self.next_opaque;
            self.next_opaque = if opaque == i32::MAX { 1 } else { opaque + 1 };
            if !self.entries.contains_key(&opaque) {
                return opaque;
            }
        }
    }

    /// Removes and returns the entry for a reply's opaque; `None` for a reply nobody
    /// waits for (late, after a timeout, or bogus).
    pub fn complete(&mut self, opaque: i32) -> Option<T> {
        self.entries.remove(&opaque)
    }

    /// Removes every entry (the connection failed).
    pub fn drain(&mut self) -> Vec<T> {
        self.entries.drain().map(|(_, v)| v).collect()
    }

    /// Requests pending now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured limit.
    pub fn in_flight_max(&self) -> usize {
        self.in_flight_max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_complete_round_trip() {
        let mut t = PendingTable::new(4);
        let a = t.register("a").unwrap();
        let b = t.register("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(t.complete(b), Some("b"));
        assert_eq!(t.complete(b), None, "a second reply to the same opaque is ignored");
        assert_eq!(t.complete(a), Some("a"));
        assert!(t.is_empty());
    }

    #[test]
    fn full_table_refuses_and_returns_the_value() {
        let mut t = PendingTable::new(2);
        t.register(1).unwrap();
        t.register(2).unwrap();
        assert_eq!(t.register(3), Err(3));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn opaque_wraps_to_one_and_skips_pending_entries() {
        let mut t = PendingTable::new(8);
        t.next_opaque = 1;
        let first = t.register(()).unwrap();
        assert_eq!(first, 1);
        t.next_opaque = i32::MAX;
        assert_eq!(t.register(()).unwrap(), i32::MAX);
        // Wraps to 1, which is still pending, so 2 comes next.
        assert_eq!(t.register(()).unwrap(), 2);
        assert!(t.allocate_opaque() > 0);
    }

    #[test]
    fn drain_empties_the_table() {
        let mut t = PendingTable::new(8);
        for i in 0..5 {
            t.register(i).unwrap();
        }
        let mut all = t.drain();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4]);
        assert!(t.is_empty());
    }
}
