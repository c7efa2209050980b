//! The controller's replicated state machine (the reference's `ReplicasInfoManager`).
//!
//! Lives on: the controller executor, one copy per member, changed only by applying
//! committed Raft entries ([`Command`]s, JSON) in log order, so every member holds the same
//! state. Commands are compare-and-set events: the leader decides with its leader-local
//! knowledge (heartbeats) and the command carries the epochs it decided against; applying
//! re-checks them, so two decisions raced through the log cannot both take effect.

use std::collections::{BTreeMap, BTreeSet};

use ramjet_proto::codes::response;
use ramjet_proto::controller as c;
use serde::{Deserialize, Serialize};

/// Most broker groups the controller holds (APPLY_BROKER_ID for a new group past it is
/// refused with `CONTROLLER_BROKER_ID_INVALID`).
pub const GROUPS_MAX: usize = 1_024;
/// Most members of one group (ids past it are refused).
pub const MEMBERS_PER_GROUP_MAX: usize = 16;
/// Longest cluster name, broker name, address or check code kept (longer: refused).
pub const NAME_BYTES_MAX: usize = 255;

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `ip:port` of its remoting listener.
    pub address: String,
    /// APPLY_BROKER_ID's `registerCheckCode` (`addr;millis`).
    pub check_code: String,
}

/// One broker group (cluster, brokerName): the reference's `BrokerReplicaInfo` and
/// `SyncStateInfo` together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Group {
    /// Cluster name.
    pub cluster: String,
    /// Members by controller-assigned id.
    pub members: BTreeMap<i64, Member>,
    /// The master's id, `None` before the first election or while no member can lead.
    pub master: Option<i64>,
    /// Incremented by every election that names a master.
    pub master_epoch: i32,
    /// The in-sync replica ids.
    pub sync_state_set: BTreeSet<i64>,
    /// Incremented by every change of the set (elections included).
    pub sync_state_set_epoch: i32,
}

impl Group {
    /// No master was ever elected (`SyncStateInfo.isFirstTimeForElect`).
    pub fn first_time_for_elect(&self) -> bool {
        self.master_epoch == 0
    }

    /// The next id to hand out.
    pub fn next_broker_id(&self) -> i64 {
        self.members.keys().next_back().map_or(c::FIRST_BROKER_CONTROLLER_ID, |id| id + 1)
    }

    /// The master's address.
    pub fn master_address(&self) -> Option<&str> {
        self.master.and_then(|m| self.members.get(&m)).map(|m| m.address.as_str())
    }

    /// `BrokerMemberGroup` of this group.
    pub fn member_group(&self, broker_name: &str) -> c::BrokerMemberGroup {
        c::BrokerMemberGroup {
            cluster: self.cluster.clone(),
            broker_name: broker_name.to_string(),
            broker_addrs: self.members.iter().map(|(id, m)| (*id, m.address.clone())).collect(),
        }
    }

    /// The `SyncStateSet` body.
    pub fn sync_state_body(&self) -> c::SyncStateSet {
        c::SyncStateSet {
            sync_state_set: self.sync_state_set.iter().copied().collect(),
            sync_state_set_epoch: self.sync_state_set_epoch,
        }
    }
}

/// A state change, as written in the Raft log (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// CONTROLLER_APPLY_BROKER_ID (1013).
    ApplyBrokerId {
        /// Cluster.
        cluster: String,
        /// Group.
        broker_name: String,
        /// Id applied for.
        broker_id: i64,
        /// `addr;millis`.
        check_code: String,
    },
    /// CONTROLLER_REGISTER_BROKER (1003) with a new address for a known id.
    UpdateAddress {
        /// Group.
        broker_name: String,
        /// Id.
        broker_id: i64,
        /// New address.
        address: String,
    },
    /// An election decided by the leader: `new_master` (or none) against the epochs seen.
    ElectMaster {
        /// Group.
        broker_name: String,
        /// The winner; `None`: the master is gone and no member can lead.
        new_master: Option<i64>,
        /// `masterEpoch` the decision was made against.
        seen_master_epoch: i32,
        /// `syncStateSetEpoch` the decision was made against.
        seen_sync_state_set_epoch: i32,
    },
    /// CONTROLLER_ALTER_SYNC_STATE_SET (1001) from the master.
    AlterSyncStateSet {
        /// Group.
        broker_name: String,
        /// Sender (must be the master).
        master_broker_id: i64,
        /// Sender's master epoch.
        master_epoch: i32,
        /// The set epoch the new set replaces.
        sync_state_set_epoch: i32,
        /// The new set.
        new_set: BTreeSet<i64>,
    },
    /// CLEAN_BROKER_DATA (1011): forget ids (all of the group when `None`).
    CleanBrokerData {
        /// Group.
        broker_name: String,
        /// Ids to forget.
        ids: Option<BTreeSet<i64>>,
    },
}

impl Command {
    /// The group a command touches.
    pub fn broker_name(&self) -> &str {
        match self {
            Command::ApplyBrokerId { broker_name, .. }
            | Command::UpdateAddress { broker_name, .. }
            | Command::ElectMaster { broker_name, .. }
            | Command::AlterSyncStateSet { broker_name, .. }
            | Command::CleanBrokerData { broker_name, .. } => broker_name,
        }
    }
}

/// What applying a command produced: a response code and remark for the proposer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Response code (`SUCCESS` or a 20xx code).
    pub code: i32,
    /// Remark (empty on success).
    pub remark: String,
}

impl Applied {
    fn ok() -> Applied {
        Applied { code: response::SUCCESS, remark: String::new() }
    }
    fn err(code: i32, remark: impl Into<String>) -> Applied {
        Applied { code, remark: remark.into() }
    }
}

/// The whole replicated state: groups by broker name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ControllerState {
    /// Groups by broker name.
    pub groups: BTreeMap<String, Group>,
}

impl ControllerState {
    /// Checks a command against the state without changing it (the leader's pre-check; the
    /// same rules run again in [`ControllerState::apply`]).
    pub fn check(&self, cmd: &Command) -> Applied {
        self.clone().apply(cmd)
    }

    /// Applies one committed command.
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        match cmd {
            Command::ApplyBrokerId { cluster, broker_name, broker_id, check_code } => {
                if [cluster, broker_name, check_code].iter().any(|s| s.len() > NAME_BYTES_MAX)
                    || broker_name.is_empty()
                {
                    return Applied::err(
                        response::CONTROLLER_INVALID_REQUEST,
                        "cluster, broker name or check code empty or too long",
                    );
                }
                let address = c::check_code_address(check_code).to_string();
                let groups = self.groups.len();
                let Some(group) = self.groups.get_mut(broker_name) else {
                    if *broker_id != c::FIRST_BROKER_CONTROLLER_ID {
                        return Applied::err(
                            response::CONTROLLER_BROKER_ID_INVALID,
                            format!(
                                "Broker-set: {} hasn't been registered in controller, but broker try to apply brokerId: {broker_id}",
                                ramjet_proto::text::clip_echo(broker_name)
                            ),
                        );
                    }
                    if groups >= GROUPS_MAX {
                        return Applied::err(
                            response::CONTROLLER_BROKER_ID_INVALID,
                            format!("the controller holds {GROUPS_MAX} broker groups already"),
                        );
                    }
                    let mut g = Group { cluster: cluster.clone(), ..Group::default() };
                    g.members
                        .insert(*broker_id, Member { address, check_code: check_code.clone() });
                    self.groups.insert(broker_name.clone(), g);
                    return Applied::ok();
                };
                match group.members.get(broker_id) {
                    Some(m) if m.check_code != *check_code => Applied::err(
                        response::CONTROLLER_BROKER_ID_INVALID,
                        format!(
                            "Fail to apply brokerId: {broker_id} in broker-set: {}",
                            ramjet_proto::text::clip_echo(broker_name)
                        ),
                    ),
                    Some(_) => Applied::ok(),
                    None if *broker_id < c::FIRST_BROKER_CONTROLLER_ID => Applied::err(
                        response::CONTROLLER_BROKER_ID_INVALID,
                        format!("brokerId {broker_id} is not a controller id"),
                    ),
                    None if group.members.len() >= MEMBERS_PER_GROUP_MAX => Applied::err(
                        response::CONTROLLER_BROKER_ID_INVALID,
                        format!("a broker group holds at most {MEMBERS_PER_GROUP_MAX} members"),
                    ),
                    None => {
                        group
                            .members
                            .insert(*broker_id, Member { address, check_code: check_code.clone() });
                        Applied::ok()
                    }
                }
            }
            Command::UpdateAddress { broker_name, broker_id, address } => {
                if address.len() > NAME_BYTES_MAX {
                    return Applied::err(response::CONTROLLER_INVALID_REQUEST, "address too long");
                }
                match self.groups.get_mut(broker_name).and_then(|g| g.members.get_mut(broker_id)) {
                    Some(m) => {
                        m.address.clone_from(address);
                        Applied::ok()
                    }
                    None => Applied::err(
                        response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                        format!("BrokerId: {broker_id} hasn't been registered"),
                    ),
                }
            }
            Command::ElectMaster {
                broker_name,
                new_master,
                seen_master_epoch,
                seen_sync_state_set_epoch,
            } => {
                let Some(g) = self.groups.get_mut(broker_name) else {
                    return Applied::err(
                        response::CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                        "Broker hasn't been registered",
                    );
                };
                if g.master_epoch != *seen_master_epoch
                    || g.sync_state_set_epoch != *seen_sync_state_set_epoch
                {
                    return Applied::err(
                        response::CONTROLLER_ELECT_MASTER_FAILED,
                        "the group changed while the election was decided",
                    );
                }
                match new_master {
                    Some(m) if g.members.contains_key(m) => {
                        g.master = Some(*m);
                        g.master_epoch += 1;
                        g.sync_state_set = BTreeSet::from([*m]);
                        g.sync_state_set_epoch += 1;
                        Applied::ok()
                    }
                    Some(m) => Applied::err(
                        response::CONTROLLER_ELECT_MASTER_FAILED,
                        format!("broker {m} is not a member"),
                    ),
                    None => {
                        g.master = None;
                        Applied::err(
                            response::CONTROLLER_MASTER_NOT_AVAILABLE,
                            "Old master has down and failed to elect a new broker master",
                        )
                    }
                }
            }
            Command::AlterSyncStateSet {
                broker_name,
                master_broker_id,
                master_epoch,
                sync_state_set_epoch,
                new_set,
            } => {
                let Some(g) = self.groups.get_mut(broker_name) else {
                    return Applied::err(
                        response::CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                        "Broker metadata is not existed",
                    );
                };
                if g.sync_state_set == *new_set {
                    return Applied::err(
                        response::CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                        "The newSyncStateSet is equal with oldSyncStateSet, no needed to update syncStateSet",
                    );
                }
                if g.master != Some(*master_broker_id) {
                    return Applied::err(
                        response::CONTROLLER_INVALID_MASTER,
                        format!(
                            "Rejecting alter syncStateSet request because the current leader is:{{{}}}, not {{{master_broker_id}}}",
                            g.master.map_or("null".to_string(), |m| m.to_string())
                        ),
                    );
                }
                if g.master_epoch != *master_epoch {
                    return Applied::err(
                        response::CONTROLLER_FENCED_MASTER_EPOCH,
                        format!(
                            "Rejecting alter syncStateSet request because the current master epoch is:{{{}}}, not {{{master_epoch}}}",
                            g.master_epoch
                        ),
                    );
                }
                if g.sync_state_set_epoch != *sync_state_set_epoch {
                    return Applied::err(
                        response::CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH,
                        format!(
                            "Rejecting alter syncStateSet request because the current syncStateSet epoch is:{{{}}}, not {{{sync_state_set_epoch}}}",
                            g.sync_state_set_epoch
                        ),
                    );
                }
                if let Some(r) = new_set.iter().find(|r| !g.members.contains_key(r)) {
                    return Applied::err(
                        response::CONTROLLER_INVALID_REPLICAS,
                        format!("Rejecting alter syncStateSet request because the replicas {{{r}}} don't exist"),
                    );
                }
                if !new_set.contains(master_broker_id) {
                    return Applied::err(
                        response::CONTROLLER_ALTER_SYNC_STATE_SET_FAILED,
                        format!("Rejecting alter syncStateSet request because the newSyncStateSet don't contains origin leader {{{master_broker_id}}}"),
                    );
                }
                g.sync_state_set.clone_from(new_set);
                g.sync_state_set_epoch += 1;
                Applied::ok()
            }
            Command::CleanBrokerData { broker_name, ids } => {
                let Some(g) = self.groups.get_mut(broker_name) else {
                    return Applied::err(
                        response::CONTROLLER_INVALID_CLEAN_BROKER_METADATA,
                        "Broker metadata is not existed",
                    );
                };
                match ids {
                    None => {
                        self.groups.remove(broker_name);
                    }
                    Some(ids) => {
                        for id in ids {
                            g.members.remove(id);
                            g.sync_state_set.remove(id);
                            if g.master == Some(*id) {
                                g.master = None;
                            }
                        }
                        if g.members.is_empty() {
                            self.groups.remove(broker_name);
                        }
                    }
                }
                Applied::ok()
            }
        }
    }
}

/// What the leader knows of a member from its heartbeats (leader-local, not replicated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Liveness {
    /// The member's last epoch.
    pub epoch: i32,
    /// Its commit-log max offset.
    pub max_offset: i64,
    /// Lower is preferred.
    pub election_priority: i32,
}

/// The election rule (the reference's `DefaultElectPolicy`): among `candidates` that are
/// alive (`alive` returns their heartbeat facts), keep the old master if it is one of them;
/// else the highest epoch, then the highest max offset, then the lowest priority value, then
/// the lowest id. `None` when no candidate is alive.
pub fn elect<F>(candidates: &BTreeSet<i64>, old_master: Option<i64>, alive: F) -> Option<i64>
where
    F: Fn(i64) -> Option<Liveness>,
{
    let live: Vec<(i64, Liveness)> =
        candidates.iter().filter_map(|id| alive(*id).map(|l| (*id, l))).collect();
    if let Some(old) = old_master {
        if live.iter().any(|(id, _)| *id == old) {
            return Some(old);
        }
    }
    live.into_iter()
        .max_by(|(a_id, a), (b_id, b)| {
            a.epoch
                .cmp(&b.epoch)
                .then(a.max_offset.cmp(&b.max_offset))
                .then(b.election_priority.cmp(&a.election_priority))
                .then(b_id.cmp(a_id))
        })
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply_id(s: &mut ControllerState, id: i64) -> i32 {
        s.apply(&Command::ApplyBrokerId {
            cluster: "c".into(),
            broker_name: "b".into(),
            broker_id: id,
            check_code: format!("127.0.0.1:{};1", 10_000 + id),
        })
        .code
    }

    #[test]
    fn ids_elections_and_fencing() {
        let mut s = ControllerState::default();
        assert_eq!(apply_id(&mut s, 2), response::CONTROLLER_BROKER_ID_INVALID);
        assert_eq!(apply_id(&mut s, 1), response::SUCCESS);
        assert_eq!(s.groups["b"].next_broker_id(), 2);
        assert_eq!(apply_id(&mut s, 2), response::SUCCESS);
        assert_eq!(apply_id(&mut s, 3), response::SUCCESS);
        let elect1 = Command::ElectMaster {
            broker_name: "b".into(),
            new_master: Some(1),
            seen_master_epoch: 0,
            seen_sync_state_set_epoch: 0,
        };
        assert_eq!(s.apply(&elect1).code, response::SUCCESS);
        assert_eq!(s.apply(&elect1).code, response::CONTROLLER_ELECT_MASTER_FAILED, "stale");
        let g = &s.groups["b"];
        assert_eq!((g.master, g.master_epoch, g.sync_state_set_epoch), (Some(1), 1, 1));
        let alter = |epoch, set_epoch, set: &[i64]| Command::AlterSyncStateSet {
            broker_name: "b".into(),
            master_broker_id: 1,
            master_epoch: epoch,
            sync_state_set_epoch: set_epoch,
            new_set: set.iter().copied().collect(),
        };
        assert_eq!(s.apply(&alter(0, 1, &[1, 2])).code, response::CONTROLLER_FENCED_MASTER_EPOCH);
        assert_eq!(
            s.apply(&alter(1, 0, &[1, 2])).code,
            response::CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH
        );
        assert_eq!(s.apply(&alter(1, 1, &[1, 9])).code, response::CONTROLLER_INVALID_REPLICAS);
        assert_eq!(
            s.apply(&alter(1, 1, &[2])).code,
            response::CONTROLLER_ALTER_SYNC_STATE_SET_FAILED
        );
        assert_eq!(s.apply(&alter(1, 1, &[1, 2])).code, response::SUCCESS);
        assert_eq!(s.groups["b"].sync_state_set_epoch, 2);
    }

    #[test]
    fn election_prefers_old_master_then_epoch_offset_priority() {
        let set: BTreeSet<i64> = [1, 2, 3].into();
        let l = |e, o, p| Some(Liveness { epoch: e, max_offset: o, election_priority: p });
        assert_eq!(elect(&set, Some(1), |_| l(1, 0, 0)), Some(1));
        let facts = |id| match id {
            2 => l(2, 100, 5),
            3 => l(2, 200, 9),
            _ => None,
        };
        assert_eq!(elect(&set, Some(1), facts), Some(3));
        let tie = |id| match id {
            2 => l(2, 100, 5),
            3 => l(2, 100, 1),
            _ => None,
        };
        assert_eq!(elect(&set, Some(1), tie), Some(3));
        assert_eq!(elect(&set, Some(1), |_| None), None);
    }

    #[test]
    fn group_and_member_tables_are_bounded() {
        let mut s = ControllerState::default();
        for i in 1..=MEMBERS_PER_GROUP_MAX as i64 {
            assert_eq!(apply_id(&mut s, i), response::SUCCESS);
        }
        assert_eq!(apply_id(&mut s, 99), response::CONTROLLER_BROKER_ID_INVALID);
        for i in 1..GROUPS_MAX {
            let cmd = Command::ApplyBrokerId {
                cluster: "c".into(),
                broker_name: format!("g{i}"),
                broker_id: 1,
                check_code: "a;1".into(),
            };
            assert_eq!(s.apply(&cmd).code, response::SUCCESS);
        }
        let cmd = Command::ApplyBrokerId {
            cluster: "c".into(),
            broker_name: "one-more".into(),
            broker_id: 1,
            check_code: "a;1".into(),
        };
        assert_eq!(s.apply(&cmd).code, response::CONTROLLER_BROKER_ID_INVALID);
    }
}
