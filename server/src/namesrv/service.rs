//! The NameServer's request handlers and its executor loop.
//!
//! Lives on: the NameServer executor. State is one `RouteInfo` and the KV config table,
//! both behind `RefCell`s that no handler holds across an await.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use glommio::net::TcpListener;
use ramjet_proto::body::{self, KvTable, RegisterBrokerBody, TopicList};
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, DeleteKvConfigRequestHeader, DeleteTopicFromNamesrvRequestHeader,
    GetKvConfigRequestHeader, GetRouteInfoRequestHeader, PutKvConfigRequestHeader,
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnRegisterBrokerRequestHeader,
};
use ramjet_proto::text::clip_echo;
use ramjet_proto::{FieldError, Frame, Header};
use tracing::{info, warn};

use super::route_info::{Registration, RouteInfo};
use crate::acl::namesrv::{NamesrvAcl, SharedDenials};
use crate::acl::reload::AclReloader;
use crate::clock::now_ms;
use crate::net::connection::{accept_loop, ConnectionHandle, Response, Service};
use crate::table_limits::TableLimit;

/// How often silent brokers are looked for (the reference scans every 5 s).
pub const EXPIRY_SCAN_INTERVAL_MS: u64 = 5_000;
/// MQVersion ordinal from which route bodies are standard JSON (V4_9_4).
const VERSION_STANDARD_JSON: i32 = 401;

/// The NameServer's request handler.
///
/// Lives on: the NameServer executor.
pub struct NamesrvService {
    /// Access control (`aclEnable`): `None` when off.
    acl: Option<NamesrvAcl>,
    routes: RefCell<RouteInfo>,
    kv: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    connection_ids: RefCell<HashMap<std::net::SocketAddr, u64>>,
    next_connection_id: Cell<u64>,
}

impl NamesrvService {
    /// A NameServer with an empty registry.
    pub fn new() -> Rc<NamesrvService> {
        NamesrvService::with_acl(None)
    }

    /// A NameServer with an empty registry that checks its write requests with `acl`.
    pub fn with_acl(acl: Option<NamesrvAcl>) -> Rc<NamesrvService> {
        Rc::new(NamesrvService {
            acl,
            routes: RefCell::new(RouteInfo::new()),
            kv: RefCell::new(BTreeMap::new()),
            connection_ids: RefCell::new(HashMap::new()),
            next_connection_id: Cell::new(1),
        })
    }

    fn connection_id(&self, conn: &ConnectionHandle) -> u64 {
        let mut ids = self.connection_ids.borrow_mut();
        *ids.entry(conn.peer()).or_insert_with(|| {
            let id = self.next_connection_id.get();
            self.next_connection_id.set(id + 1);
            id
        })
    }

    /// Handles one request frame that arrived on connection `connection_id` (the id a
    /// registration remembers, so the connection's close forgets the broker). No I/O: the
    /// fuzz and property tests call it directly.
    pub fn dispatch(&self, frame: &Frame, connection_id: u64) -> Response {
        let h = &frame.header;
        let result = match h.code {
            request::REGISTER_BROKER => self.register_broker(frame, connection_id),
            request::UNREGISTER_BROKER => self.unregister_broker(h),
            request::GET_ROUTEINFO_BY_TOPIC => self.route(h),
            request::GET_BROKER_CLUSTER_INFO => {
                Ok(ok(h, body::to_json(&self.routes.borrow().cluster_info())))
            }
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
                let list =
                    TopicList { topic_list: self.routes.borrow().topics(), broker_addr: None };
                Ok(ok(h, body::to_json(&list)))
            }
            request::GET_TOPICS_BY_CLUSTER => self.topics_by_cluster(h),
            request::DELETE_TOPIC_IN_NAMESRV => {
                DeleteTopicFromNamesrvRequestHeader::decode(&h.ext_fields).map(|r| {
                    self.routes.borrow_mut().delete_topic(&r.topic);
                    ok(h, Bytes::new())
                })
            }
            request::PUT_KV_CONFIG => self.put_kv(h),
            request::GET_KV_CONFIG => self.get_kv(h),
            request::DELETE_KV_CONFIG => {
                DeleteKvConfigRequestHeader::decode(&h.ext_fields).map(|r| {
                    if let Some(ns) = self.kv.borrow_mut().get_mut(&r.namespace) {
                        ns.remove(&r.key);
                    }
                    ok(h, Bytes::new())
                })
            }
            request::GET_KVLIST_BY_NAMESPACE => {
                let ns = h.ext_fields.get("namespace").unwrap_or_default();
                match self.kv.borrow().get(ns) {
                    Some(t) => {
                        let table = KvTable { table: t.clone().into_iter().collect() };
                        Ok(ok(h, body::to_json(&table)))
                    }
                    None => Ok(Response::new(
                        Header::response_to(h, response::QUERY_NOT_FOUND)
                            .with_remark(format!("No config item, Namespace: {}", clip_echo(ns))),
                    )),
                }
            }
            code => Ok(Response::new(
                Header::response_to(h, response::REQUEST_CODE_NOT_SUPPORTED)
                    .with_remark(format!("request type {code} not supported")),
            )),
        };
        result.unwrap_or_else(|e| {
            Response::new(Header::response_to(h, response::SYSTEM_ERROR).with_remark(e.to_string()))
        })
    }

    fn register_broker(&self, frame: &Frame, connection_id: u64) -> Result<Response, FieldError> {
        let h = &frame.header;
        let req = RegisterBrokerRequestHeader::decode(&h.ext_fields)?;
        if let Some(crc) = req.body_crc32.filter(|c| *c != 0) {
            let computed = ramjet_proto::message::body_crc(&frame.body) as i32;
            if computed != crc {
                return Ok(Response::new(
                    Header::response_to(h, response::SYSTEM_ERROR).with_remark("crc32 not match"),
                ));
            }
        }
        let decoded = if frame.body.is_empty() {
            Ok(RegisterBrokerBody::default())
        } else if req.compressed == Some(true) {
            // The reference's compressed layout (zlib), inflated under a bound.
            ramjet_proto::register_body::decode_compressed(&frame.body).map_err(|e| e.to_string())
        } else {
            body::from_json::<RegisterBrokerBody>(&frame.body).map_err(|e| e.to_string())
        };
        let (topics, state_version) = match decoded {
            Ok(b) => {
                let wrapper = b.topic_config_serialize_wrapper;
                (
                    wrapper.topic_config_table.into_values().collect(),
                    wrapper.data_version.state_version,
                )
            }
            Err(e) => {
                return Ok(Response::new(
                    Header::response_to(h, response::SYSTEM_ERROR)
                        .with_remark(format!("bad register body: {e}")),
                ))
            }
        };
        let reg = Registration {
            cluster_name: req.cluster_name,
            broker_name: req.broker_name,
            broker_addr: req.broker_addr,
            ha_server_addr: req.ha_server_addr,
            broker_id: req.broker_id,
            heartbeat_timeout_ms: req.heartbeat_timeout_millis.and_then(|v| u64::try_from(v).ok()),
            topics,
            connection_id,
            state_version,
        };
        let result = self.routes.borrow_mut().register(reg, now_ms());
        if let Some(reason) = &result.refused {
            // As the reference: answered SUCCESS with no master, and ignored.
            warn!(%reason, "registration refused: a broker with a higher state version holds the id");
        }
        let mut resp = Header::response_to(h, response::SUCCESS);
        RegisterBrokerResponseHeader {
            ha_server_addr: result.ha_server_addr,
            master_addr: result.master_addr,
        }
        .encode(&mut resp.ext_fields);
        Ok(ok_with(resp, body::to_json(&KvTable::default())))
    }

    fn unregister_broker(&self, h: &Header) -> Result<Response, FieldError> {
        let req = UnRegisterBrokerRequestHeader::decode(&h.ext_fields)?;
        self.routes.borrow_mut().unregister(&req.broker_addr);
        info!(broker = %req.broker_addr, "broker unregistered");
        Ok(ok(h, Bytes::new()))
    }

    fn route(&self, h: &Header) -> Result<Response, FieldError> {
        let req = GetRouteInfoRequestHeader::decode(&h.ext_fields)?;
        let Some(route) = self.routes.borrow().route(&req.topic) else {
            return Ok(Response::new(
                Header::response_to(h, response::TOPIC_NOT_EXIST).with_remark(format!(
                    "No topic route info in name server for the topic: {}",
                    clip_echo(&req.topic)
                )),
            ));
        };
        let standard =
            h.version >= VERSION_STANDARD_JSON || req.accept_standard_json_only == Some(true);
        let json = if standard { body::to_json(&route) } else { route.to_json_fastjson() };
        Ok(ok(h, json))
    }

    fn topics_by_cluster(&self, h: &Header) -> Result<Response, FieldError> {
        let cluster = h.ext_fields.req_str("cluster")?;
        let list = TopicList {
            topic_list: self.routes.borrow().topics_of_cluster(cluster),
            broker_addr: None,
        };
        Ok(ok(h, body::to_json(&list)))
    }

    /// PUT_KV_CONFIG, within `kvConfigMaxCount`, `kvConfigKeyMaxBytes` (namespace and key)
    /// and `kvConfigValueMaxBytes`; a refusal is SYSTEM_ERROR and stores nothing.
    fn put_kv(&self, h: &Header) -> Result<Response, FieldError> {
        let r = PutKvConfigRequestHeader::decode(&h.ext_fields)?;
        let limits = crate::table_limits::limits();
        let refused = |limit: TableLimit, what: &str, max: usize| {
            crate::table_limits::report(limit);
            let remark = limit.remark(what, max);
            Ok(Response::new(Header::response_to(h, response::SYSTEM_ERROR).with_remark(remark)))
        };
        if r.namespace.len().max(r.key.len()) > limits.kv_key_bytes_max {
            let what = "KV namespace or key too long";
            return refused(TableLimit::KvKeyBytes, what, limits.kv_key_bytes_max);
        }
        if r.value.len() > limits.kv_value_bytes_max {
            return refused(
                TableLimit::KvValueBytes,
                "KV value too long",
                limits.kv_value_bytes_max,
            );
        }
        let mut kv = self.kv.borrow_mut();
        // A namespace emptied by deletes stays (GET_KVLIST_BY_NAMESPACE still finds it), so
        // it counts as one entry.
        let count: usize = kv.values().map(|ns| ns.len().max(1)).sum();
        let grows = match kv.get(&r.namespace) {
            None => true,
            Some(ns) => !ns.is_empty() && !ns.contains_key(&r.key),
        };
        if grows && count >= limits.kv_entries_max {
            return refused(TableLimit::KvEntries, "KV config full", limits.kv_entries_max);
        }
        kv.entry(r.namespace).or_default().insert(r.key, r.value);
        Ok(ok(h, Bytes::new()))
    }

    fn get_kv(&self, h: &Header) -> Result<Response, FieldError> {
        let req = GetKvConfigRequestHeader::decode(&h.ext_fields)?;
        let value = self.kv.borrow().get(&req.namespace).and_then(|ns| ns.get(&req.key)).cloned();
        Ok(match value {
            Some(v) => {
                let mut resp = Header::response_to(h, response::SUCCESS);
                resp.ext_fields.insert("value", v);
                Response::new(resp)
            }
            None => Response::new(Header::response_to(h, response::QUERY_NOT_FOUND).with_remark(
                format!(
                    "No config item, Namespace: {} Key: {}",
                    clip_echo(&req.namespace),
                    clip_echo(&req.key)
                ),
            )),
        })
    }
}

fn ok(request: &Header, body: impl Into<Bytes>) -> Response {
    Response {
        header: Header::response_to(request, response::SUCCESS),
        body: body.into(),
        parts: Box::default(),
    }
}

fn ok_with(header: Header, body: impl Into<Bytes>) -> Response {
    Response { header, body: body.into(), parts: Box::default() }
}

impl Service for NamesrvService {
    fn call(
        self: Rc<Self>,
        frame: Frame,
        conn: ConnectionHandle,
    ) -> Pin<Box<dyn Future<Output = Option<Response>>>> {
        // Access control first: a refused request is never dispatched, so changes nothing.
        let admitted = match &self.acl {
            None => Ok(()),
            Some(acl) => acl.check(&frame, conn.peer()),
        };
        let resp = match admitted {
            Ok(()) => self.dispatch(&frame, self.connection_id(&conn)),
            Err(answer) => return Box::pin(async move { answer }),
        };
        let oneway = frame.header.is_oneway();
        Box::pin(async move {
            if oneway {
                None
            } else {
                Some(resp)
            }
        })
    }

    fn closed(self: Rc<Self>, conn: &ConnectionHandle) {
        let id = self.connection_ids.borrow_mut().remove(&conn.peer());
        if let Some(id) = id {
            self.connection_closed(id);
        }
    }
}

/// Accepts connections on `listener` and serves them until `stop` resolves.
pub async fn run_namesrv(listener: TcpListener, stop: impl Future<Output = ()>) {
    run_namesrv_with(listener, stop, NamesrvOptions::default()).await
}

/// What a NameServer runs with besides its listener.
#[derive(Debug, Default)]
pub struct NamesrvOptions {
    /// `/metrics` listener (`--metrics-port`).
    pub metrics: Option<std::net::TcpListener>,
    /// Access control (`aclEnable`): the file's reloader (loaded at start) and where the
    /// denials are counted. `None`: off.
    pub acl: Option<(AclReloader, SharedDenials)>,
    /// The controller's gauges when `enableControllerInNamesrv` runs one beside this
    /// NameServer: appended to `/metrics`.
    pub controller: Option<crate::controller::node::SharedGauges>,
}

impl NamesrvService {
    /// Forgets the brokers registered on connection `connection_id`, which closed.
    pub fn connection_closed(&self, connection_id: u64) {
        let gone = self.routes.borrow_mut().connection_closed(connection_id);
        for addr in gone {
            warn!(broker = %addr, "broker connection closed; removed from routes");
        }
    }

    /// Forgets brokers silent for longer than their timeout at `now_ms`.
    pub fn expire(&self, now_ms: u64) {
        let gone = self.routes.borrow_mut().expire(now_ms);
        for addr in gone {
            warn!(broker = %addr, "broker expired after silence; removed from routes");
        }
    }

    /// The route table's first broken invariant, if any (for tests).
    pub fn route_invariant_violation(&self) -> Option<String> {
        self.routes.borrow().invariant_violation()
    }

    /// The Prometheus page: registered brokers, the topic count and, with ACL on, the
    /// denials per account.
    pub fn metrics_page(&self) -> String {
        let routes = self.routes.borrow();
        let mut page =
            crate::metrics::render_namesrv(&routes.cluster_info(), routes.topics().len());
        if let Some(acl) = &self.acl {
            page.push_str(&acl.denials().render());
        }
        page
    }
}

/// As [`run_namesrv`], with `options`: `/metrics`, access control.
pub async fn run_namesrv_with(
    listener: TcpListener,
    stop: impl Future<Output = ()>,
    options: NamesrvOptions,
) {
    let (reloader, acl) = match options.acl {
        Some((reloader, denials)) => {
            let acl = NamesrvAcl::new(reloader.current(), denials);
            (Some(reloader), Some(acl))
        }
        None => (None, None),
    };
    let service = NamesrvService::with_acl(acl);
    let _reload = reloader.map(|reloader| {
        let service = service.clone();
        glommio::spawn_local(crate::acl::gate::poll_loop(reloader, move |config| {
            if let Some(acl) = &service.acl {
                acl.install(config);
                info!("ACL configuration installed on the NameServer");
            }
            std::future::ready(())
        }))
    });
    let controller = options.controller;
    let _metrics = options.metrics.map(|l| {
        let service = service.clone();
        let render: crate::http::Render = Rc::new(move || {
            let mut page = service.metrics_page();
            if let Some(gauges) = &controller {
                page.push_str(&crate::controller::node::render_gauges(gauges));
            }
            Box::pin(async move { (page, crate::metrics::CONTENT_TYPE) })
        });
        glommio::spawn_local(crate::http::serve(l, render))
    });
    let scanner = {
        let service = service.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_millis(EXPIRY_SCAN_INTERVAL_MS)).await;
                service.expire(now_ms());
            }
        })
    };
    futures_lite::future::or(accept_loop(&listener, service, "namesrv"), stop).await;
    drop(scanner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ramjet_proto::SerializeType;

    fn put(ns: &NamesrvService, namespace: &str, key: &str, value: &str) -> i32 {
        let mut h = Header::request(request::PUT_KV_CONFIG, 1, SerializeType::Json);
        PutKvConfigRequestHeader {
            namespace: namespace.into(),
            key: key.into(),
            value: value.into(),
        }
        .encode(&mut h.ext_fields);
        ns.dispatch(&Frame { header: h, body: Bytes::new() }, 1).header.code
    }

    #[test]
    fn kv_config_entries_and_sizes_are_bounded() {
        let limits = crate::table_limits::limits();
        let ns = NamesrvService::new();
        let long = "k".repeat(limits.kv_key_bytes_max + 1);
        assert_eq!(put(&ns, "n", &long, "v"), response::SYSTEM_ERROR);
        assert_eq!(put(&ns, &long, "k", "v"), response::SYSTEM_ERROR);
        let big = "v".repeat(limits.kv_value_bytes_max + 1);
        assert_eq!(put(&ns, "n", "k", &big), response::SYSTEM_ERROR);
        for i in 0..limits.kv_entries_max {
            assert_eq!(put(&ns, "n", &format!("k{i}"), "v"), response::SUCCESS);
        }
        assert_eq!(put(&ns, "n", "one-more", "v"), response::SYSTEM_ERROR);
        assert_eq!(put(&ns, "other", "k", "v"), response::SYSTEM_ERROR);
        assert_eq!(put(&ns, "n", "k0", "replaced"), response::SUCCESS, "a replacement fits");
        assert_eq!(ns.kv.borrow().values().map(BTreeMap::len).sum::<usize>(), 10_000);
    }
}
