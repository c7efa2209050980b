//! Rebalance: which queues of a topic each member of a consumer group consumes, and what
//! a member must start and stop to get there. Pure functions, no I/O.
//!
//! In clustering mode every member computes the same allocation from the same inputs:
//! the topic's readable queues and the group's client ids, both sorted (queues by topic,
//! broker name, queue id; ids as strings). [`allocate_averagely`] is the reference's
//! `AllocateMessageQueueAveragely`: consecutive blocks, the first `queues % members`
//! members taking one queue more.
//!
//! ```text
//!  8 queues, 3 members:   c0 → q0 q1 q2 │ c1 → q3 q4 q5 │ c2 → q6 q7
//!  3 queues, 5 members:   c0 → q0 │ c1 → q1 │ c2 → q2 │ c3, c4 → nothing
//! ```
//!
//! Members whose views differ for a moment (one saw a join that another did not yet)
//! may both hold a queue, or neither; the next rebalance, after the broker's
//! NOTIFY_CONSUMER_IDS_CHANGED or the periodic one, settles it. Ordered consumers close
//! that gap with broker-side queue locks.

use std::collections::BTreeSet;

use crate::message::MessageQueue;

/// How a group's queues are split among its members.
pub trait AllocateStrategy {
    /// The strategy's name (the reference's `getName`).
    fn name(&self) -> &str;

    /// The queues of `queues` that the member `current_id` consumes, given every member
    /// in `member_ids`. Both inputs may come in any order.
    fn allocate(
        &self,
        current_id: &str,
        queues: &[MessageQueue],
        member_ids: &[String],
    ) -> Vec<MessageQueue>;
}

/// The reference's default strategy, `AVG`: see [`allocate_averagely`].
#[derive(Debug, Clone, Copy, Default)]
pub struct AllocateAveragely;

impl AllocateStrategy for AllocateAveragely {
    fn name(&self) -> &str {
        "AVG"
    }

    fn allocate(
        &self,
        current_id: &str,
        queues: &[MessageQueue],
        member_ids: &[String],
    ) -> Vec<MessageQueue> {
        allocate_averagely(current_id, queues, member_ids)
    }
}

/// The queues `current_id` consumes under `AllocateMessageQueueAveragely`.
///
/// With `n` queues and `m` members (both sorted) and `current_id` at index `i`:
/// `mod = n % m`; members below `mod` take `n / m + 1` queues starting at `i * size`,
/// the others `n / m` starting at `i * size + mod`; when `n <= m` each of the first `n`
/// members takes one. A member not in the list gets nothing.
pub fn allocate_averagely(
    current_id: &str,
    queues: &[MessageQueue],
    member_ids: &[String],
) -> Vec<MessageQueue> {
    let mut queues = queues.to_vec();
    queues.sort();
    queues.dedup();
    let mut members: Vec<&str> = member_ids.iter().map(String::as_str).collect();
    members.sort_unstable();
    members.dedup();
    let Some(index) = members.iter().position(|m| *m == current_id) else {
        return Vec::new();
    };
    let (n, m) = (queues.len(), members.len());
    if n == 0 {
        return Vec::new();
    }
    let rem = n % m;
    let size = if n <= m {
        1
    } else if rem > 0 && index < rem {
        n / m + 1
    } else {
        n / m
    };
    let start = if rem > 0 && index < rem { index * size } else { index * size + rem };
    let range = size.min(n.saturating_sub(start));
    (0..range).filter_map(|k| queues.get((start + k) % n).cloned()).collect()
}

/// What a member must do to go from the queues it holds to the ones allocated to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RebalancePlan {
    /// Queues to start consuming.
    pub add: Vec<MessageQueue>,
    /// Queues to stop consuming (commit their offsets, release their locks).
    pub remove: Vec<MessageQueue>,
}

impl RebalancePlan {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

/// The plan for one topic: `held` are the queues of `topic` held now, `allocated` those
/// it should hold. Queues of other topics in `held` are left alone.
pub fn plan(topic: &str, held: &[MessageQueue], allocated: &[MessageQueue]) -> RebalancePlan {
    let held: BTreeSet<&MessageQueue> = held.iter().filter(|q| q.topic == topic).collect();
    let allocated: BTreeSet<&MessageQueue> =
        allocated.iter().filter(|q| q.topic == topic).collect();
    RebalancePlan {
        add: allocated.difference(&held).map(|q| (*q).clone()).collect(),
        remove: held.difference(&allocated).map(|q| (*q).clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        // Two brokers, so sorting by broker name matters: a0 a1 .. then b0 b1 ..
        (0..n)
            .map(|i| MessageQueue {
                topic: "t".into(),
                broker_name: if i % 2 == 0 { "a".into() } else { "b".into() },
                queue_id: i / 2,
            })
            .collect()
    }

    fn ids(m: usize) -> Vec<String> {
        (0..m).map(|i| format!("c{i}")).collect()
    }

    fn label(q: &MessageQueue) -> String {
        format!("{}{}", q.broker_name, q.queue_id)
    }

    /// queues, members → the labels each member gets, in member order.
    const TABLE: &[(i32, usize, &str)] = &[
        (0, 1, "|"),
        (1, 1, "a0|"),
        (4, 2, "a0 a1|b0 b1|"),
        (5, 2, "a0 a1 a2|b0 b1|"),
        (8, 3, "a0 a1 a2|a3 b0 b1|b2 b3|"),
        (3, 5, "a0|a1|b0|||"),
        (6, 4, "a0 a1|a2 b0|b1|b2|"),
        (7, 3, "a0 a1 a2|a3 b0|b1 b2|"),
        (16, 3, "a0 a1 a2 a3 a4 a5|a6 a7 b0 b1 b2|b3 b4 b5 b6 b7|"),
    ];

    #[test]
    fn allocate_averagely_matches_the_reference_table() {
        for &(n, m, want) in TABLE {
            let mut got = String::new();
            for id in ids(m) {
                let mine = allocate_averagely(&id, &queues(n), &ids(m));
                got.push_str(&mine.iter().map(label).collect::<Vec<_>>().join(" "));
                got.push('|');
            }
            assert_eq!(got, want, "{n} queues, {m} members");
        }
    }

    #[test]
    fn every_queue_goes_to_exactly_one_member_whatever_the_input_order() {
        for n in 0..20 {
            for m in 1..7 {
                let mut shuffled_queues = queues(n);
                shuffled_queues.reverse();
                let mut shuffled_ids = ids(m);
                shuffled_ids.rotate_left(m / 2);
                let mut all: Vec<MessageQueue> = ids(m)
                    .iter()
                    .flat_map(|id| allocate_averagely(id, &shuffled_queues, &shuffled_ids))
                    .collect();
                all.sort();
                let mut want = queues(n);
                want.sort();
                assert_eq!(all, want, "{n} queues, {m} members");
            }
        }
    }

    #[test]
    fn a_member_missing_from_the_list_gets_nothing() {
        assert!(allocate_averagely("stranger", &queues(4), &ids(2)).is_empty());
        assert!(allocate_averagely("c0", &queues(4), &[]).is_empty());
        assert_eq!(AllocateAveragely.name(), "AVG");
        assert_eq!(AllocateAveragely.allocate("c1", &queues(4), &ids(2)).len(), 2);
    }

    #[test]
    fn plan_adds_and_removes_only_the_topics_queues() {
        let q =
            |t: &str, id| MessageQueue { topic: t.into(), broker_name: "a".into(), queue_id: id };
        let held = [q("t", 0), q("t", 1), q("u", 0)];
        let allocated = [q("t", 1), q("t", 2)];
        let p = plan("t", &held, &allocated);
        assert_eq!(p.add, [q("t", 2)]);
        assert_eq!(p.remove, [q("t", 0)]);
        assert!(plan("t", &allocated, &allocated).is_empty());
    }
}
