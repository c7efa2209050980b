//! The NameServer's access control (ramjet's own decision; the reference's NameServer
//! checks nothing, see ARCHITECTURE §12).
//!
//! With `aclEnable=true` in namesrv.conf (standalone `ramjet-namesrv`), or in broker.conf
//! for the broker's embedded NameServer, the NameServer's write codes
//! ([`NAMESRV_ADMIN_CODES`]: register, unregister, KV writes, write-permission changes,
//! topic deletes and registrations, config updates) need a request signed by an admin
//! account of the same `plain_acl.yml` model as the broker's (global and account white
//! lists apply as on the broker). Every other code (routes, cluster info, topic lists,
//! KV reads) is not checked: clients without credentials must still find routes.
//!
//! A refusal is answered as the broker's ([`super::gate::decide`]): `SYSTEM_ERROR`, remark
//! `org.apache.rocketmq.acl.common.AclException: <message>`; a one-way request gets no
//! answer. Nothing of the request runs.
//!
//! Lives on: the NameServer executor (the configuration in a `RefCell`, replaced by
//! [`super::gate::poll_loop`] on a file change). The denial counts are behind a `Mutex`
//! because the embedded NameServer's counts are also read by the broker's `/metrics`
//! scrape on shard 0; only a denial or a scrape takes it.
//!
//! [`NAMESRV_ADMIN_CODES`]: super::resource::NAMESRV_ADMIN_CODES

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ramjet_proto::Frame;

use super::config::AclConfig;
use super::gate::decide;
use super::resource::Policy;
use super::stats::DenialCounts;
use crate::net::connection::Response;

/// The metric's name on the NameServer's page and the broker's (the encoder adds
/// `_total`).
pub const METRIC: &str = "ramjet_namesrv_acl_denied";

/// Denial counts by account, shared between the NameServer executor and a scrape.
#[derive(Debug, Clone, Default)]
pub struct SharedDenials(Arc<Mutex<DenialCounts>>);

impl SharedDenials {
    fn lock(&self) -> MutexGuard<'_, DenialCounts> {
        // A panic while counting leaves the counts usable; take them anyway.
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counts, by account.
    pub fn rows(&self) -> Vec<(String, u64)> {
        self.lock().rows()
    }

    /// The Prometheus text of the counts (`ramjet_namesrv_acl_denied_total{account}`).
    pub fn render(&self) -> String {
        let rows = self.rows();
        let help = "NameServer requests refused by access control, per account \
                    ((none): no or unknown key).";
        super::stats::render_as(METRIC, help, super::stats::merge([rows]))
    }
}

/// The NameServer's view of access control: the configuration in force and the denials.
///
/// Lives on: the NameServer executor.
#[derive(Debug)]
pub struct NamesrvAcl {
    config: RefCell<Arc<AclConfig>>,
    denials: SharedDenials,
}

impl NamesrvAcl {
    /// A NameServer gate deciding with `config`, counting into `denials`.
    pub fn new(config: Arc<AclConfig>, denials: SharedDenials) -> NamesrvAcl {
        NamesrvAcl { config: RefCell::new(config), denials }
    }

    /// Installs a reloaded configuration; requests after this call are decided by it.
    pub fn install(&self, config: Arc<AclConfig>) {
        *self.config.borrow_mut() = config;
    }

    /// The denial counts (shared: a clone reads the same counts).
    pub fn denials(&self) -> &SharedDenials {
        &self.denials
    }

    /// Decides `frame` from `peer`: reads pass unchecked, write codes need an admin
    /// account's signature.
    ///
    /// # Errors
    /// The refusal's answer (`None`: one-way, answer nothing).
    pub fn check(&self, frame: &Frame, peer: SocketAddr) -> Result<(), Option<Response>> {
        if !Policy::NameServer.checks(frame.header.code) {
            return Ok(());
        }
        let config = self.config.borrow();
        decide(&config, Policy::NameServer, frame, peer).map_err(|refusal| {
            self.denials.lock().count(&config, refusal.denied.access_key.as_deref());
            refusal.answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::acl::{sign_request, Credentials};
    use ramjet_proto::codes::{request, response};
    use ramjet_proto::{Header, SerializeType};

    const FILE: &str = "accounts:\n  - accessKey: adminKey1\n    secretKey: adminSecret1\n    \
                        admin: true\n  - accessKey: userKey01\n    secretKey: userSecret1\n    \
                        defaultTopicPerm: PUB|SUB\n";

    fn acl() -> NamesrvAcl {
        let config = super::super::config::parse(FILE).expect("parses");
        NamesrvAcl::new(Arc::new(config), SharedDenials::default())
    }

    fn creds(access_key: &str, secret_key: &str) -> Credentials {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    fn frame(code: i32, creds: Option<&Credentials>) -> Frame {
        let mut header = Header::request(code, 3, SerializeType::RocketMq);
        header.ext_fields.insert("namespace", "ns");
        header.ext_fields.insert("key", "k");
        header.ext_fields.insert("value", "v");
        let body = bytes::Bytes::from_static(b"{}");
        if let Some(c) = creds {
            sign_request(&mut header.ext_fields, &body, c);
        }
        Frame { header, body }
    }

    fn peer() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 40000))
    }

    fn remark(result: Result<(), Option<Response>>) -> String {
        match result {
            Err(Some(answer)) => {
                assert_eq!(answer.header.code, response::SYSTEM_ERROR);
                answer.header.remark.unwrap_or_default()
            }
            other => panic!("not refused with an answer: {:?}", other.is_ok()),
        }
    }

    // Goal: every write code needs an admin signature (unsigned, wrongly signed and
    // non-admin refused with the broker's remarks and counted per account); reads pass
    // unsigned and are never counted; an admin signature passes.
    #[test]
    fn writes_need_an_admin_and_reads_stay_open() {
        let acl = acl();
        let admin = creds("adminKey1", "adminSecret1");
        let user = creds("userKey01", "userSecret1");
        let forged = creds("adminKey1", "guessed");
        let prefix = "org.apache.rocketmq.acl.common.AclException: ";
        for code in super::super::resource::NAMESRV_ADMIN_CODES {
            assert_eq!(
                remark(acl.check(&frame(code, None), peer())),
                format!("{prefix}No accessKey is configured")
            );
            assert_eq!(
                remark(acl.check(&frame(code, Some(&forged)), peer())),
                format!("{prefix}Check signature failed for accessKey=adminKey1")
            );
            assert_eq!(
                remark(acl.check(&frame(code, Some(&user)), peer())),
                format!(
                    "{prefix}Need admin permission for request code={code}, but \
                     accessKey=userKey01 is not"
                )
            );
            assert!(acl.check(&frame(code, Some(&admin)), peer()).is_ok());
        }
        let reads = [
            request::GET_ROUTEINFO_BY_TOPIC,
            request::GET_BROKER_CLUSTER_INFO,
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            request::GET_TOPICS_BY_CLUSTER,
            request::GET_KV_CONFIG,
            request::GET_KVLIST_BY_NAMESPACE,
        ];
        for code in reads {
            assert!(acl.check(&frame(code, None), peer()).is_ok(), "read {code} refused");
            assert!(acl.check(&frame(code, Some(&forged)), peer()).is_ok());
        }
        let n = super::super::resource::NAMESRV_ADMIN_CODES.len() as u64;
        assert_eq!(
            acl.denials().rows(),
            vec![
                ("(none)".to_string(), n),
                ("adminKey1".to_string(), n),
                ("userKey01".to_string(), n)
            ]
        );
        let page = acl.denials().render();
        assert!(
            page.contains("ramjet_namesrv_acl_denied_total{account=\"userKey01\"} 9"),
            "{page}"
        );
    }

    // Goal: a one-way write is refused without an answer; an installed file decides the
    // next request.
    #[test]
    fn oneway_refusals_answer_nothing_and_installs_apply() {
        let acl = acl();
        let mut oneway = frame(request::REGISTER_BROKER, None);
        oneway.header.set_oneway();
        assert!(matches!(acl.check(&oneway, peer()), Err(None)));
        let user = creds("userKey01", "userSecret1");
        let promoted = FILE.replace("defaultTopicPerm: PUB|SUB", "admin: true");
        acl.install(Arc::new(super::super::config::parse(&promoted).expect("parses")));
        assert!(acl.check(&frame(request::PUT_KV_CONFIG, Some(&user)), peer()).is_ok());
    }
}
