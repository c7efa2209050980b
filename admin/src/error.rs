//! The admin tool's error: one sentence naming the cause (no route, broker down, response
//! code and remark), printed on stderr with a non-zero exit status.

use std::fmt;

use ramjet_client::ClientError;

/// Why a command failed.
#[derive(Debug, Clone)]
pub enum AdminError {
    /// A peer could not be reached or stopped answering.
    Unreachable {
        /// "broker" or "NameServer".
        role: &'static str,
        /// `host:port`.
        addr: String,
        /// What the transport said.
        reason: String,
    },
    /// A peer refused the request.
    Refused {
        /// "broker" or "NameServer".
        role: &'static str,
        /// `host:port`.
        addr: String,
        /// The request's name.
        request: &'static str,
        /// The response code.
        code: i32,
        /// The peer's remark.
        remark: String,
    },
    /// The NameServer knows no route for the topic.
    NoRoute {
        /// The topic.
        topic: String,
    },
    /// Nothing to work on (no broker in the cluster, no such broker name, ...).
    NotFound(String),
    /// Bad command-line input.
    Usage(String),
    /// A reply that does not parse.
    BadReply {
        /// `host:port`.
        addr: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::Unreachable { role, addr, reason } => {
                write!(f, "{role} {addr} is unreachable ({reason}); is it running?")
            }
            AdminError::Refused { role, addr, request, code, remark } => {
                let name = response_name(*code);
                write!(f, "{role} {addr} refused {request}: {name} ({code})")?;
                if !remark.is_empty() {
                    write!(f, ": {remark}")?;
                }
                Ok(())
            }
            AdminError::NoRoute { topic } => {
                write!(f, "no route for topic {topic}: the NameServer knows no such topic")
            }
            AdminError::NotFound(what) => write!(f, "{what}"),
            AdminError::Usage(what) => write!(f, "{what}"),
            AdminError::BadReply { addr, reason } => write!(f, "bad reply from {addr}: {reason}"),
        }
    }
}

impl std::error::Error for AdminError {}

impl AdminError {
    /// Turns a client error from a call to `addr` into the admin's wording.
    pub fn from_client(
        role: &'static str,
        addr: &str,
        request: &'static str,
        e: ClientError,
    ) -> Self {
        match e {
            ClientError::Broker { code, remark } => {
                AdminError::Refused { role, addr: addr.to_string(), request, code, remark }
            }
            ClientError::NoRoute { topic } => AdminError::NoRoute { topic },
            ClientError::BadResponse { reason, .. } => {
                AdminError::BadReply { addr: addr.to_string(), reason }
            }
            ClientError::Timeout { timeout, .. } => AdminError::Unreachable {
                role,
                addr: addr.to_string(),
                reason: format!("no answer to {request} within {} ms", timeout.as_millis()),
            },
            ClientError::Connect { message, .. } => AdminError::Unreachable {
                role,
                addr: addr.to_string(),
                reason: format!("connect failed: {message}"),
            },
            ClientError::ConnectionClosed { reason, .. } => AdminError::Unreachable {
                role,
                addr: addr.to_string(),
                reason: format!("connection closed: {reason}"),
            },
            other => {
                AdminError::Unreachable { role, addr: addr.to_string(), reason: other.to_string() }
            }
        }
    }
}

/// The name of a response code (the reference's `ResponseCode`), or "UNKNOWN".
pub fn response_name(code: i32) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "SYSTEM_ERROR",
        2 => "SYSTEM_BUSY",
        3 => "REQUEST_CODE_NOT_SUPPORTED",
        4 => "TRANSACTION_FAILED",
        10 => "FLUSH_DISK_TIMEOUT",
        11 => "SLAVE_NOT_AVAILABLE",
        12 => "FLUSH_SLAVE_TIMEOUT",
        13 => "MESSAGE_ILLEGAL",
        14 => "SERVICE_NOT_AVAILABLE",
        15 => "VERSION_NOT_SUPPORTED",
        16 => "NO_PERMISSION",
        17 => "TOPIC_NOT_EXIST",
        18 => "TOPIC_EXIST_ALREADY",
        19 => "PULL_NOT_FOUND",
        20 => "PULL_RETRY_IMMEDIATELY",
        21 => "PULL_OFFSET_MOVED",
        22 => "QUERY_NOT_FOUND",
        23 => "SUBSCRIPTION_PARSE_FAILED",
        24 => "SUBSCRIPTION_NOT_EXIST",
        25 => "SUBSCRIPTION_NOT_LATEST",
        26 => "SUBSCRIPTION_GROUP_NOT_EXIST",
        29 => "INVALID_PARAMETER",
        206 => "CONSUMER_NOT_ONLINE",
        207 => "CONSUME_MSG_TIMEOUT",
        208 => "NO_MESSAGE",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause() {
        let e = AdminError::from_client(
            "broker",
            "127.0.0.1:1",
            "GET_CONSUME_STATS",
            ClientError::Broker { code: 17, remark: "topic[t] not exist".into() },
        );
        assert_eq!(
            e.to_string(),
            "broker 127.0.0.1:1 refused GET_CONSUME_STATS: TOPIC_NOT_EXIST (17): topic[t] not exist"
        );
        let e = AdminError::from_client(
            "broker",
            "127.0.0.1:1",
            "GET_BROKER_RUNTIME_INFO",
            ClientError::Connect {
                addr: "127.0.0.1:1".into(),
                message: "Connection refused".into(),
            },
        );
        assert!(e.to_string().contains("unreachable (connect failed: Connection refused)"));
    }
}
