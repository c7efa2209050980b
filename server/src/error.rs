//! The broker's one error type, [`BrokerError`], and its one mapping to a RocketMQ
//! response code and remark ([`BrokerError::response_code`], `Display`).
//!
//! Every internal operation that can fail for a reason a client may see (appending,
//! reading a queue, creating a topic, ...) returns it; handlers turn it into a response
//! with `handler::error_response`. The storage error is wrapped whole, so a full commit
//! pipeline answers SYSTEM_BUSY wherever the append came from (a send, a send-back, a
//! committed transaction), not only on the send path.

use std::fmt;

use ramjet_proto::codes::response;
use ramjet_storage::StoreError;

/// Why a broker operation failed.
#[derive(Debug)]
pub enum BrokerError {
    /// The store refused or failed (mapped by kind: busy, poisoned, full, ...).
    Store(StoreError),
    /// The topic is unknown and may not be created here.
    TopicNotExist(String),
    /// The topic's permission forbids the operation (the remark says which).
    NoPermission(String),
    /// A slave's logs change only by replication.
    SlaveMode,
    /// The message is refused as sent (too large, malformed batch, bad timer).
    IllegalMessage(String),
    /// A request parameter is out of range (the remark says which).
    InvalidParameter(String),
    /// This shard does not own the queue (a routing bug, never the client's fault).
    NotOwned {
        /// Topic.
        topic: String,
        /// Queue id.
        queue_id: i32,
        /// This shard.
        shard: usize,
    },
    /// Another shard's executor is gone or dropped the request (shutdown).
    ShardGone(usize),
    /// Any other failure, answered SYSTEM_ERROR with this remark (a malformed request
    /// header, a record that cannot be found, a file that cannot be written, ...).
    System(String),
    /// A failure another component already answered with this code and remark.
    Refused {
        /// RocketMQ response code.
        code: i32,
        /// Remark.
        remark: String,
    },
}

impl BrokerError {
    /// The RocketMQ response code that answers this error: the one mapping of the broker.
    pub fn response_code(&self) -> i32 {
        match self {
            BrokerError::Store(e) => store_code(e),
            BrokerError::TopicNotExist(_) => response::TOPIC_NOT_EXIST,
            BrokerError::NoPermission(_) => response::NO_PERMISSION,
            BrokerError::SlaveMode => response::SERVICE_NOT_AVAILABLE,
            BrokerError::IllegalMessage(_) => response::MESSAGE_ILLEGAL,
            BrokerError::InvalidParameter(_) => response::INVALID_PARAMETER,
            BrokerError::NotOwned { .. } | BrokerError::ShardGone(_) | BrokerError::System(_) => {
                response::SYSTEM_ERROR
            }
            BrokerError::Refused { code, .. } => *code,
        }
    }
}

/// Storage errors as the reference's store statuses are answered.
fn store_code(e: &StoreError) -> i32 {
    match e {
        // The commit pipeline is full: fail fast so producers back off or try another
        // broker, as the reference's [PC_SYNCHRONIZED] / [TIMEOUT_CLEAN_QUEUE] answers.
        StoreError::Busy { .. } => response::SYSTEM_BUSY,
        // A failed fdatasync poisons the log; nothing more can be acknowledged. The
        // reference answers SERVICE_NOT_AVAILABLE when its store is not writeable.
        StoreError::Poisoned => response::SERVICE_NOT_AVAILABLE,
        StoreError::MessageTooLarge => response::MESSAGE_ILLEGAL,
        // Disk use past the warning ratio, or the store set read-only: refuse writes
        // rather than corrupt anything, as the reference's "not writeable" store does.
        StoreError::DiskFull { .. } | StoreError::NotWritable => response::SERVICE_NOT_AVAILABLE,
        _ => response::SYSTEM_ERROR,
    }
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerError::Store(e) => write!(f, "{e}"),
            BrokerError::TopicNotExist(topic) => {
                write!(f, "topic[{topic}] not exist, apply first please!")
            }
            BrokerError::SlaveMode => f.write_str("message store is slave mode"),
            BrokerError::NotOwned { topic, queue_id, shard } => {
                write!(f, "queue {topic}:{queue_id} is not owned by shard {shard}")
            }
            BrokerError::ShardGone(shard) => write!(f, "shard {shard} is gone"),
            BrokerError::NoPermission(remark)
            | BrokerError::IllegalMessage(remark)
            | BrokerError::InvalidParameter(remark)
            | BrokerError::System(remark)
            | BrokerError::Refused { remark, .. } => f.write_str(remark),
        }
    }
}

impl std::error::Error for BrokerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BrokerError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for BrokerError {
    fn from(e: StoreError) -> BrokerError {
        BrokerError::Store(e)
    }
}

impl From<ramjet_proto::FieldError> for BrokerError {
    /// A request header that fails to decode: SYSTEM_ERROR with the field named, as the
    /// reference answers a `RemotingCommandException`.
    fn from(e: ramjet_proto::FieldError) -> BrokerError {
        BrokerError::System(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_the_send_paths_codes() {
        let busy = BrokerError::from(StoreError::Busy { pending_bytes: 2, pending_bytes_max: 1 });
        assert_eq!(busy.response_code(), response::SYSTEM_BUSY);
        assert_eq!(
            BrokerError::from(StoreError::Poisoned).response_code(),
            response::SERVICE_NOT_AVAILABLE
        );
        assert_eq!(
            BrokerError::from(StoreError::MessageTooLarge).response_code(),
            response::MESSAGE_ILLEGAL
        );
        assert_eq!(
            BrokerError::from(StoreError::NotWritable).response_code(),
            response::SERVICE_NOT_AVAILABLE
        );
        assert_eq!(BrokerError::from(StoreError::Closed).response_code(), response::SYSTEM_ERROR);
    }

    #[test]
    fn broker_errors_map_to_their_codes_and_remarks() {
        let e = BrokerError::TopicNotExist("T".into());
        assert_eq!(e.response_code(), response::TOPIC_NOT_EXIST);
        assert_eq!(e.to_string(), "topic[T] not exist, apply first please!");
        assert_eq!(BrokerError::SlaveMode.response_code(), response::SERVICE_NOT_AVAILABLE);
        assert_eq!(BrokerError::SlaveMode.to_string(), "message store is slave mode");
        let refused = BrokerError::Refused { code: 16, remark: "no".into() };
        assert_eq!((refused.response_code(), refused.to_string().as_str()), (16, "no"));
        assert_eq!(BrokerError::ShardGone(3).response_code(), response::SYSTEM_ERROR);
    }
}
