//! The broker's ACL check on the request path, and the reload task that keeps every
//! shard's configuration current.
//!
//! Lives on: every shard ([`Shard::acl`](crate::shard::Shard::acl), `None` when
//! `aclEnable` is off, so the request path pays one branch for it). Each shard holds an
//! `Arc` snapshot of the configuration in a `RefCell`: the check borrows it, no lock, no
//! atomic. Shard 0 polls the file ([`reload_loop`]) and, on a good change, installs the new
//! snapshot on every shard over the shard channels (`OpsQuery::AclConfig`).
//!
//! ```text
//!  request ──▶ serve_request ──▶ check (this shard, peer address) ──refused──▶ SYSTEM_ERROR
//!                                   │ allowed                                 (one-way: none)
//!                                   ▼
//!                                 dispatch (route, forward, execute)
//!  shard 0: reload_loop ── poll file (blocking pool) ── changed ──▶ gather(AclConfig) ▶ all
//! ```

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use ramjet_proto::Frame;

use super::config::{acl_file_path, AclConfig, ConfigError};
use super::decision::{validate, AclDenied, AclRequest, DENIED_RESPONSE_CODE};
use super::reload::{AclReloader, Fs, Reload};
use super::resource::Policy;
use super::stats::DenialCounts;
use crate::config::BrokerConfig;
use crate::net::connection::Response;
use crate::shard::Shard;
use crate::shard_ops::{gather, OpsQuery};

/// How often shard 0 looks at the file (the reference looks every 5 s).
pub const RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One shard's view of access control: the configuration in force and its denial counts.
///
/// Lives on: every shard, when ACL is on.
#[derive(Debug)]
pub struct AclGate {
    config: RefCell<Arc<AclConfig>>,
    policy: Policy,
    denials: RefCell<DenialCounts>,
}

impl AclGate {
    /// A gate deciding with `config` under the reference's resource table.
    pub fn new(config: Arc<AclConfig>) -> AclGate {
        AclGate {
            config: RefCell::new(config),
            policy: Policy::Reference,
            denials: RefCell::new(DenialCounts::default()),
        }
    }

    /// Installs a reloaded configuration; requests after this call are decided by it.
    pub fn install(&self, config: Arc<AclConfig>) {
        *self.config.borrow_mut() = config;
    }

    /// This shard's denial counts, by account.
    pub fn denial_rows(&self) -> Vec<(String, u64)> {
        self.denials.borrow().rows()
    }

    /// Decides `frame` from `peer`; on refusal counts it and returns the answer: the
    /// reference's `SYSTEM_ERROR` with the `AclException` remark, or no answer for a
    /// one-way request.
    ///
    /// # Errors
    /// The refusal's answer (`None`: one-way, answer nothing).
    pub fn check(&self, frame: &Frame, peer: SocketAddr) -> Result<(), Option<Response>> {
        let config = self.config.borrow();
        decide(&config, self.policy, frame, peer).map_err(|refusal| {
            self.denials.borrow_mut().count(&config, refusal.denied.access_key.as_deref());
            refusal.answer
        })
    }
}

/// A refused request: why, and what to answer.
#[derive(Debug)]
pub struct Refusal {
    /// The decision's reason (and the access key, for the per-account counts).
    pub denied: AclDenied,
    /// The reference's `SYSTEM_ERROR` with the `AclException` remark; `None` for a
    /// one-way request.
    pub answer: Option<Response>,
}

/// Decides `frame` from `peer` under `config` and `policy` (the part the broker's shards
/// and the NameServer share; each counts the denial its own way).
///
/// # Errors
/// The [`Refusal`] (boxed: only the refused path allocates it).
pub fn decide(
    config: &AclConfig,
    policy: Policy,
    frame: &Frame,
    peer: SocketAddr,
) -> Result<(), Box<Refusal>> {
    let h = &frame.header;
    let request = AclRequest {
        code: h.code,
        version: h.version,
        remote: peer.ip(),
        ext: &h.ext_fields,
        body: &frame.body,
        policy,
    };
    let Err(denied) = validate(config, &request) else {
        return Ok(());
    };
    tracing::debug!(code = h.code, %peer, reason = %denied, "request refused by ACL");
    let answer = crate::handler::error(h, DENIED_RESPONSE_CODE, denied.remark());
    Err(Box::new(Refusal { denied, answer: (!h.is_oneway()).then_some(answer) }))
}

/// The ACL check of the request path: `Ok` to go on (always, when ACL is off), else the
/// refusal's answer.
///
/// # Errors
/// See [`AclGate::check`].
#[inline]
pub fn check(shard: &Shard, frame: &Frame, peer: SocketAddr) -> Result<(), Option<Response>> {
    match &shard.acl {
        None => Ok(()),
        Some(gate) => gate.check(frame, peer),
    }
}

/// Loads the ACL file at start when `aclEnable` is on (`None` when off): the path from
/// `aclFilePath`, else `$ROCKETMQ_HOME/conf/plain_acl.yml`.
///
/// # Errors
/// A missing or bad file, as one message naming the file and, for a syntax error, the
/// line and column: the broker refuses to start.
pub fn open(config: &BrokerConfig) -> Result<Option<AclReloader>, String> {
    open_file(config.acl_enable, config.acl_file_path.as_deref())
}

/// As [`open`], from the two keys themselves (`aclEnable`, `aclFilePath`): the
/// NameServer's namesrv.conf has the same keys.
///
/// # Errors
/// See [`open`].
pub fn open_file(acl_enable: bool, file_path: Option<&str>) -> Result<Option<AclReloader>, String> {
    if !acl_enable {
        return Ok(None);
    }
    let home = std::env::var("ROCKETMQ_HOME").ok();
    let cwd = std::env::current_dir().map_err(|e| format!("ACL: current directory: {e}"))?;
    let path = acl_file_path(file_path, home.as_deref(), &cwd).map_err(|e| format!("ACL: {e}"))?;
    let reloader = AclReloader::open(path.clone(), &Fs).map_err(|e| match e {
        ConfigError::Io { .. } => format!("ACL file {e}"),
        e => format!("ACL file {}: {e}", path.display()),
    })?;
    let accounts = reloader.current().accounts.len();
    tracing::info!(path = %path.display(), accounts, "access control on");
    Ok(Some(reloader))
}

/// Shard 0's task: polls the file every [`RELOAD_POLL_INTERVAL`] (on the blocking pool:
/// a stat and, on change, a read) and installs each good new configuration on every shard.
/// A bad file keeps the last good configuration (the reloader logs why).
pub async fn reload_loop(shard: Rc<Shard>, reloader: AclReloader) {
    poll_loop(reloader, |config| {
        let shard = shard.clone();
        async move {
            let accounts = config.accounts.len();
            gather(&shard, OpsQuery::AclConfig(config)).await;
            tracing::info!(accounts, "ACL configuration installed on every shard");
        }
    })
    .await
}

/// Polls the file every [`RELOAD_POLL_INTERVAL`] on the blocking pool (a stat and, on
/// change, a read) and hands each good new configuration to `install`, forever. A bad
/// file keeps the last good configuration (the reloader logs why).
pub async fn poll_loop<F, Fut>(reloader: AclReloader, mut install: F)
where
    F: FnMut(Arc<AclConfig>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut reloader = Some(reloader);
    loop {
        glommio::timer::sleep(RELOAD_POLL_INTERVAL).await;
        let Some(mut r) = reloader.take() else { return };
        let (r, outcome) = glommio::executor()
            .spawn_blocking(move || {
                let outcome = r.poll(&Fs);
                (r, outcome)
            })
            .await;
        if matches!(outcome, Reload::Reloaded) {
            install(r.current()).await;
        }
        reloader = Some(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::acl::{sign_request, Credentials};
    use ramjet_proto::codes::{request, response};
    use ramjet_proto::{Header, SerializeType};

    fn gate() -> AclGate {
        let text = "accounts:\n  - accessKey: userKey01\n    secretKey: userSecret1\n    \
                    defaultTopicPerm: PUB\n";
        AclGate::new(Arc::new(super::super::config::parse(text).expect("parses")))
    }

    fn send_frame(oneway: bool) -> Frame {
        let mut header = Header::request(request::SEND_MESSAGE, 7, SerializeType::RocketMq);
        header.ext_fields.insert("topic", "T");
        if oneway {
            header.set_oneway();
        }
        Frame { header, body: bytes::Bytes::from_static(b"body") }
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    // Goal: a refusal answers SYSTEM_ERROR with the reference's remark to the request's
    // opaque, a one-way refusal answers nothing, both are counted; a signed request passes
    // and is not counted; an installed config decides the next request.
    #[test]
    fn refusals_answer_count_and_follow_installs() {
        let gate = gate();
        let Err(Some(answer)) = gate.check(&send_frame(false), peer()) else {
            panic!("unsigned request not refused with an answer");
        };
        assert_eq!(answer.header.code, response::SYSTEM_ERROR);
        assert_eq!(answer.header.opaque, 7);
        assert_eq!(
            answer.header.remark.as_deref(),
            Some("org.apache.rocketmq.acl.common.AclException: No accessKey is configured")
        );
        assert!(matches!(gate.check(&send_frame(true), peer()), Err(None)));
        assert_eq!(gate.denial_rows(), vec![("(none)".to_string(), 2)]);

        let creds = Credentials {
            access_key: "userKey01".into(),
            secret_key: "userSecret1".into(),
            security_token: None,
        };
        let mut signed = send_frame(false);
        sign_request(&mut signed.header.ext_fields, &signed.body, &creds);
        assert!(gate.check(&signed, peer()).is_ok());
        assert_eq!(gate.denial_rows(), vec![("(none)".to_string(), 2)]);

        let denied_all = "accounts:\n  - accessKey: userKey01\n    secretKey: userSecret1\n";
        gate.install(Arc::new(super::super::config::parse(denied_all).expect("parses")));
        assert!(matches!(gate.check(&signed, peer()), Err(Some(_))));
        assert_eq!(
            gate.denial_rows(),
            vec![("(none)".to_string(), 2), ("userKey01".to_string(), 1)]
        );
    }
}
