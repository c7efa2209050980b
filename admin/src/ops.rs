//! The remoting calls behind the commands: one request, one reply, errors worded by
//! [`AdminError`]. Everything goes through `ramjet-client`'s connections, so the tool
//! works against ramjet and any RocketMQ broker or NameServer.

use bytes::Bytes;
use ramjet_client::{Client, ClientConfig, Credentials};
use ramjet_proto::body::{from_json, BrokerData, ClusterInfo, TopicRouteData};
use ramjet_proto::codes::{request, response};
use ramjet_proto::{Frame, Header};
use serde::de::DeserializeOwned;

use crate::error::AdminError;

/// A connected admin context.
pub struct Ops {
    client: Client,
    namesrv: String,
}

/// The name of a request code the tool sends.
pub fn request_name(code: i32) -> &'static str {
    match code {
        request::QUERY_MESSAGE => "QUERY_MESSAGE",
        request::PULL_MESSAGE => "PULL_MESSAGE",
        request::UPDATE_AND_CREATE_TOPIC => "UPDATE_AND_CREATE_TOPIC",
        request::UPDATE_BROKER_CONFIG => "UPDATE_BROKER_CONFIG",
        request::GET_BROKER_CONFIG => "GET_BROKER_CONFIG",
        request::GET_BROKER_RUNTIME_INFO => "GET_BROKER_RUNTIME_INFO",
        request::VIEW_MESSAGE_BY_ID => "VIEW_MESSAGE_BY_ID",
        request::GET_ALL_CONSUMER_OFFSET => "GET_ALL_CONSUMER_OFFSET",
        request::GET_ROUTEINFO_BY_TOPIC => "GET_ROUTEINFO_BY_TOPIC",
        request::GET_BROKER_CLUSTER_INFO => "GET_BROKER_CLUSTER_INFO",
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP",
        request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
        request::GET_TOPIC_STATS_INFO => "GET_TOPIC_STATS_INFO",
        request::GET_CONSUMER_CONNECTION_LIST => "GET_CONSUMER_CONNECTION_LIST",
        request::GET_PRODUCER_CONNECTION_LIST => "GET_PRODUCER_CONNECTION_LIST",
        request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => "GET_ALL_TOPIC_LIST_FROM_NAMESERVER",
        request::DELETE_SUBSCRIPTIONGROUP => "DELETE_SUBSCRIPTIONGROUP",
        request::GET_CONSUME_STATS => "GET_CONSUME_STATS",
        request::DELETE_TOPIC_IN_BROKER => "DELETE_TOPIC_IN_BROKER",
        request::DELETE_TOPIC_IN_NAMESRV => "DELETE_TOPIC_IN_NAMESRV",
        request::INVOKE_BROKER_TO_RESET_OFFSET => "INVOKE_BROKER_TO_RESET_OFFSET",
        request::GET_TOPICS_BY_CLUSTER => "GET_TOPICS_BY_CLUSTER",
        request::GET_ALL_TOPIC_CONFIG => "GET_ALL_TOPIC_CONFIG",
        request::CONTROLLER_GET_METADATA_INFO => "CONTROLLER_GET_METADATA_INFO",
        request::CONTROLLER_GET_SYNC_STATE_DATA => "CONTROLLER_GET_SYNC_STATE_DATA",
        request::GET_BROKER_EPOCH_CACHE => "GET_BROKER_EPOCH_CACHE",
        _ => "request",
    }
}

impl Ops {
    /// A context talking to the NameServers in `namesrv` (`h:p;h:p`), signing every
    /// request with `credentials` when given.
    ///
    /// # Errors
    /// A NameServer list that does not parse.
    pub fn new(namesrv: &str, credentials: Option<Credentials>) -> Result<Ops, AdminError> {
        let mut config = ClientConfig::new(namesrv)
            .map_err(|e| AdminError::Usage(format!("bad NameServer list {namesrv:?}: {e}")))?;
        config.credentials = credentials;
        Ok(Ops { client: Client::new(config), namesrv: namesrv.to_string() })
    }

    /// A request header for `code` in the client's encoding.
    pub fn header(&self, code: i32) -> Header {
        self.client.header(code)
    }

    /// Sends a request to the broker at `addr`; any reply code comes back.
    ///
    /// # Errors
    /// Transport failures, worded as "broker ... is unreachable".
    pub async fn broker_raw(
        &self,
        addr: &str,
        h: Header,
        body: &[u8],
    ) -> Result<Frame, AdminError> {
        let code = h.code;
        self.client
            .invoke(addr, h, body)
            .await
            .map_err(|e| AdminError::from_client("broker", addr, request_name(code), e))
    }

    /// Sends a request to the broker at `addr` and wants SUCCESS.
    ///
    /// # Errors
    /// Transport failures and refusals.
    pub async fn broker(&self, addr: &str, h: Header, body: &[u8]) -> Result<Frame, AdminError> {
        let code = h.code;
        let frame = self.broker_raw(addr, h, body).await?;
        check("broker", addr, code, frame)
    }

    /// As [`Ops::broker`], parsing the JSON body.
    ///
    /// # Errors
    /// As [`Ops::broker`], plus a body that does not parse.
    pub async fn broker_json<T: DeserializeOwned>(
        &self,
        addr: &str,
        h: Header,
    ) -> Result<T, AdminError> {
        let frame = self.broker(addr, h, &[]).await?;
        parse(addr, &frame.body)
    }

    /// Sends a request to a NameServer and wants SUCCESS.
    ///
    /// # Errors
    /// Transport failures (of every NameServer) and refusals.
    pub async fn namesrv(&self, h: Header) -> Result<Frame, AdminError> {
        let code = h.code;
        let frame = self.client.invoke_namesrv(h, &[]).await.map_err(|e| {
            AdminError::from_client("NameServer", &self.namesrv, request_name(code), e)
        })?;
        check("NameServer", &self.namesrv, code, frame)
    }

    /// The cluster info of the NameServer.
    ///
    /// # Errors
    /// NameServer unreachable or refusing.
    pub async fn cluster_info(&self) -> Result<ClusterInfo, AdminError> {
        let frame = self.namesrv(self.header(request::GET_BROKER_CLUSTER_INFO)).await?;
        parse(&self.namesrv, &frame.body)
    }

    /// The route of `topic`.
    ///
    /// # Errors
    /// `NoRoute` when the NameServer knows no such topic.
    pub async fn route(&self, topic: &str) -> Result<TopicRouteData, AdminError> {
        match self.client.fetch_route(topic).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(AdminError::NoRoute { topic: topic.to_string() }),
            Err(e) => Err(AdminError::from_client(
                "NameServer",
                &self.namesrv,
                "GET_ROUTEINFO_BY_TOPIC",
                e,
            )),
        }
    }

    /// Master addresses to act on: `-b` as given, else the masters of cluster `-c`, else
    /// every master the NameServer knows. Sorted as (broker name, addr).
    ///
    /// # Errors
    /// NameServer failures; `NotFound` when no master matches.
    pub async fn masters(
        &self,
        broker: Option<&str>,
        cluster: Option<&str>,
    ) -> Result<Vec<(String, String)>, AdminError> {
        if let Some(b) = broker {
            let name = self.broker_name_of(b).await.unwrap_or_else(|| b.to_string());
            return Ok(vec![(name, b.to_string())]);
        }
        let info = self.cluster_info().await?;
        let names: Option<Vec<String>> = match cluster {
            Some(c) => match info.cluster_addr_table.get(c) {
                Some(n) => Some(n.clone()),
                None => return Err(AdminError::NotFound(format!("no cluster named {c}"))),
            },
            None => None,
        };
        let mut out: Vec<(String, String)> = info
            .broker_addr_table
            .values()
            .filter(|b| names.as_ref().is_none_or(|n| n.contains(&b.broker_name)))
            .filter_map(|b| b.master_addr().map(|a| (b.broker_name.clone(), a.to_string())))
            .collect();
        out.sort();
        if out.is_empty() {
            return Err(AdminError::NotFound("the NameServer knows no master broker".into()));
        }
        Ok(out)
    }

    /// The broker name registered for `addr`, if the NameServer knows it.
    async fn broker_name_of(&self, addr: &str) -> Option<String> {
        let info = self.cluster_info().await.ok()?;
        info.broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| a == addr))
            .map(|b| b.broker_name.clone())
    }

    /// (broker name, master address) of every broker serving `topic`.
    ///
    /// # Errors
    /// `NoRoute`; `NotFound` when the route names no master.
    pub async fn topic_masters(&self, topic: &str) -> Result<Vec<(String, String)>, AdminError> {
        let route = self.route(topic).await?;
        let mut out: Vec<(String, String)> = route
            .broker_datas
            .iter()
            .filter_map(|b: &BrokerData| {
                b.master_addr().map(|a| (b.broker_name.clone(), a.to_string()))
            })
            .collect();
        out.sort();
        if out.is_empty() {
            return Err(AdminError::NotFound(format!(
                "the route of {topic} names no master broker"
            )));
        }
        Ok(out)
    }

    /// Closes the connections.
    pub fn close(&self) {
        self.client.close();
    }
}

/// SUCCESS passes; anything else becomes `Refused`.
///
/// # Errors
/// A non-success code.
pub fn check(role: &'static str, addr: &str, code: i32, frame: Frame) -> Result<Frame, AdminError> {
    if frame.header.code == response::SUCCESS {
        return Ok(frame);
    }
    Err(AdminError::Refused {
        role,
        addr: addr.to_string(),
        request: request_name(code),
        code: frame.header.code,
        remark: frame.header.remark.clone().unwrap_or_default(),
    })
}

/// Parses a JSON body (fastjson-tolerant).
///
/// # Errors
/// `BadReply`.
pub fn parse<T: DeserializeOwned>(addr: &str, body: &Bytes) -> Result<T, AdminError> {
    from_json(body)
        .map_err(|e| AdminError::BadReply { addr: addr.to_string(), reason: e.to_string() })
}
