//! The shared core of producers, consumers and admin calls: configuration, connections,
//! NameServer calls and the route cache.
//!
//! Lives on: the executor that created it (`Rc` inside; clone it to share).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ramjet_proto::body::{ClusterInfo, TopicRouteData};
use ramjet_proto::{Frame, Header};

use crate::config::ClientConfig;
use crate::error::ClientError;
use crate::protocol;
use crate::route::{RoundRobin, RouteTable, TopicRoute};
use crate::shards::{Lookup, ShardMap, ShardTable};
use crate::transport::{Connection, ConnectionOptions, ConnectionPool, ServerRequestHandler};

/// A handle to one client instance: cheap to clone, `!Send`.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

struct Inner {
    config: ClientConfig,
    pool: ConnectionPool,
    routes: RefCell<RouteTable>,
    namesrv_next: RoundRobin,
    shards: RefCell<ShardTable>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish()
    }
}

impl Client {
    /// A client that ignores server-initiated requests.
    pub fn new(config: ClientConfig) -> Client {
        Client::with_handler(config, None)
    }

    /// A client whose connections hand server-initiated requests to `handler`.
    pub fn with_handler(config: ClientConfig, handler: Option<ServerRequestHandler>) -> Client {
        let options = ConnectionOptions {
            in_flight_max: config.in_flight_per_connection_max,
            connect_timeout: config.request_timeout,
            handler,
        };
        Client {
            inner: Rc::new(Inner {
                pool: ConnectionPool::new(options),
                routes: RefCell::new(RouteTable::new()),
                namesrv_next: RoundRobin::default(),
                shards: RefCell::new(ShardTable::default()),
                config,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A request header with `code` in the configured encoding.
    pub fn header(&self, code: i32) -> Header {
        Header::request(code, 0, self.inner.config.serialize_type)
    }

    /// The open connection to `addr`, connecting when needed.
    ///
    /// # Errors
    /// `Connect`.
    pub async fn connection(&self, addr: &str) -> Result<Rc<Connection>, ClientError> {
        self.inner.pool.get(addr).await
    }

    /// The address to send `(topic, queue_id)`'s requests to on the broker at
    /// `broker_addr`: the owner shard's own address when the broker advertises one
    /// ([`crate::shards`]) and it can be connected, else `broker_addr`. The first call for
    /// a broker asks it once (GET_BROKER_RUNTIME_INFO); calls meanwhile use `broker_addr`.
    pub async fn queue_addr(&self, broker_addr: &str, topic: &str, queue_id: i32) -> String {
        if !self.inner.config.shard_aware {
            return broker_addr.to_string();
        }
        let lookup =
            self.inner.shards.borrow_mut().lookup(broker_addr, topic, queue_id, Instant::now());
        let addr = match lookup {
            Lookup::Use(a) => a,
            Lookup::Ask => {
                let map = self.ask_shard_map(broker_addr).await;
                let addr = map.as_ref().map(|m| m.addr_for(topic, queue_id).to_string());
                self.inner.shards.borrow_mut().learned(broker_addr, map, Instant::now());
                addr.unwrap_or_else(|| broker_addr.to_string())
            }
        };
        if addr == broker_addr {
            return addr;
        }
        match self.connection(&addr).await {
            Ok(_) => addr,
            Err(e) => {
                tracing::debug!(%broker_addr, shard = %addr, error = %e,
                    "shard address unreachable; using the broker address");
                self.inner.shards.borrow_mut().failed(broker_addr, Instant::now());
                broker_addr.to_string()
            }
        }
    }

    async fn ask_shard_map(&self, broker_addr: &str) -> Option<ShardMap> {
        let header = self.header(ramjet_proto::codes::request::GET_BROKER_RUNTIME_INFO);
        let reply =
            protocol::check_success(self.invoke(broker_addr, header, &[]).await.ok()?).ok()?;
        let table: ramjet_proto::body::KvTable = ramjet_proto::body::from_json(&reply.body).ok()?;
        ShardMap::from_runtime_info(&table)
    }

    /// Sends a request to `addr` and waits for the reply (any response code) within the
    /// configured request timeout; signed when the config has credentials.
    ///
    /// # Errors
    /// Transport errors (`Connect`, `ConnectionClosed`, `Timeout`, `TooManyInFlight`).
    pub async fn invoke(
        &self,
        addr: &str,
        header: Header,
        body: &[u8],
    ) -> Result<Frame, ClientError> {
        self.invoke_with_timeout(addr, header, body, self.inner.config.request_timeout).await
    }

    /// As [`Client::invoke`] with an explicit timeout.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn invoke_with_timeout(
        &self,
        addr: &str,
        header: Header,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Frame, ClientError> {
        let connection = self.connection(addr).await?;
        connection.request(self.signed(header, body), body, timeout).await
    }

    /// `header` signed with the configured credentials (unchanged without them). Every
    /// request leaves through [`Client::invoke_with_timeout`] or [`Client::invoke_oneway`],
    /// which both sign last, after every ext field is set.
    fn signed(&self, mut header: Header, body: &[u8]) -> Header {
        if let Some(credentials) = &self.inner.config.credentials {
            ramjet_proto::acl::sign_request(&mut header.ext_fields, body, credentials);
        }
        header
    }

    /// Queues a one-way request to `addr`; signed when the config has credentials.
    ///
    /// # Errors
    /// `Connect` or `ConnectionClosed`.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        header: Header,
        body: &[u8],
    ) -> Result<(), ClientError> {
        self.connection(addr).await?.oneway(self.signed(header, body), body)
    }

    /// Sends a request to a NameServer: round robin over the configured ones, trying the
    /// next on a transport error.
    ///
    /// # Errors
    /// The last transport error when every NameServer failed.
    pub async fn invoke_namesrv(&self, header: Header, body: &[u8]) -> Result<Frame, ClientError> {
        let addrs = &self.inner.config.namesrv_addrs;
        let start = self.inner.namesrv_next.next_index(addrs.len()).unwrap_or(0);
        let mut last_error = ClientError::InvalidArgument { reason: "no NameServer".into() };
        for i in 0..addrs.len() {
            let Some(addr) = addrs.get((start + i) % addrs.len()) else { continue };
            match self.invoke(addr, header.clone(), body).await {
                Ok(frame) => return Ok(frame),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "NameServer request failed");
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    /// Asks a NameServer for the route of `topic`; `Ok(None)` when it knows none.
    ///
    /// # Errors
    /// Transport errors, or a refusal other than TOPIC_NOT_EXIST.
    pub async fn fetch_route(&self, topic: &str) -> Result<Option<TopicRouteData>, ClientError> {
        let header = protocol::route_request(topic, self.inner.config.serialize_type);
        protocol::parse_route(self.invoke_namesrv(header, &[]).await?)
    }

    /// The cached route of `topic`, fetched on first use.
    ///
    /// # Errors
    /// `NoRoute` when the NameServer knows no such topic; transport errors.
    pub async fn topic_route(&self, topic: &str) -> Result<Rc<TopicRoute>, ClientError> {
        if let Some(route) = self.inner.routes.borrow().get(topic) {
            return Ok(route);
        }
        self.refresh_route(topic).await
    }

    /// Fetches the route of `topic` again and replaces the cached one.
    ///
    /// # Errors
    /// `NoRoute` when the NameServer knows no such topic; transport errors.
    pub async fn refresh_route(&self, topic: &str) -> Result<Rc<TopicRoute>, ClientError> {
        match self.fetch_route(topic).await? {
            Some(data) => Ok(self.inner.routes.borrow_mut().update(topic, data)),
            None => Err(ClientError::NoRoute { topic: topic.to_string() }),
        }
    }

    /// Caches `data` as the route of `topic` (used for routes derived from the
    /// auto-create template topic).
    pub fn install_route(&self, topic: &str, data: TopicRouteData) -> Rc<TopicRoute> {
        self.inner.routes.borrow_mut().update(topic, data)
    }

    /// Drops the cached route of `topic`, so the next use fetches it again.
    pub fn invalidate_route(&self, topic: &str) {
        self.inner.routes.borrow_mut().remove(topic);
    }

    /// The master address of `broker_name`, refreshing the route of `topic` when the
    /// broker is not known yet.
    ///
    /// # Errors
    /// `NoBrokerAddr` when the refreshed route does not name it either.
    pub async fn master_addr(&self, broker_name: &str, topic: &str) -> Result<String, ClientError> {
        if let Some(addr) = self.inner.routes.borrow().master_addr(broker_name) {
            return Ok(addr.to_string());
        }
        self.refresh_route(topic).await?;
        let routes = self.inner.routes.borrow();
        routes
            .master_addr(broker_name)
            .map(str::to_string)
            .ok_or_else(|| ClientError::NoBrokerAddr { broker_name: broker_name.to_string() })
    }

    /// Asks a NameServer for the cluster's brokers (GET_BROKER_CLUSTER_INFO).
    ///
    /// # Errors
    /// Transport errors, a refusal, or a body that does not parse.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        let header = protocol::cluster_info_request(self.inner.config.serialize_type);
        protocol::parse_cluster_info(self.invoke_namesrv(header, &[]).await?)
    }

    /// Flushes every connection (one-way requests queued so far leave), then closes them.
    pub async fn shutdown(&self) {
        self.inner.pool.flush_all().await;
        self.close();
    }

    /// Closes every connection at once; requests in flight fail with `ConnectionClosed`
    /// and frames not yet written are dropped (use [`Client::shutdown`] to send them).
    pub fn close(&self) {
        self.inner.pool.close_all();
    }
}

/// Milliseconds since the Unix epoch, as RocketMQ timestamps are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
