//! Latency-based fault avoidance for sends: remember how slow or broken each broker was,
//! and keep away from it for a while. Pure state; the caller passes `now`.
//!
//! Lives on: the executor of the producer that owns it.
//!
//! This follows the reference's `MQFaultStrategy` and `LatencyFaultToleranceImpl`:
//!
//! ```text
//!  latency of the last send   ≥ 50   100   550   1000   2000   3000   15000 ms
//!  broker not available for     0     0    30 s   60 s   120 s  180 s  600 s
//! ```
//!
//! A failed send counts as a latency of 30 s, so a broker that failed is avoided for
//! 600 s (10 minutes) unless a later send to it succeeds quickly (the entry is replaced
//! by each update). Queue selection walks the route's write queues in round-robin order
//! and takes the first whose broker is available, preferring one other than the broker
//! that just failed; when no broker is available it takes the least bad one (the
//! better half of the brokers, sorted by availability, then latency, then the time they
//! become available, in turn).
//!
//! Two choices differ from the reference, deliberately:
//! - the strategy is on by default (the reference's `sendLatencyFaultEnable` is off);
//! - only failures worth retrying isolate a broker: a refusal of the message itself
//!   (MESSAGE_ILLEGAL, say) says nothing about the broker's health, so it only records
//!   the latency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::message::MessageQueue;
use crate::route::TopicRoute;

/// Latency thresholds, ms (the reference's `latencyMax`).
pub const LATENCY_MAX_MS: [u64; 7] = [50, 100, 550, 1000, 2000, 3000, 15000];
/// How long a broker is avoided after a send that took at least the latency of the same
/// index, ms (the reference's `notAvailableDuration`).
pub const NOT_AVAILABLE_DURATION_MS: [u64; 7] = [0, 0, 30_000, 60_000, 120_000, 180_000, 600_000];
/// The latency a failed send counts as.
pub const ISOLATION_LATENCY: Duration = Duration::from_secs(30);

/// What is known about one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FaultItem {
    name: String,
    latency: Duration,
    available_at: Instant,
}

impl FaultItem {
    fn is_available(&self, now: Instant) -> bool {
        now >= self.available_at
    }
}

/// Per-broker latency and the time until which each broker is avoided.
#[derive(Debug, Default)]
pub struct LatencyFaultTolerance {
    items: HashMap<String, FaultItem>,
    worst_turn: usize,
}

impl LatencyFaultTolerance {
    /// An empty table: every broker is available.
    pub fn new() -> LatencyFaultTolerance {
        LatencyFaultTolerance::default()
    }

    /// Records that `broker` answered in `latency` and is to be avoided for
    /// `not_available` from `now`.
    pub fn update(
        &mut self,
        broker: &str,
        latency: Duration,
        not_available: Duration,
        now: Instant,
    ) {
        let item =
            FaultItem { name: broker.to_string(), latency, available_at: now + not_available };
        self.items.insert(broker.to_string(), item);
    }

    /// False while `broker` is being avoided.
    pub fn is_available(&self, broker: &str, now: Instant) -> bool {
        match self.items.get(broker) {
            Some(item) => item.is_available(now),
            None => true,
        }
    }

    /// Forgets `broker`.
    pub fn remove(&mut self, broker: &str) {
        self.items.remove(broker);
    }

    /// A broker to use when none is available: one of the better half of the known
    /// brokers, taken in turn. `None` when nothing is known.
    pub fn pick_one_at_least(&mut self, now: Instant) -> Option<String> {
        let mut items: Vec<&FaultItem> = self.items.values().collect();
        if items.is_empty() {
            return None;
        }
        // Available first, then lower latency, then sooner available; the name breaks
        // ties so the order does not depend on the hash map.
        items.sort_by(|a, b| {
            b.is_available(now)
                .cmp(&a.is_available(now))
                .then(a.latency.cmp(&b.latency))
                .then(a.available_at.cmp(&b.available_at))
                .then(a.name.cmp(&b.name))
        });
        let half = (items.len() / 2).max(1);
        self.worst_turn = self.worst_turn.wrapping_add(1);
        items.get(self.worst_turn % half).map(|item| item.name.clone())
    }
}

/// Chooses write queues avoiding slow and failed brokers, and learns from each send.
#[derive(Debug)]
pub struct MqFaultStrategy {
    /// Off: plain round robin that only avoids the broker which just failed.
    pub enabled: bool,
    /// Latency thresholds, ascending; see the module table.
    pub latency_max: Vec<Duration>,
    /// Avoidance per threshold, same length as `latency_max`.
    pub not_available_duration: Vec<Duration>,
    tolerance: LatencyFaultTolerance,
}

impl Default for MqFaultStrategy {
    fn default() -> Self {
        MqFaultStrategy {
            enabled: true,
            latency_max: LATENCY_MAX_MS.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            not_available_duration: NOT_AVAILABLE_DURATION_MS
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            tolerance: LatencyFaultTolerance::new(),
        }
    }
}

impl MqFaultStrategy {
    /// The reference's thresholds, enabled.
    pub fn new() -> MqFaultStrategy {
        MqFaultStrategy::default()
    }

    /// How long to avoid a broker whose send took `latency`: the duration of the largest
    /// threshold it reached, zero below all.
    pub fn not_available_duration_for(&self, latency: Duration) -> Duration {
        self.latency_max
            .iter()
            .zip(&self.not_available_duration)
            .rev()
            .find(|(max, _)| latency >= **max)
            .map_or(Duration::ZERO, |(_, d)| *d)
    }

    /// Learns from a send to `broker` that took `latency`; `isolation` (the send failed
    /// in a way worth retrying elsewhere) counts it as [`ISOLATION_LATENCY`].
    pub fn update_fault_item(
        &mut self,
        broker: &str,
        latency: Duration,
        isolation: bool,
        now: Instant,
    ) {
        if !self.enabled {
            return;
        }
        let effective = if isolation { ISOLATION_LATENCY } else { latency };
        let avoid = self.not_available_duration_for(effective);
        self.tolerance.update(broker, latency, avoid, now);
    }

    /// False while `broker` is being avoided (always true when disabled).
    pub fn is_available(&self, broker: &str, now: Instant) -> bool {
        !self.enabled || self.tolerance.is_available(broker, now)
    }

    /// The queue of `route` to send to next. `last_failed` is the broker the previous
    /// attempt of this send failed on. `None` when the route has no write queue.
    pub fn select_queue(
        &mut self,
        route: &TopicRoute,
        last_failed: Option<&str>,
        now: Instant,
    ) -> Option<MessageQueue> {
        if !self.enabled {
            return match last_failed {
                Some(b) => route.select_write_queue_avoiding(b),
                None => route.select_write_queue(),
            }
            .cloned();
        }
        let queues = &route.write_queues;
        let start = route.next_write_index()?;
        let in_turn = (0..queues.len()).filter_map(|i| queues.get((start + i) % queues.len()));
        let mut available_fallback = None;
        for q in in_turn {
            if !self.tolerance.is_available(&q.broker_name, now) {
                continue;
            }
            if last_failed != Some(q.broker_name.as_str()) {
                return Some(q.clone());
            }
            available_fallback.get_or_insert(q);
        }
        if let Some(q) = available_fallback {
            return Some(q.clone());
        }
        // Nothing available: the least bad broker that still has queues in this route.
        while let Some(broker) = self.tolerance.pick_one_at_least(now) {
            let on_broker: Vec<&MessageQueue> =
                queues.iter().filter(|q| q.broker_name == broker).collect();
            if on_broker.is_empty() {
                // A broker of another topic's route; forget it and pick again.
                self.tolerance.remove(&broker);
                continue;
            }
            return on_broker.get(start % on_broker.len()).map(|q| (*q).clone());
        }
        route.select_write_queue().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::body::{from_json, TopicRouteData};

    fn route() -> TopicRoute {
        let data: TopicRouteData = from_json(
            br#"{"brokerDatas":[{"brokerAddrs":{"0":"h1:1"},"brokerName":"a"},
                 {"brokerAddrs":{"0":"h2:1"},"brokerName":"b"},
                 {"brokerAddrs":{"0":"h3:1"},"brokerName":"c"}],
                 "queueDatas":[{"brokerName":"a","perm":6,"readQueueNums":2,"writeQueueNums":2},
                 {"brokerName":"b","perm":6,"readQueueNums":2,"writeQueueNums":2},
                 {"brokerName":"c","perm":6,"readQueueNums":2,"writeQueueNums":2}]}"#,
        )
        .expect("route parses");
        TopicRoute::new("t", data)
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn not_available_duration_follows_the_reference_table() {
        let s = MqFaultStrategy::new();
        let table = [
            (0, 0),
            (49, 0),
            (100, 0),
            (549, 0),
            (550, 30_000),
            (999, 30_000),
            (1000, 60_000),
            (2000, 120_000),
            (3000, 180_000),
            (14_999, 180_000),
            (15_000, 600_000),
            (30_000, 600_000),
        ];
        for (latency, avoid) in table {
            assert_eq!(s.not_available_duration_for(MS(latency)), MS(avoid), "latency {latency}");
        }
    }

    #[test]
    fn a_failed_broker_is_avoided_until_its_backoff_passes() {
        let mut s = MqFaultStrategy::new();
        let r = route();
        let t0 = Instant::now();
        s.update_fault_item("a", MS(5), true, t0);
        for _ in 0..12 {
            let q = s.select_queue(&r, None, t0).expect("queue");
            assert_ne!(q.broker_name, "a");
        }
        assert!(!s.is_available("a", t0 + MS(599_999)));
        assert!(s.is_available("a", t0 + MS(600_000)));
        let picks: Vec<String> = (0..6)
            .map(|_| s.select_queue(&r, None, t0 + MS(600_000)).expect("queue").broker_name)
            .collect();
        assert!(picks.iter().any(|b| b == "a"), "available again: {picks:?}");
    }

    #[test]
    fn a_slow_broker_is_avoided_briefly_and_a_fast_answer_clears_it() {
        let mut s = MqFaultStrategy::new();
        let t0 = Instant::now();
        s.update_fault_item("b", MS(700), false, t0);
        assert!(!s.is_available("b", t0 + MS(29_999)));
        s.update_fault_item("b", MS(3), false, t0 + MS(10));
        assert!(s.is_available("b", t0 + MS(10)));
    }

    #[test]
    fn the_last_failed_broker_is_passed_over_when_others_are_available() {
        let mut s = MqFaultStrategy::new();
        let r = route();
        let now = Instant::now();
        for _ in 0..12 {
            assert_ne!(s.select_queue(&r, Some("b"), now).expect("queue").broker_name, "b");
        }
    }

    #[test]
    fn with_every_broker_avoided_the_least_bad_one_is_used() {
        let mut s = MqFaultStrategy::new();
        let r = route();
        let t0 = Instant::now();
        s.update_fault_item("a", MS(20_000), false, t0); // 600 s
        s.update_fault_item("b", MS(600), false, t0); // 30 s, lowest latency
        s.update_fault_item("c", MS(2_500), false, t0); // 120 s
                                                        // The better half of three is one broker: b.
        for _ in 0..5 {
            assert_eq!(s.select_queue(&r, None, t0).expect("queue").broker_name, "b");
        }
    }

    #[test]
    fn disabled_strategy_is_plain_round_robin_avoiding_the_last_failure() {
        let mut s = MqFaultStrategy { enabled: false, ..MqFaultStrategy::new() };
        let r = route();
        let now = Instant::now();
        s.update_fault_item("a", MS(0), true, now);
        assert!(s.is_available("a", now));
        let brokers: Vec<String> =
            (0..6).map(|_| s.select_queue(&r, None, now).expect("queue").broker_name).collect();
        assert!(brokers.iter().any(|b| b == "a"));
        assert_ne!(s.select_queue(&r, Some("a"), now).expect("queue").broker_name, "a");
    }

    #[test]
    fn brokers_unknown_to_the_route_are_forgotten_when_picking_at_least() {
        let mut s = MqFaultStrategy::new();
        let r = route();
        let t0 = Instant::now();
        for b in ["a", "b", "c"] {
            s.update_fault_item(b, MS(0), true, t0);
        }
        s.update_fault_item("zz", MS(0), false, t0 - MS(1)); // available, not in the route
        let q = s.select_queue(&r, None, t0).expect("queue");
        assert!(["a", "b", "c"].contains(&q.broker_name.as_str()));
    }

    #[test]
    fn pick_one_at_least_takes_turns_within_the_better_half() {
        let mut t = LatencyFaultTolerance::new();
        let t0 = Instant::now();
        for (name, ms) in [("w", 10), ("x", 20), ("y", 30), ("z", 40)] {
            t.update(name, MS(ms), MS(1000), t0);
        }
        let mut seen: Vec<String> = (0..4).filter_map(|_| t.pick_one_at_least(t0)).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["w", "x"]);
        assert_eq!(LatencyFaultTolerance::new().pick_one_at_least(t0), None);
    }
}
