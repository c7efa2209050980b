//! The controller's wire protocol (RocketMQ 5 controller mode, RIP-44).
//!
//! Header and body types of the reference's
//! `remoting/.../protocol/header/controller/**`, `header/namesrv/BrokerHeartbeatRequestHeader`,
//! `header/NotifyBrokerRoleChangedRequestHeader` and the bodies `SyncStateSet`,
//! `BrokerReplicasInfo`, `ElectMasterResponseBody`, `BrokerMemberGroup`, `EpochEntryCache`.
//! Wire names are the Java field names (`isLeader` keeps its `is`). Codes live in
//! [`crate::codes`] and are re-exported here.
//!
//! Who sends what (the reference's `ControllerRequestProcessor`):
//!
//! ```text
//! code  request                          header in / header out                       body in / body out
//! 1012  CONTROLLER_GET_NEXT_BROKER_ID    GetNextBrokerIdRequestHeader / ...Response   - / -
//! 1013  CONTROLLER_APPLY_BROKER_ID       ApplyBrokerIdRequestHeader / ...Response     - / -
//! 1003  CONTROLLER_REGISTER_BROKER       RegisterBrokerToControllerRequestHeader /    - / SyncStateSet
//!                                        RegisterBrokerToControllerResponseHeader
//!  904  BROKER_HEARTBEAT                 BrokerHeartbeatRequestHeader / -             - / -
//! 1002  CONTROLLER_ELECT_MASTER          ElectMasterRequestHeader / ...Response       - / ElectMasterResponseBody
//! 1001  CONTROLLER_ALTER_SYNC_STATE_SET  AlterSyncStateSetRequestHeader / ...Response SyncStateSet / SyncStateSet
//! 1004  CONTROLLER_GET_REPLICA_INFO      GetReplicaInfoRequestHeader / ...Response    - / SyncStateSet
//! 1005  CONTROLLER_GET_METADATA_INFO     - / GetMetaDataResponseHeader                - / -
//! 1006  CONTROLLER_GET_SYNC_STATE_DATA   - / -                                        JSON [brokerName] / BrokerReplicasInfo
//! 1011  CLEAN_BROKER_DATA                CleanControllerBrokerDataRequestHeader / -   - / -
//! 1008  NOTIFY_BROKER_ROLE_CHANGED       NotifyBrokerRoleChangedRequestHeader / -     ElectMasterResponseBody / -
//!       (controller -> broker)
//! 1007  GET_BROKER_EPOCH_CACHE           - / -                                        - / EpochEntryCache
//!       (admin -> broker)
//! ```
//!
//! A controller member that is not the Raft leader answers every request that needs the
//! replicated state with `CONTROLLER_NOT_LEADER` (2007) and the remark
//! [`NOT_LEADER_REMARK`]; 1005 is answered by every member and names the leader.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::body::lenient;
use crate::command::ExtFields;
use crate::error::FieldError;
use crate::header::{header, optional, put_opt, required, CommandHeader, HeaderValue};

/// Request codes of the controller protocol (values of `RequestCode.java`).
pub use crate::codes::request::{
    BROKER_HEARTBEAT, CLEAN_BROKER_DATA, CONTROLLER_ALTER_SYNC_STATE_SET,
    CONTROLLER_APPLY_BROKER_ID, CONTROLLER_ELECT_MASTER, CONTROLLER_GET_METADATA_INFO,
    CONTROLLER_GET_NEXT_BROKER_ID, CONTROLLER_GET_REPLICA_INFO, CONTROLLER_GET_SYNC_STATE_DATA,
    CONTROLLER_REGISTER_BROKER, GET_BROKER_EPOCH_CACHE, GET_CONTROLLER_CONFIG,
    NOTIFY_BROKER_ROLE_CHANGED, UPDATE_CONTROLLER_CONFIG,
};

/// Response codes of the controller protocol (values of `ResponseCode.java`, 2000-2016).
pub use crate::codes::response::{
    CONTROLLER_ALTER_SYNC_STATE_SET_FAILED, CONTROLLER_BROKER_ID_INVALID,
    CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS, CONTROLLER_BROKER_METADATA_NOT_EXIST,
    CONTROLLER_BROKER_NEED_TO_BE_REGISTERED, CONTROLLER_BROKER_NOT_ALIVE,
    CONTROLLER_ELECT_MASTER_FAILED, CONTROLLER_FENCED_MASTER_EPOCH,
    CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH, CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
    CONTROLLER_INVALID_MASTER, CONTROLLER_INVALID_REPLICAS, CONTROLLER_INVALID_REQUEST,
    CONTROLLER_JRAFT_INTERNAL_ERROR, CONTROLLER_MASTER_NOT_AVAILABLE,
    CONTROLLER_MASTER_STILL_EXIST, CONTROLLER_NOT_LEADER,
};

/// The remark of a `CONTROLLER_NOT_LEADER` answer, as the reference writes it.
pub const NOT_LEADER_REMARK: &str = "The controller is not in leader state";

/// The first broker id the controller assigns (`MixAll.FIRST_BROKER_CONTROLLER_ID`).
pub const FIRST_BROKER_CONTROLLER_ID: i64 = 1;

/// The master's broker id in a route (`MixAll.MASTER_ID`): a promoted replica registers
/// with the NameServer as 0 whatever its controller-assigned id.
pub const MASTER_ID: i64 = 0;

/// `registerCheckCode` of APPLY_BROKER_ID: `"<brokerAddress>;<millis>"`.
pub fn register_check_code(broker_address: &str, millis: i64) -> String {
    format!("{broker_address};{millis}")
}

/// The broker address part of a `registerCheckCode` (everything before the first `;`).
pub fn check_code_address(check_code: &str) -> &str {
    check_code.split(';').next().unwrap_or(check_code)
}

// ---------------------------------------------------------------------------------------
// Broker id assignment (1012, 1013) and registration (1003).

header! {
    /// CONTROLLER_GET_NEXT_BROKER_ID (1012) request.
    pub struct GetNextBrokerIdRequestHeader {
        /// Cluster of the broker group.
        req cluster_name: String = "clusterName",
        /// Broker group name.
        req broker_name: String = "brokerName",
    }
}

header! {
    /// CONTROLLER_GET_NEXT_BROKER_ID (1012) response.
    pub struct GetNextBrokerIdResponseHeader {
        /// Echoed cluster.
        opt cluster_name: String = "clusterName",
        /// Echoed broker group.
        opt broker_name: String = "brokerName",
        /// The id the broker should apply for ([`FIRST_BROKER_CONTROLLER_ID`] for a new group).
        opt next_broker_id: i64 = "nextBrokerId",
    }
}

header! {
    /// CONTROLLER_APPLY_BROKER_ID (1013) request.
    pub struct ApplyBrokerIdRequestHeader {
        /// Cluster of the broker group.
        req cluster_name: String = "clusterName",
        /// Broker group name.
        req broker_name: String = "brokerName",
        /// The id applied for.
        req applied_broker_id: i64 = "appliedBrokerId",
        /// `"<brokerAddress>;<millis>"` ([`register_check_code`]): the same code may apply
        /// again for the same id.
        req register_check_code: String = "registerCheckCode",
    }
}

header! {
    /// CONTROLLER_APPLY_BROKER_ID (1013) response.
    pub struct ApplyBrokerIdResponseHeader {
        /// Echoed cluster.
        opt cluster_name: String = "clusterName",
        /// Echoed broker group.
        opt broker_name: String = "brokerName",
    }
}

header! {
    /// CONTROLLER_REGISTER_BROKER (1003) request: a broker with an applied id announces its
    /// address. The response body is the group's [`SyncStateSet`].
    pub struct RegisterBrokerToControllerRequestHeader {
        /// Cluster of the broker group.
        req cluster_name: String = "clusterName",
        /// Broker group name.
        req broker_name: String = "brokerName",
        /// The controller-assigned id.
        req broker_id: i64 = "brokerId",
        /// `ip:port` of the broker's remoting listener.
        req broker_address: String = "brokerAddress",
        /// Sender's clock (informational).
        def invoke_time: i64 = "invokeTime" or 0,
    }
}

header! {
    /// CONTROLLER_REGISTER_BROKER (1003) response; the master fields are present only while
    /// the group has a live master.
    pub struct RegisterBrokerToControllerResponseHeader {
        /// Echoed cluster.
        opt cluster_name: String = "clusterName",
        /// Echoed broker group.
        opt broker_name: String = "brokerName",
        /// The master's controller-assigned id.
        opt master_broker_id: i64 = "masterBrokerId",
        /// The master's address.
        opt master_address: String = "masterAddress",
        /// The master's epoch.
        opt master_epoch: i32 = "masterEpoch",
        /// The syncStateSet's epoch.
        opt sync_state_set_epoch: i32 = "syncStateSetEpoch",
    }
}

// ---------------------------------------------------------------------------------------
// Liveness (904), election (1002), in-sync set (1001).

header! {
    /// BROKER_HEARTBEAT (904), the 5.x lightweight heartbeat (`BrokerHeartbeatRequestHeader`).
    /// The controller answers `CONTROLLER_INVALID_REQUEST` when `brokerId` is absent.
    pub struct BrokerHeartbeatRequestHeader {
        /// Cluster of the broker group.
        req cluster_name: String = "clusterName",
        /// `ip:port` of the broker.
        req broker_addr: String = "brokerAddr",
        /// Broker group name.
        req broker_name: String = "brokerName",
        /// The controller-assigned id.
        opt broker_id: i64 = "brokerId",
        /// The broker's current (last) epoch.
        opt epoch: i32 = "epoch",
        /// The broker's commit-log max offset.
        opt max_offset: i64 = "maxOffset",
        /// The broker's confirm offset.
        opt confirm_offset: i64 = "confirmOffset",
        /// How long the controller may wait for the next heartbeat (ms).
        opt heartbeat_timeout_mills: i64 = "heartbeatTimeoutMills",
        /// Lower is preferred when offsets and epochs tie.
        opt election_priority: i32 = "electionPriority",
    }
}

header! {
    /// CONTROLLER_ELECT_MASTER (1002) request. A broker asks to be the group's first master
    /// (its own id); an operator elects with `designateElect`; `brokerId` -1 lets the
    /// controller choose.
    pub struct ElectMasterRequestHeader {
        /// Cluster of the broker group.
        def cluster_name: String = "clusterName" or String::new(),
        /// Broker group name.
        def broker_name: String = "brokerName" or String::new(),
        /// Candidate id, or -1.
        def broker_id: i64 = "brokerId" or -1,
        /// Elect `brokerId` by force (it must be alive; in the set unless unclean is allowed).
        def designate_elect: bool = "designateElect" or false,
        /// Sender's clock (informational).
        def invoke_time: i64 = "invokeTime" or 0,
    }
}

header! {
    /// CONTROLLER_ELECT_MASTER (1002) response (also of `CONTROLLER_MASTER_STILL_EXIST`).
    /// The body is an [`ElectMasterResponseBody`].
    pub struct ElectMasterResponseHeader {
        /// The master's id.
        opt master_broker_id: i64 = "masterBrokerId",
        /// The master's address.
        opt master_address: String = "masterAddress",
        /// The master's epoch.
        opt master_epoch: i32 = "masterEpoch",
        /// The syncStateSet's epoch.
        opt sync_state_set_epoch: i32 = "syncStateSetEpoch",
    }
}

header! {
    /// CONTROLLER_ALTER_SYNC_STATE_SET (1001) request from the master; the body is the new
    /// [`SyncStateSet`] carrying the epoch it replaces. Fenced by `masterEpoch` (2000) and
    /// the body's `syncStateSetEpoch` (2001).
    pub struct AlterSyncStateSetRequestHeader {
        /// Broker group name.
        req broker_name: String = "brokerName",
        /// The sender's id (must be the master).
        req master_broker_id: i64 = "masterBrokerId",
        /// The sender's master epoch.
        req master_epoch: i32 = "masterEpoch",
        /// Sender's clock (informational).
        def invoke_time: i64 = "invokeTime" or 0,
    }
}

header! {
    /// CONTROLLER_ALTER_SYNC_STATE_SET (1001) response.
    pub struct AlterSyncStateSetResponseHeader {
        /// The epoch of the set now in force.
        def new_sync_state_set_epoch: i32 = "newSyncStateSetEpoch" or 0,
    }
}

// ---------------------------------------------------------------------------------------
// Reads (1004, 1005, 1006) and administration (1011), notification (1008).

header! {
    /// CONTROLLER_GET_REPLICA_INFO (1004) request; the response body is the [`SyncStateSet`].
    pub struct GetReplicaInfoRequestHeader {
        /// Broker group name.
        req broker_name: String = "brokerName",
    }
}

header! {
    /// CONTROLLER_GET_REPLICA_INFO (1004) response; master fields absent while the group has
    /// no master.
    pub struct GetReplicaInfoResponseHeader {
        /// The master's id.
        opt master_broker_id: i64 = "masterBrokerId",
        /// The master's address.
        opt master_address: String = "masterAddress",
        /// The master's epoch.
        opt master_epoch: i32 = "masterEpoch",
    }
}

header! {
    /// CONTROLLER_GET_METADATA_INFO (1005) response: answered by every member.
    pub struct GetMetaDataResponseHeader {
        /// `controllerDLegerGroup`.
        opt group: String = "group",
        /// The leader's member id (`n0`), absent while no leader is known.
        opt controller_leader_id: String = "controllerLeaderId",
        /// The leader's `ip:port`, absent while no leader is known.
        opt controller_leader_address: String = "controllerLeaderAddress",
        /// Whether the answering member is the leader.
        def is_leader: bool = "isLeader" or false,
        /// `controllerDLegerPeers` as configured.
        opt peers: String = "peers",
    }
}

header! {
    /// CLEAN_BROKER_DATA (1011) request.
    pub struct CleanControllerBrokerDataRequestHeader {
        /// Cluster (optional).
        opt cluster_name: String = "clusterName",
        /// Broker group name.
        req broker_name: String = "brokerName",
        /// `;`-separated ids to forget; absent = the whole group.
        opt broker_controller_ids_to_clean: String = "brokerControllerIdsToClean",
        /// Also forget members that still heartbeat.
        def is_clean_living_broker: bool = "isCleanLivingBroker" or false,
        /// Sender's clock (informational).
        def invoke_time: i64 = "invokeTime" or 0,
    }
}

header! {
    /// NOTIFY_BROKER_ROLE_CHANGED (1008), controller to broker; body an
    /// [`ElectMasterResponseBody`].
    pub struct NotifyBrokerRoleChangedRequestHeader {
        /// The master's address.
        opt master_address: String = "masterAddress",
        /// The master's epoch.
        opt master_epoch: i32 = "masterEpoch",
        /// The syncStateSet's epoch.
        opt sync_state_set_epoch: i32 = "syncStateSetEpoch",
        /// The master's id.
        opt master_broker_id: i64 = "masterBrokerId",
    }
}

// ---------------------------------------------------------------------------------------
// Bodies (fastjson-tolerant reading, standard JSON writing; see `crate::body`).

/// `SyncStateSet`: the in-sync replica ids and the set's epoch (1001 in/out, 1003, 1004).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SyncStateSet {
    /// Broker ids in the set (a Java `Set<Long>`; written sorted).
    #[serde(deserialize_with = "lenient::vec_i64")]
    pub sync_state_set: Vec<i64>,
    /// The set's epoch.
    #[serde(deserialize_with = "lenient::i32")]
    pub sync_state_set_epoch: i32,
}

/// `BrokerMemberGroup`: a group's members by controller-assigned id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerMemberGroup {
    /// Cluster name.
    #[serde(deserialize_with = "lenient::string")]
    pub cluster: String,
    /// Broker group name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// `ip:port` by broker id.
    #[serde(deserialize_with = "lenient::or_default")]
    pub broker_addrs: BTreeMap<i64, String>,
}

/// `ElectMasterResponseBody` (1002 out, 1008 in).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ElectMasterResponseBody {
    /// The group's members (absent when the election changed nothing).
    #[serde(deserialize_with = "lenient::or_default", skip_serializing_if = "Option::is_none")]
    pub broker_member_group: Option<BrokerMemberGroup>,
    /// The new in-sync set.
    #[serde(deserialize_with = "lenient::vec_i64")]
    pub sync_state_set: Vec<i64>,
}

/// `BrokerReplicasInfo.ReplicaIdentity`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplicaIdentity {
    /// Broker group name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// Controller-assigned id.
    #[serde(deserialize_with = "lenient::i64")]
    pub broker_id: i64,
    /// `ip:port`.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_address: String,
    /// Whether the controller's leader hears its heartbeat.
    #[serde(deserialize_with = "lenient::bool")]
    pub alive: bool,
}

/// `BrokerReplicasInfo.ReplicasInfo`: one group's view.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReplicasInfo {
    /// The master's id (absent while none).
    #[serde(deserialize_with = "lenient::opt_i64", skip_serializing_if = "Option::is_none")]
    pub master_broker_id: Option<i64>,
    /// The master's address.
    #[serde(deserialize_with = "lenient::opt_string", skip_serializing_if = "Option::is_none")]
    pub master_address: Option<String>,
    /// The master's epoch.
    #[serde(deserialize_with = "lenient::opt_i32", skip_serializing_if = "Option::is_none")]
    pub master_epoch: Option<i32>,
    /// The syncStateSet's epoch.
    #[serde(deserialize_with = "lenient::opt_i32", skip_serializing_if = "Option::is_none")]
    pub sync_state_set_epoch: Option<i32>,
    /// Members in the set.
    #[serde(deserialize_with = "lenient::or_default")]
    pub in_sync_replicas: Vec<ReplicaIdentity>,
    /// Members outside it.
    #[serde(deserialize_with = "lenient::or_default")]
    pub not_in_sync_replicas: Vec<ReplicaIdentity>,
}

/// `BrokerReplicasInfo` (1006 out): groups by broker name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BrokerReplicasInfo {
    /// One entry per asked group the controller knows.
    #[serde(deserialize_with = "lenient::or_default")]
    pub replicas_info_table: BTreeMap<String, ReplicasInfo>,
}

/// `EpochEntry`: where an epoch starts (and ends) in a broker's commit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EpochEntry {
    /// The master epoch.
    #[serde(deserialize_with = "lenient::i32")]
    pub epoch: i32,
    /// First commit-log offset written in it.
    #[serde(deserialize_with = "lenient::i64")]
    pub start_offset: i64,
    /// End offset (exclusive); `i64::MAX` for the open last epoch.
    #[serde(deserialize_with = "lenient::i64")]
    pub end_offset: i64,
}

impl Default for EpochEntry {
    fn default() -> Self {
        EpochEntry { epoch: 0, start_offset: 0, end_offset: i64::MAX }
    }
}

/// `EpochEntryCache` (GET_BROKER_EPOCH_CACHE 1007 out, served by a broker).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EpochEntryCache {
    /// Cluster name.
    #[serde(deserialize_with = "lenient::string")]
    pub cluster_name: String,
    /// Broker group name.
    #[serde(deserialize_with = "lenient::string")]
    pub broker_name: String,
    /// The broker's controller-assigned id.
    #[serde(deserialize_with = "lenient::i64")]
    pub broker_id: i64,
    /// Epochs, oldest first.
    #[serde(deserialize_with = "lenient::or_default")]
    pub epoch_list: Vec<EpochEntry>,
    /// The broker's commit-log max offset.
    #[serde(deserialize_with = "lenient::i64")]
    pub max_offset: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::body::{from_json, to_json};

    #[test]
    fn headers_round_trip_with_java_names() {
        let h = GetMetaDataResponseHeader {
            group: Some("g".into()),
            controller_leader_id: Some("n1".into()),
            controller_leader_address: Some("127.0.0.1:9878".into()),
            is_leader: true,
            peers: Some("n0-127.0.0.1:9877;n1-127.0.0.1:9878".into()),
        };
        let ext = h.to_ext_fields();
        assert_eq!(ext.opt_str("isLeader"), Some("true"));
        assert_eq!(GetMetaDataResponseHeader::decode(&ext).unwrap(), h);

        let mut ext = ExtFields::new();
        ext.insert("clusterName", "c");
        ext.insert("brokerAddr", "127.0.0.1:10911");
        ext.insert("brokerName", "b");
        ext.insert("brokerId", "2");
        ext.insert("maxOffset", "100");
        let hb = BrokerHeartbeatRequestHeader::decode(&ext).unwrap();
        assert_eq!(hb.broker_id, Some(2));
        assert_eq!(hb.epoch, None);
        assert_eq!(hb.max_offset, Some(100));

        let e = ElectMasterRequestHeader::decode(&ExtFields::new()).unwrap();
        assert_eq!(e.broker_id, -1);
        assert!(!e.designate_elect);
    }

    #[test]
    fn missing_required_field_is_an_error() {
        let mut ext = ExtFields::new();
        ext.insert("brokerName", "b");
        assert!(AlterSyncStateSetRequestHeader::decode(&ext).is_err());
        ext.insert("masterBrokerId", "1");
        ext.insert("masterEpoch", "x");
        assert!(AlterSyncStateSetRequestHeader::decode(&ext).is_err());
    }

    #[test]
    fn bodies_read_fastjson() {
        let s: SyncStateSet =
            from_json(br#"{"syncStateSet":[1,"2",3],"syncStateSetEpoch":4}"#).unwrap();
        assert_eq!(s.sync_state_set, vec![1, 2, 3]);
        assert_eq!(s.sync_state_set_epoch, 4);
        let back: SyncStateSet = from_json(&to_json(&s)).unwrap();
        assert_eq!(back, s);

        let b: ElectMasterResponseBody = from_json(
            br#"{"brokerMemberGroup":{"brokerAddrs":{1:"127.0.0.1:10911",2:"127.0.0.1:10921"},
            "brokerName":"b","cluster":"c"},"syncStateSet":[1]}"#,
        )
        .unwrap();
        let g = b.broker_member_group.unwrap();
        assert_eq!(g.broker_addrs[&2], "127.0.0.1:10921");

        let r: BrokerReplicasInfo = from_json(
            br#"{"replicasInfoTable":{"b":{"masterBrokerId":1,"masterAddress":"a:1",
            "masterEpoch":2,"syncStateSetEpoch":3,"inSyncReplicas":[{"brokerName":"b",
            "brokerId":1,"brokerAddress":"a:1","alive":true}],"notInSyncReplicas":[]}}}"#,
        )
        .unwrap();
        let info = &r.replicas_info_table["b"];
        assert_eq!(info.master_epoch, Some(2));
        assert!(info.in_sync_replicas[0].alive);
        let none: ReplicasInfo = from_json(br#"{"masterBrokerId":null}"#).unwrap();
        assert_eq!(none.master_broker_id, None);

        let c: EpochEntryCache = from_json(
            br#"{"brokerId":1,"epochList":[{"epoch":1,"startOffset":0,"endOffset":9223372036854775807}],"maxOffset":5}"#,
        )
        .unwrap();
        assert_eq!(c.epoch_list[0].end_offset, i64::MAX);
    }

    #[test]
    fn check_code_address_splits() {
        let code = register_check_code("127.0.0.1:10911", 42);
        assert_eq!(code, "127.0.0.1:10911;42");
        assert_eq!(check_code_address(&code), "127.0.0.1:10911");
        assert_eq!(check_code_address("noseparator"), "noseparator");
    }
}
