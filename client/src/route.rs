//! Topic routes: which queues of which brokers a topic has, the brokers' master
//! addresses, and round-robin queue selection. Pure state, no I/O.
//!
//! Lives on: the executor of the client that owns it.
//!
//! A route comes from the NameServer (GET_ROUTEINFO_BY_TOPIC) as a `TopicRouteData`:
//! per broker name, `writeQueueNums`, `readQueueNums` and `perm`; per broker name, the
//! addresses by broker id (0 = master). Write queues are `0..writeQueueNums` of every
//! broker whose perm allows writing and whose master is known; read queues likewise with
//! `readQueueNums` and the read bit. Both lists are sorted by broker name then queue id,
//! as the reference client sorts them, so round robin visits brokers in turn.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use ramjet_proto::body::TopicRouteData;

use crate::message::MessageQueue;

/// PermName: the topic or broker accepts reads.
pub const PERM_READ: i32 = 0x4;
/// PermName: the topic or broker accepts writes.
pub const PERM_WRITE: i32 = 0x2;

/// One topic's route with its derived queue lists.
#[derive(Debug)]
pub struct TopicRoute {
    /// The topic.
    pub topic: String,
    /// The route as the NameServer sent it.
    pub data: TopicRouteData,
    /// Queues a producer may write, sorted by broker name then queue id.
    pub write_queues: Vec<MessageQueue>,
    /// Queues a consumer may read, sorted likewise.
    pub read_queues: Vec<MessageQueue>,
    selector: RoundRobin,
}

impl TopicRoute {
    /// Derives the queue lists of `topic` from `data`.
    pub fn new(topic: &str, data: TopicRouteData) -> TopicRoute {
        let write_queues = queues(topic, &data, PERM_WRITE, |q| q.write_queue_nums);
        let read_queues = queues(topic, &data, PERM_READ, |q| q.read_queue_nums);
        TopicRoute {
            topic: topic.to_string(),
            data,
            write_queues,
            read_queues,
            selector: RoundRobin::default(),
        }
    }

    /// The next write queue in round-robin order; `None` when there is none.
    pub fn select_write_queue(&self) -> Option<&MessageQueue> {
        let index = self.selector.next_index(self.write_queues.len())?;
        self.write_queues.get(index)
    }

    /// The next round-robin position in `write_queues`; `None` when there is none.
    pub fn next_write_index(&self) -> Option<usize> {
        self.selector.next_index(self.write_queues.len())
    }

    /// The next write queue on a broker other than `avoid_broker` (the one that just
    /// failed), falling back to any queue when all are on that broker.
    pub fn select_write_queue_avoiding(&self, avoid_broker: &str) -> Option<&MessageQueue> {
        for _ in 0..self.write_queues.len() {
            let q = self.select_write_queue()?;
            if q.broker_name != avoid_broker {
                return Some(q);
            }
        }
        self.select_write_queue()
    }

    /// The master address of `broker_name` in this route.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.data
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.master_addr())
    }
}

fn queues(
    topic: &str,
    data: &TopicRouteData,
    perm_bit: i32,
    count: impl Fn(&ramjet_proto::body::QueueData) -> i32,
) -> Vec<MessageQueue> {
    let has_master = |name: &str| {
        data.broker_datas.iter().any(|b| b.broker_name == name && b.master_addr().is_some())
    };
    let mut out = Vec::new();
    for q in &data.queue_datas {
        if q.perm & perm_bit == 0 || !has_master(&q.broker_name) {
            continue;
        }
        for queue_id in 0..count(q).max(0) {
            out.push(MessageQueue {
                topic: topic.to_string(),
                broker_name: q.broker_name.clone(),
                queue_id,
            });
        }
    }
    out.sort();
    out
}

/// A round-robin index over a list whose length may change between calls.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: Cell<usize>,
}

impl RoundRobin {
    /// A selector starting at `start` (spread several producers over the queues).
    pub fn starting_at(start: usize) -> RoundRobin {
        RoundRobin { next: Cell::new(start) }
    }

    /// The next index below `len`; `None` when `len` is 0.
    pub fn next_index(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        Some(n % len)
    }
}

/// Cached routes by topic, and master addresses by broker name learned from them.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: HashMap<String, Rc<TopicRoute>>,
    masters: HashMap<String, String>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// The cached route of `topic`.
    pub fn get(&self, topic: &str) -> Option<Rc<TopicRoute>> {
        self.routes.get(topic).cloned()
    }

    /// Replaces the route of `topic` and learns its brokers' master addresses.
    pub fn update(&mut self, topic: &str, data: TopicRouteData) -> Rc<TopicRoute> {
        for b in &data.broker_datas {
            if let Some(addr) = b.master_addr() {
                self.masters.insert(b.broker_name.clone(), addr.to_string());
            }
        }
        let route = Rc::new(TopicRoute::new(topic, data));
        self.routes.insert(topic.to_string(), route.clone());
        route
    }

    /// Forgets the route of `topic` (the next lookup asks the NameServer).
    pub fn remove(&mut self, topic: &str) {
        self.routes.remove(topic);
    }

    /// The master address of `broker_name`, from any route seen.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.masters.get(broker_name).map(String::as_str)
    }

    /// Every master address known.
    pub fn master_addrs(&self) -> Vec<String> {
        let mut v: Vec<String> = self.masters.values().cloned().collect();
        v.sort();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::body::from_json;

    const TWO_BROKERS: &[u8] = br#"{"brokerDatas":[
        {"brokerAddrs":{0:"10.0.0.2:10911",1:"10.0.0.3:10911"},"brokerName":"b","cluster":"c"},
        {"brokerAddrs":{0:"10.0.0.1:10911"},"brokerName":"a","cluster":"c"},
        {"brokerAddrs":{1:"10.0.0.9:10911"},"brokerName":"slave-only","cluster":"c"}],
      "queueDatas":[
        {"brokerName":"b","perm":6,"readQueueNums":3,"writeQueueNums":2,"topicSysFlag":0},
        {"brokerName":"a","perm":4,"readQueueNums":2,"writeQueueNums":2,"topicSysFlag":0},
        {"brokerName":"slave-only","perm":6,"readQueueNums":2,"writeQueueNums":2}]}"#;

    fn route() -> TopicRoute {
        let data: TopicRouteData = from_json(TWO_BROKERS).expect("route parses");
        TopicRoute::new("t", data)
    }

    fn ids(qs: &[MessageQueue]) -> Vec<(String, i32)> {
        qs.iter().map(|q| (q.broker_name.clone(), q.queue_id)).collect()
    }

    #[test]
    fn fastjson_route_parses_into_sorted_read_and_write_queues() {
        let r = route();
        // Broker a is read-only; the slave-only broker has no master.
        assert_eq!(ids(&r.write_queues), [("b".into(), 0), ("b".into(), 1)]);
        assert_eq!(
            ids(&r.read_queues),
            [("a".into(), 0), ("a".into(), 1), ("b".into(), 0), ("b".into(), 1), ("b".into(), 2)]
        );
        assert_eq!(r.master_addr("b"), Some("10.0.0.2:10911"));
        assert_eq!(r.master_addr("slave-only"), None);
    }

    #[test]
    fn round_robin_cycles_over_write_queues() {
        let r = route();
        let picks: Vec<i32> =
            (0..5).map(|_| r.select_write_queue().expect("queue").queue_id).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0]);
    }

    #[test]
    fn round_robin_with_no_queues_is_none() {
        let rr = RoundRobin::starting_at(7);
        assert_eq!(rr.next_index(0), None);
        assert_eq!(rr.next_index(3), Some(1));
        assert_eq!(rr.next_index(3), Some(2));
        assert_eq!(rr.next_index(3), Some(0));
    }

    #[test]
    fn avoiding_a_broker_picks_another_when_one_exists() {
        let data: TopicRouteData = from_json(
            br#"{"brokerDatas":[{"brokerAddrs":{"0":"h1:1"},"brokerName":"a"},
                 {"brokerAddrs":{"0":"h2:1"},"brokerName":"b"}],
                 "queueDatas":[{"brokerName":"a","perm":6,"readQueueNums":1,"writeQueueNums":1},
                 {"brokerName":"b","perm":6,"readQueueNums":1,"writeQueueNums":1}]}"#,
        )
        .expect("route parses");
        let r = TopicRoute::new("t", data);
        for _ in 0..4 {
            assert_eq!(r.select_write_queue_avoiding("a").expect("queue").broker_name, "b");
        }
        let only_a = TopicRoute::new("t", {
            let mut d = r.data.clone();
            d.queue_datas.retain(|q| q.broker_name == "a");
            d
        });
        assert_eq!(only_a.select_write_queue_avoiding("a").expect("fallback").broker_name, "a");
    }

    #[test]
    fn route_table_learns_master_addresses() {
        let mut t = RouteTable::new();
        let data: TopicRouteData = from_json(TWO_BROKERS).expect("route parses");
        t.update("t", data);
        assert_eq!(t.master_addr("a"), Some("10.0.0.1:10911"));
        assert_eq!(t.master_addrs(), ["10.0.0.1:10911", "10.0.0.2:10911"]);
        assert!(t.get("t").is_some());
        t.remove("t");
        assert!(t.get("t").is_none());
    }
}
