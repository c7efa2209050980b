//! The client's error type.
//!
//! Operating errors only: a broker refusing a request, a peer going away, a timeout, a
//! reply that does not parse. Every variant carries the numbers a log line needs. The type
//! is `Clone` because one connection failure fails every request pending on it.

use std::fmt;
use std::time::Duration;

/// Everything a client call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The broker or NameServer answered with a non-success response code.
    Broker {
        /// The response code (`proto::codes::response`).
        code: i32,
        /// The remark the peer sent, empty when none.
        remark: String,
    },
    /// No reply came within the request timeout.
    Timeout {
        /// The request code.
        code: i32,
        /// The request's opaque.
        opaque: i32,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Connecting to a peer failed.
    Connect {
        /// The address, `host:port`.
        addr: String,
        /// The OS error text.
        message: String,
    },
    /// The connection closed (or failed) while the request was pending or being sent.
    ConnectionClosed {
        /// The peer address.
        addr: String,
        /// Why it closed.
        reason: String,
    },
    /// The connection already has its maximum of requests in flight.
    TooManyInFlight {
        /// The per-connection limit.
        in_flight_max: usize,
    },
    /// A reply was readable but its header or body is not what the request expects.
    BadResponse {
        /// The request code the reply answers.
        code: i32,
        /// What is wrong.
        reason: String,
    },
    /// The NameServer knows no route for the topic, or the route has no usable queue.
    NoRoute {
        /// The topic.
        topic: String,
    },
    /// The route names a broker whose master address is unknown.
    NoBrokerAddr {
        /// The broker name.
        broker_name: String,
    },
    /// The caller passed something unusable (an empty batch, a bad address list), or
    /// called something in the wrong state (subscribing after start).
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// A local file could not be read or written (broadcasting consumers' offsets).
    Io {
        /// The file.
        path: String,
        /// What failed: the operation and the OS error text.
        message: String,
    },
}

impl ClientError {
    /// The broker's response code, when the broker refused the request.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A `BadResponse` for a reply to `code`.
    pub(crate) fn bad_response(code: i32, reason: impl fmt::Display) -> ClientError {
        ClientError::BadResponse { code, reason: reason.to_string() }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Broker { code, remark } => {
                write!(f, "broker answered code {code}: {remark}")
            }
            ClientError::Timeout { code, opaque, timeout } => write!(
                f,
                "request code {code} opaque {opaque} timed out after {} ms",
                timeout.as_millis()
            ),
            ClientError::Connect { addr, message } => {
                write!(f, "connect to {addr} failed: {message}")
            }
            ClientError::ConnectionClosed { addr, reason } => {
                write!(f, "connection to {addr} closed: {reason}")
            }
            ClientError::TooManyInFlight { in_flight_max } => {
                write!(f, "connection already has {in_flight_max} requests in flight")
            }
            ClientError::BadResponse { code, reason } => {
                write!(f, "bad reply to request code {code}: {reason}")
            }
            ClientError::NoRoute { topic } => write!(f, "no route for topic {topic}"),
            ClientError::NoBrokerAddr { broker_name } => {
                write!(f, "no master address for broker {broker_name}")
            }
            ClientError::InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            ClientError::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for ClientError {}
