//! The one request table: for every request code the broker serves, where it runs
//! ([`Route`]), which handler runs it ([`Handler`]), how it is counted ([`Stats`]) and
//! the access it will need once access control comes ([`Access`]).
//!
//! Routing (`handler::route`), execution (`handler::execute`) and the request probe
//! (`metrics::RequestProbe`) all read this table; a code missing from it is answered
//! REQUEST_CODE_NOT_SUPPORTED on the shard that received it.

use ramjet_proto::codes::request;

/// Where a request runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On the shard that received it.
    Here,
    /// On shard 0, the owner of cluster-wide state (topics, clients, groups, locks).
    ShardZero,
    /// On the owner of the queue named by `topic` and `queueId`.
    QueueOwner,
    /// Sends: the topic is resolved (maybe auto-created) and a queue chosen first.
    Send,
    /// On the owner of the log holding the record at ext field `offset`.
    RecordLog,
    /// On the owner of the log holding the half message at `commitLogOffset`.
    HalfLog,
}

/// How a request is counted by the request probe, beyond the per-code counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stats {
    /// Per-code request and latency counters only.
    Other,
    /// A put: send latency, per-topic put messages and bytes.
    Put,
    /// A get: pull latency, per-topic-and-group get messages and bytes.
    Get,
}

/// The access a request will need (reserved for access control; filled as the
/// reference's `PlainAccessResource` parses requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any authenticated client.
    Any,
    /// PUB on the request's topic.
    TopicPub,
    /// SUB on the request's topic (and its group, when it names one).
    TopicSub,
    /// SUB on the request's consumer group.
    GroupSub,
    /// An administrator.
    Admin,
}

/// The handler that executes a request (`handler::execute` matches on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each variant is named for the request it runs.
pub enum Handler {
    Send,
    Pull,
    QueryConsumerOffset,
    UpdateConsumerOffset,
    MaxOffset,
    MinOffset,
    SearchOffsetByTimestamp,
    EarliestStoreTime,
    ViewMessage,
    SendBack,
    EndTransaction,
    CreateTopic,
    DeleteTopic,
    AllTopicConfig,
    Heartbeat,
    ConsumerConnections,
    LockBatch,
    UnlockBatch,
    Unregister,
    ConsumerList,
    AllDelayOffsets,
    BrokerEpochCache,
    QueryMessage,
    UpdateBrokerConfig,
    BrokerConfig,
    RuntimeInfo,
    AllConsumerOffsets,
    UpsertGroup,
    AllGroups,
    DeleteGroup,
    TopicStats,
    ProducerConnections,
    ConsumeStats,
    ResetOffset,
    BrokerStats,
    TopicConsumedBy,
    BrokerConsumeStats,
    AllProducers,
    TopicConfig,
    GroupConfig,
    CheckClientConfig,
    ConsumerRelay,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Request code.
    pub code: i32,
    /// Where it runs.
    pub route: Route,
    /// What runs it.
    pub handler: Handler,
    /// How it is counted.
    pub stats: Stats,
    /// The access it needs.
    pub access: Access,
}

const fn row(code: i32, route: Route, handler: Handler, stats: Stats, access: Access) -> Entry {
    Entry { code, route, handler, stats, access }
}

use Access::*;
use Route::*;

/// Every served request, sorted by code (a unit test checks the order and uniqueness).
pub static TABLE: &[Entry] = &[
    row(request::SEND_MESSAGE, Send, Handler::Send, Stats::Put, TopicPub),
    row(request::PULL_MESSAGE, QueueOwner, Handler::Pull, Stats::Get, TopicSub),
    row(request::QUERY_MESSAGE, Here, Handler::QueryMessage, Stats::Other, TopicSub),
    row(
        request::QUERY_CONSUMER_OFFSET,
        QueueOwner,
        Handler::QueryConsumerOffset,
        Stats::Other,
        TopicSub,
    ),
    row(
        request::UPDATE_CONSUMER_OFFSET,
        QueueOwner,
        Handler::UpdateConsumerOffset,
        Stats::Other,
        TopicSub,
    ),
    row(request::UPDATE_AND_CREATE_TOPIC, ShardZero, Handler::CreateTopic, Stats::Other, Admin),
    row(request::GET_ALL_TOPIC_CONFIG, ShardZero, Handler::AllTopicConfig, Stats::Other, Any),
    row(request::UPDATE_BROKER_CONFIG, ShardZero, Handler::UpdateBrokerConfig, Stats::Other, Admin),
    row(request::GET_BROKER_CONFIG, Here, Handler::BrokerConfig, Stats::Other, Any),
    row(request::GET_BROKER_RUNTIME_INFO, Here, Handler::RuntimeInfo, Stats::Other, Any),
    row(
        request::SEARCH_OFFSET_BY_TIMESTAMP,
        QueueOwner,
        Handler::SearchOffsetByTimestamp,
        Stats::Other,
        Any,
    ),
    row(request::GET_MAX_OFFSET, QueueOwner, Handler::MaxOffset, Stats::Other, Any),
    row(request::GET_MIN_OFFSET, QueueOwner, Handler::MinOffset, Stats::Other, Any),
    row(
        request::GET_EARLIEST_MSG_STORETIME,
        QueueOwner,
        Handler::EarliestStoreTime,
        Stats::Other,
        Any,
    ),
    row(request::VIEW_MESSAGE_BY_ID, RecordLog, Handler::ViewMessage, Stats::Other, Any),
    row(request::HEART_BEAT, ShardZero, Handler::Heartbeat, Stats::Other, GroupSub),
    row(request::UNREGISTER_CLIENT, ShardZero, Handler::Unregister, Stats::Other, GroupSub),
    row(request::CONSUMER_SEND_MSG_BACK, RecordLog, Handler::SendBack, Stats::Other, GroupSub),
    row(request::END_TRANSACTION, HalfLog, Handler::EndTransaction, Stats::Other, TopicPub),
    row(
        request::GET_CONSUMER_LIST_BY_GROUP,
        ShardZero,
        Handler::ConsumerList,
        Stats::Other,
        GroupSub,
    ),
    row(request::LOCK_BATCH_MQ, ShardZero, Handler::LockBatch, Stats::Other, GroupSub),
    row(request::UNLOCK_BATCH_MQ, ShardZero, Handler::UnlockBatch, Stats::Other, GroupSub),
    row(request::GET_ALL_CONSUMER_OFFSET, Here, Handler::AllConsumerOffsets, Stats::Other, Any),
    row(request::GET_ALL_DELAY_OFFSET, Here, Handler::AllDelayOffsets, Stats::Other, Any),
    row(request::CHECK_CLIENT_CONFIG, Here, Handler::CheckClientConfig, Stats::Other, Any),
    row(
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
        ShardZero,
        Handler::UpsertGroup,
        Stats::Other,
        Admin,
    ),
    row(
        request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        ShardZero,
        Handler::AllGroups,
        Stats::Other,
        Any,
    ),
    row(request::GET_TOPIC_STATS_INFO, Here, Handler::TopicStats, Stats::Other, Any),
    row(
        request::GET_CONSUMER_CONNECTION_LIST,
        ShardZero,
        Handler::ConsumerConnections,
        Stats::Other,
        Any,
    ),
    row(
        request::GET_PRODUCER_CONNECTION_LIST,
        ShardZero,
        Handler::ProducerConnections,
        Stats::Other,
        Any,
    ),
    row(request::DELETE_SUBSCRIPTIONGROUP, ShardZero, Handler::DeleteGroup, Stats::Other, Admin),
    row(request::GET_CONSUME_STATS, Here, Handler::ConsumeStats, Stats::Other, Any),
    row(request::DELETE_TOPIC_IN_BROKER, ShardZero, Handler::DeleteTopic, Stats::Other, Admin),
    row(
        request::INVOKE_BROKER_TO_RESET_OFFSET,
        ShardZero,
        Handler::ResetOffset,
        Stats::Other,
        Admin,
    ),
    row(request::QUERY_TOPIC_CONSUME_BY_WHO, Here, Handler::TopicConsumedBy, Stats::Other, Any),
    row(request::GET_CONSUMER_RUNNING_INFO, ShardZero, Handler::ConsumerRelay, Stats::Other, Any),
    row(request::CONSUME_MESSAGE_DIRECTLY, ShardZero, Handler::ConsumerRelay, Stats::Other, Any),
    row(request::SEND_MESSAGE_V2, Send, Handler::Send, Stats::Put, TopicPub),
    row(request::VIEW_BROKER_STATS_DATA, Here, Handler::BrokerStats, Stats::Other, Any),
    row(
        request::GET_BROKER_CONSUME_STATS,
        ShardZero,
        Handler::BrokerConsumeStats,
        Stats::Other,
        Any,
    ),
    row(request::SEND_BATCH_MESSAGE, Send, Handler::Send, Stats::Put, TopicPub),
    row(request::GET_ALL_PRODUCER_INFO, ShardZero, Handler::AllProducers, Stats::Other, Any),
    row(request::GET_TOPIC_CONFIG, Here, Handler::TopicConfig, Stats::Other, Any),
    row(request::GET_SUBSCRIPTIONGROUP_CONFIG, ShardZero, Handler::GroupConfig, Stats::Other, Any),
    // A 5.x lite pull consumer's pull is an ordinary pull (its FLAG_LITE_PULL_MESSAGE only
    // says no heartbeat subscription is needed, which ramjet never requires).
    row(request::LITE_PULL_MESSAGE, QueueOwner, Handler::Pull, Stats::Other, TopicSub),
    row(request::GET_BROKER_EPOCH_CACHE, Here, Handler::BrokerEpochCache, Stats::Other, Any),
];

/// The table's row for `code`, if the broker serves it.
pub fn entry(code: i32) -> Option<&'static Entry> {
    TABLE.binary_search_by_key(&code, |e| e.code).ok().map(|i| &TABLE[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_and_unique() {
        for pair in TABLE.windows(2) {
            assert!(pair[0].code < pair[1].code, "{} then {}", pair[0].code, pair[1].code);
        }
    }

    #[test]
    fn every_code_served_before_the_table_is_in_it() {
        // The codes the four hand-kept lists (route, execute, stats::handles,
        // stats::on_shard_zero) served, with where they ran.
        let zero = [
            request::UPDATE_AND_CREATE_TOPIC,
            request::DELETE_TOPIC_IN_BROKER,
            request::GET_ALL_TOPIC_CONFIG,
            request::HEART_BEAT,
            request::UNREGISTER_CLIENT,
            request::GET_CONSUMER_LIST_BY_GROUP,
            request::GET_CONSUMER_CONNECTION_LIST,
            request::LOCK_BATCH_MQ,
            request::UNLOCK_BATCH_MQ,
            request::UPDATE_BROKER_CONFIG,
            request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
            request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
            request::DELETE_SUBSCRIPTIONGROUP,
            request::GET_PRODUCER_CONNECTION_LIST,
            request::INVOKE_BROKER_TO_RESET_OFFSET,
            request::GET_BROKER_CONSUME_STATS,
            request::GET_ALL_PRODUCER_INFO,
            request::GET_SUBSCRIPTIONGROUP_CONFIG,
            request::GET_CONSUMER_RUNNING_INFO,
            request::CONSUME_MESSAGE_DIRECTLY,
        ];
        let queue = [
            request::PULL_MESSAGE,
            request::LITE_PULL_MESSAGE,
            request::QUERY_CONSUMER_OFFSET,
            request::UPDATE_CONSUMER_OFFSET,
            request::GET_MAX_OFFSET,
            request::GET_MIN_OFFSET,
            request::SEARCH_OFFSET_BY_TIMESTAMP,
            request::GET_EARLIEST_MSG_STORETIME,
        ];
        let here = [
            request::GET_ALL_DELAY_OFFSET,
            request::GET_BROKER_EPOCH_CACHE,
            request::QUERY_MESSAGE,
            request::GET_BROKER_CONFIG,
            request::GET_BROKER_RUNTIME_INFO,
            request::GET_ALL_CONSUMER_OFFSET,
            request::GET_TOPIC_STATS_INFO,
            request::GET_CONSUME_STATS,
            request::VIEW_BROKER_STATS_DATA,
            request::QUERY_TOPIC_CONSUME_BY_WHO,
            request::GET_TOPIC_CONFIG,
            request::CHECK_CLIENT_CONFIG,
        ];
        let send = [request::SEND_MESSAGE, request::SEND_MESSAGE_V2, request::SEND_BATCH_MESSAGE];
        let routes = [(&zero[..], ShardZero), (&queue[..], QueueOwner), (&here[..], Here)];
        for (codes, route) in routes.into_iter().chain([(&send[..], Send)]) {
            for &code in codes {
                let e = entry(code).unwrap_or_else(|| panic!("code {code} missing"));
                assert_eq!(e.route, route, "code {code}");
            }
        }
        assert_eq!(entry(request::VIEW_MESSAGE_BY_ID).map(|e| e.route), Some(RecordLog));
        assert_eq!(entry(request::CONSUMER_SEND_MSG_BACK).map(|e| e.route), Some(RecordLog));
        assert_eq!(entry(request::END_TRANSACTION).map(|e| e.route), Some(HalfLog));
        let count = zero.len() + queue.len() + here.len() + send.len() + 3;
        assert_eq!(TABLE.len(), count, "a code was added without a test row");
    }

    #[test]
    fn only_sends_and_plain_pulls_have_put_or_get_stats() {
        for e in TABLE {
            let expected = match e.code {
                request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => {
                    Stats::Put
                }
                request::PULL_MESSAGE => Stats::Get,
                _ => Stats::Other,
            };
            assert_eq!(e.stats, expected, "code {}", e.code);
        }
        assert!(entry(-5).is_none());
    }
}
