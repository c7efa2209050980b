//! The producer's retry decision (the reference's `sendDefaultImpl` loop) as a state
//! machine: after each attempt it says whether to try again and which broker to avoid.
//!
//! Lives on: the stack of one `send` call; no I/O, no clock.
//!
//! ```text
//!   new(retry_times) ──▶ avoid() ──▶ (caller sends to a queue chosen avoiding it)
//!          ▲                                      │
//!          └──── Retry (broker remembered) ◀── after(broker, error) ──▶ Done
//! ```
//!
//! A failure is tried again on another broker when it is worth it ([`retriable`]) and
//! fewer than `retry_times` retries were made; the broker that failed is avoided by the
//! next queue choice. Whether the attempt isolates its broker in the latency fault table
//! ([`crate::fault`]) is the same question: [`isolates`].

use ramjet_proto::codes::response;

use crate::error::ClientError;

/// What the send loop does after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStep {
    /// Refresh the route and send again, avoiding the broker that failed.
    Retry,
    /// Return this attempt's result to the caller.
    Done,
}

/// The retry state of one send: how many retries were made and which broker failed last.
#[derive(Debug, Clone)]
pub struct SendRetry {
    retry_times: u32,
    retries: u32,
    last_failed: Option<String>,
}

impl SendRetry {
    /// A send allowed `retry_times` retries after its first attempt.
    pub fn new(retry_times: u32) -> SendRetry {
        SendRetry { retry_times, retries: 0, last_failed: None }
    }

    /// The broker the next queue choice should avoid (the one that failed last).
    pub fn avoid(&self) -> Option<&str> {
        self.last_failed.as_deref()
    }

    /// Retries made so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// Records the outcome of an attempt on `broker_name` (`None` for success) and says
    /// what comes next.
    pub fn after(&mut self, broker_name: &str, error: Option<&ClientError>) -> SendStep {
        match error {
            Some(e) if self.retries < self.retry_times && retriable(e) => {
                self.last_failed = Some(broker_name.to_string());
                self.retries += 1;
                SendStep::Retry
            }
            _ => SendStep::Done,
        }
    }
}

/// True when an attempt's error marks its broker unavailable for a while in the fault
/// table (the reference isolates on every failure it would retry).
pub fn isolates(error: Option<&ClientError>) -> bool {
    error.is_some_and(retriable)
}

/// Failures worth trying on another broker (the reference's `retryResponseCodes` plus
/// every transport error).
pub fn retriable(e: &ClientError) -> bool {
    match e {
        ClientError::Broker { code, .. } => matches!(
            *code,
            response::TOPIC_NOT_EXIST
                | response::SERVICE_NOT_AVAILABLE
                | response::SYSTEM_ERROR
                | response::NO_PERMISSION
                | response::NO_BUYER_ID
                | response::NOT_IN_CURRENT_UNIT
        ),
        ClientError::Timeout { .. }
        | ClientError::Connect { .. }
        | ClientError::ConnectionClosed { .. }
        | ClientError::NoBrokerAddr { .. } => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(code: i32) -> ClientError {
        ClientError::Broker { code, remark: String::new() }
    }

    fn connect() -> ClientError {
        ClientError::Connect { addr: "a:1".into(), message: "refused".into() }
    }

    #[test]
    fn broker_refusals_retry_only_for_the_reference_codes() {
        assert!(retriable(&broker(response::SYSTEM_ERROR)));
        assert!(!retriable(&broker(response::MESSAGE_ILLEGAL)));
        assert!(!retriable(&broker(response::SYSTEM_BUSY)));
        assert!(retriable(&connect()));
        assert!(!retriable(&ClientError::InvalidArgument { reason: "r".into() }));
    }

    #[test]
    fn success_ends_at_once_and_avoids_nothing() {
        let mut r = SendRetry::new(2);
        assert_eq!(r.avoid(), None);
        assert_eq!(r.after("a", None), SendStep::Done);
        assert_eq!(r.retries(), 0);
        assert!(!isolates(None));
    }

    #[test]
    fn retriable_failures_retry_up_to_the_limit_avoiding_the_last_failed_broker() {
        let mut r = SendRetry::new(2);
        assert_eq!(r.after("a", Some(&connect())), SendStep::Retry);
        assert_eq!(r.avoid(), Some("a"));
        assert_eq!(r.after("b", Some(&broker(response::SYSTEM_ERROR))), SendStep::Retry);
        assert_eq!(r.avoid(), Some("b"));
        // Two retries made: the third failure is returned.
        assert_eq!(r.after("c", Some(&connect())), SendStep::Done);
        assert_eq!(r.retries(), 2);
    }

    #[test]
    fn a_refusal_not_worth_retrying_ends_the_send_and_isolates_nothing() {
        let mut r = SendRetry::new(2);
        let refused = broker(response::MESSAGE_ILLEGAL);
        assert_eq!(r.after("a", Some(&refused)), SendStep::Done);
        assert_eq!(r.avoid(), None);
        assert!(!isolates(Some(&refused)));
        assert!(isolates(Some(&connect())));
    }

    #[test]
    fn zero_retry_times_never_retries() {
        let mut r = SendRetry::new(0);
        assert_eq!(r.after("a", Some(&connect())), SendStep::Done);
    }
}
