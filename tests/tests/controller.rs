//! The controller (issue 15): three `ramjet-namesrv` with `enableControllerInNamesrv=true`
//! form a Raft quorum; raw protocol clients act as brokers (1012, 1013, 1003, 904, 1001) and
//! as an admin (1004, 1005, 1006), in both header encodings.
//!
//! Every wait is a bounded poll of a condition; nothing asserts a duration.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ramjet_proto::codes::{request, response};
use ramjet_proto::controller as c;
use ramjet_proto::frame::{decode_frame, encode_frame};
use ramjet_proto::header::CommandHeader;
use ramjet_proto::{ExtFields, Frame, Header, SerializeType};
use ramjet_tests::{bin, http_get, metrics_addr, parse_prometheus, store_dir, Daemon};

const HEARTBEAT_TIMEOUT_MS: u64 = 1_500;
const LIMIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Loopback ports free right now (bound, read, released).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    held.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

struct Quorum {
    peers: String,
    addrs: Vec<String>,
    stores: Vec<tempfile::TempDir>,
    unclean: bool,
}

impl Quorum {
    fn new(n: usize, unclean: bool) -> Quorum {
        let ports = free_ports(n);
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("n{i}-{a}"))
            .collect::<Vec<_>>()
            .join(";");
        let stores = (0..n).map(|_| store_dir()).collect();
        Quorum { peers, addrs, stores, unclean }
    }

    fn start(&self, i: usize) -> Daemon {
        let store: &Path = self.stores[i].path();
        let conf = store.join("namesrv.conf");
        let text = format!(
            "enableControllerInNamesrv=true\ncontrollerDLegerGroup=g\ncontrollerDLegerPeers={}\n\
             controllerDLegerSelfId=n{i}\ncontrollerStorePath={}\n\
             controllerHeartBeatTimeoutMills={HEARTBEAT_TIMEOUT_MS}\nenableElectUncleanMaster={}\n",
            self.peers,
            store.join("ctrl").display(),
            self.unclean
        );
        std::fs::write(&conf, text).expect("conf");
        let mut cmd = Command::new(bin("ramjet-namesrv"));
        cmd.args(["--listen-port", "0", "--bind-ip", "127.0.0.1", "--metrics-port", "0", "-c"]);
        cmd.arg(&conf);
        let d = Daemon::start(cmd, "ramjet-namesrv (controller)");
        let word = format!("controller {}", self.addrs[i]);
        assert!(d.wait_for_log(&word, Duration::from_secs(10)), "ready line names {word}");
        d
    }
}

/// One request on a fresh connection; `None` when the member cannot be reached.
fn call(addr: &str, code: i32, ext: ExtFields, body: &[u8], st: SerializeType) -> Option<Frame> {
    let mut h = Header::request(code, 7, st);
    h.ext_fields = ext;
    let mut out = BytesMut::new();
    encode_frame(&h, body, &mut out).expect("encodes");
    let sock = addr.parse().expect("addr");
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(8))).ok()?;
    s.write_all(&out).ok()?;
    let mut read = BytesMut::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(f) = decode_frame(&mut read, usize::MAX).expect("reply decodes") {
            assert_eq!(f.header.serialize_type, st, "reply in the request's encoding");
            return Some(f);
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        read.extend_from_slice(&chunk[..n]);
    }
}

fn ask<H: CommandHeader>(addr: &str, code: i32, h: &H, body: &[u8]) -> Option<Frame> {
    call(addr, code, h.to_ext_fields(), body, SerializeType::Json)
}

fn metadata(addr: &str) -> Option<c::GetMetaDataResponseHeader> {
    let f = call(
        addr,
        request::CONTROLLER_GET_METADATA_INFO,
        ExtFields::new(),
        &[],
        SerializeType::Json,
    )?;
    c::GetMetaDataResponseHeader::decode(&f.header.ext_fields).ok()
}

/// Polls until one of `addrs` says it is the leader and the others agree; its address.
fn leader(addrs: &[&str]) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let metas: Vec<Option<c::GetMetaDataResponseHeader>> =
            addrs.iter().map(|a| metadata(a)).collect();
        let leaders: Vec<&str> = addrs
            .iter()
            .zip(&metas)
            .filter(|(_, m)| m.as_ref().is_some_and(|m| m.is_leader))
            .map(|(a, _)| *a)
            .collect();
        if let [one] = leaders[..] {
            let agreed =
                metas.iter().flatten().all(|m| m.controller_leader_address.as_deref() == Some(one));
            if agreed {
                return one.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no agreed controller leader among {addrs:?}");
        std::thread::sleep(POLL);
    }
}

fn broker_addr(id: i64) -> String {
    format!("127.0.0.1:{}", 1 + id) // nothing listens: notifications are best effort
}

/// A fake broker joins: 1012, 1013, 1003.
fn join(leader: &str, id: i64) {
    let next = ask(
        leader,
        request::CONTROLLER_GET_NEXT_BROKER_ID,
        &c::GetNextBrokerIdRequestHeader { cluster_name: "c".into(), broker_name: "b".into() },
        &[],
    )
    .expect("1012");
    assert_eq!(next.header.code, response::SUCCESS, "{:?}", next.header.remark);
    let h = c::GetNextBrokerIdResponseHeader::decode(&next.header.ext_fields).expect("header");
    assert_eq!(h.next_broker_id, Some(id));
    let apply = ask(
        leader,
        request::CONTROLLER_APPLY_BROKER_ID,
        &c::ApplyBrokerIdRequestHeader {
            cluster_name: "c".into(),
            broker_name: "b".into(),
            applied_broker_id: id,
            register_check_code: c::register_check_code(&broker_addr(id), 1),
        },
        &[],
    )
    .expect("1013");
    assert_eq!(apply.header.code, response::SUCCESS, "{:?}", apply.header.remark);
    let reg = ask(
        leader,
        request::CONTROLLER_REGISTER_BROKER,
        &c::RegisterBrokerToControllerRequestHeader {
            cluster_name: "c".into(),
            broker_name: "b".into(),
            broker_id: id,
            broker_address: broker_addr(id),
            invoke_time: 0,
        },
        &[],
    )
    .expect("1003");
    assert_eq!(reg.header.code, response::SUCCESS, "{:?}", reg.header.remark);
}

/// Heartbeats (904) of `ids` to every reachable member, as brokers send them.
fn beat(addrs: &[&str], ids: &[(i64, i64)]) {
    for (id, max_offset) in ids {
        let h = c::BrokerHeartbeatRequestHeader {
            cluster_name: "c".into(),
            broker_addr: broker_addr(*id),
            broker_name: "b".into(),
            broker_id: Some(*id),
            epoch: Some(1),
            max_offset: Some(*max_offset),
            confirm_offset: Some(*max_offset),
            heartbeat_timeout_mills: None,
            election_priority: None,
        };
        for a in addrs {
            if let Some(f) = ask(a, request::BROKER_HEARTBEAT, &h, &[]) {
                assert_eq!(f.header.code, response::SUCCESS);
            }
        }
    }
}

/// 1004 from `addr` in encoding `st`: (code, header, body).
fn replica_info(
    addr: &str,
    st: SerializeType,
) -> (i32, c::GetReplicaInfoResponseHeader, c::SyncStateSet) {
    let req = c::GetReplicaInfoRequestHeader { broker_name: "b".into() };
    let f = call(addr, request::CONTROLLER_GET_REPLICA_INFO, req.to_ext_fields(), &[], st)
        .expect("1004 answered");
    let h = c::GetReplicaInfoResponseHeader::decode(&f.header.ext_fields).unwrap_or_default();
    let body = ramjet_proto::body::from_json(&f.body).unwrap_or_default();
    (f.header.code, h, body)
}

/// Polls 1004 on the leader (heartbeating `alive` meanwhile) until `want` holds.
fn until_master(
    addrs: &[&str],
    alive: &[(i64, i64)],
    what: &str,
    want: impl Fn(&c::GetReplicaInfoResponseHeader) -> bool,
) -> c::GetReplicaInfoResponseHeader {
    let deadline = Instant::now() + LIMIT;
    loop {
        beat(addrs, alive);
        let l = leader(addrs);
        let (code, h, _) = replica_info(&l, SerializeType::Json);
        if code == response::SUCCESS && want(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{what}: last {h:?}");
        std::thread::sleep(POLL);
    }
}

// Goal: the whole life of a group under a 3-member quorum. Method: elect a controller
// leader; three fake brokers join; the first heartbeating one becomes master (epoch 1); the
// master puts broker 2 in sync; the master falls silent: broker 2 (in sync) becomes master
// with epoch 2 and broker 3 (out of sync, with more data) does not; followers answer 2007;
// reads in both encodings; SIGKILL the controller leader: a new one serves the same state
// and keeps the master (no needless change); the killed member restarts and catches up
// (its own /metrics shows the group's epoch); with every in-sync member silent, the
// out-of-sync broker 3 is never elected.
#[test]
fn quorum_elects_fails_over_and_survives_its_leader() {
    let q = Quorum::new(3, false);
    let mut members: Vec<Option<Daemon>> = (0..3).map(|i| Some(q.start(i))).collect();
    let all: Vec<&str> = q.addrs.iter().map(String::as_str).collect();
    let l = leader(&all);

    // Followers refuse, naming the state of affairs as the reference does.
    for a in all.iter().filter(|a| **a != l) {
        let (code, _, _) = replica_info(a, SerializeType::Json);
        assert_eq!(code, response::CONTROLLER_NOT_LEADER);
        let f = ask(
            a,
            request::CONTROLLER_GET_NEXT_BROKER_ID,
            &c::GetNextBrokerIdRequestHeader { cluster_name: "c".into(), broker_name: "b".into() },
            &[],
        )
        .expect("answered");
        assert_eq!(f.header.code, response::CONTROLLER_NOT_LEADER);
        assert_eq!(f.header.remark.as_deref(), Some(c::NOT_LEADER_REMARK));
        let m = metadata(a).expect("1005 from a follower");
        assert!(!m.is_leader);
        assert_eq!(m.controller_leader_address.as_deref(), Some(l.as_str()));
    }
    for id in 1..=3 {
        join(&l, id);
    }
    let h = until_master(&all, &[(1, 100)], "first heartbeating broker is master", |h| {
        h.master_broker_id.is_some()
    });
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(1), Some(1)));
    beat(&all, &[(1, 100), (2, 100), (3, 500)]);

    // The master puts broker 2 in sync (fenced by epochs).
    let l = leader(&all);
    let alter = |master_epoch: i32, set_epoch: i32| {
        let body = ramjet_proto::body::to_json(&c::SyncStateSet {
            sync_state_set: vec![1, 2],
            sync_state_set_epoch: set_epoch,
        });
        ask(
            &l,
            request::CONTROLLER_ALTER_SYNC_STATE_SET,
            &c::AlterSyncStateSetRequestHeader {
                broker_name: "b".into(),
                master_broker_id: 1,
                master_epoch,
                invoke_time: 0,
            },
            &body,
        )
        .expect("1001")
    };
    assert_eq!(alter(0, 1).header.code, response::CONTROLLER_FENCED_MASTER_EPOCH);
    assert_eq!(alter(1, 0).header.code, response::CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH);
    let ok = alter(1, 1);
    assert_eq!(ok.header.code, response::SUCCESS, "{:?}", ok.header.remark);
    let r = c::AlterSyncStateSetResponseHeader::decode(&ok.header.ext_fields).expect("header");
    assert_eq!(r.new_sync_state_set_epoch, 2);

    // The master falls silent: broker 2 takes over, never broker 3.
    let silent = Instant::now();
    let h = until_master(&all, &[(2, 100), (3, 500)], "in-sync broker 2 promoted", |h| {
        h.master_broker_id != Some(1)
    });
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(2), Some(2)));
    assert_eq!(h.master_address.as_deref(), Some(broker_addr(2).as_str()));
    // A figure for the report, not a check (timeout {HEARTBEAT_TIMEOUT_MS} ms).
    eprintln!("figure: master silent -> new master seen on 1004: {:?}", silent.elapsed());

    // Reads in both encodings agree; 1006 lists in-sync and out-of-sync members.
    let l = leader(&all);
    let (_, hj, bj) = replica_info(&l, SerializeType::Json);
    let (_, hb, bb) = replica_info(&l, SerializeType::RocketMq);
    assert_eq!((hj, bj.clone()), (hb, bb));
    assert_eq!(bj.sync_state_set, vec![2]);
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let f = call(
            &l,
            request::CONTROLLER_GET_SYNC_STATE_DATA,
            ExtFields::new(),
            br#"["b","unknown"]"#,
            st,
        )
        .expect("1006");
        assert_eq!(f.header.code, response::SUCCESS);
        let info: c::BrokerReplicasInfo = ramjet_proto::body::from_json(&f.body).expect("body");
        let b = &info.replicas_info_table["b"];
        assert_eq!(b.master_broker_id, Some(2));
        assert_eq!(b.in_sync_replicas.iter().map(|r| r.broker_id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(b.not_in_sync_replicas.len(), 2);
        assert!(!info.replicas_info_table.contains_key("unknown"));
    }

    // SIGKILL the controller leader: the others elect a new one; the state survives and
    // the live master is kept.
    let killed = all.iter().position(|a| *a == l).expect("leader is a member");
    if let Some(d) = members[killed].as_mut() {
        d.kill();
    }
    let killed_at = Instant::now();
    members[killed] = None;
    let rest: Vec<&str> = all.iter().copied().filter(|a| *a != l).collect();
    beat(&rest, &[(2, 100), (3, 500)]);
    let nl = leader(&rest);
    assert_ne!(nl, l);
    eprintln!("figure: controller leader SIGKILL -> agreed new leader: {:?}", killed_at.elapsed());
    let h = until_master(&rest, &[(2, 100), (3, 500)], "state on the new leader", |h| {
        h.master_broker_id.is_some()
    });
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(2), Some(2)), "no needless change");

    // The killed member restarts from its store and catches up.
    let d = q.start(killed);
    let page_addr = metrics_addr(&d);
    members[killed] = Some(d);
    let deadline = Instant::now() + LIMIT;
    loop {
        beat(&all, &[(2, 100), (3, 500)]);
        let (_, page) = http_get(&page_addr, "/metrics");
        let samples = parse_prometheus(&page);
        let epoch =
            samples.iter().find(|s| s.name == "ramjet_controller_master_epoch").map(|s| s.value);
        if epoch == Some(2.0) {
            break;
        }
        assert!(Instant::now() < deadline, "restarted member did not catch up: {page}");
        std::thread::sleep(POLL);
    }

    // Every in-sync member silent: broker 3 (out of sync) is never elected; the group ends
    // without a master once the controller sees broker 2 silent.
    let h =
        until_master(&all, &[(3, 500)], "silent master dropped", |h| h.master_broker_id.is_none());
    assert_eq!(h.master_epoch, Some(2));
    for _ in 0..10 {
        beat(&all, &[(3, 500)]);
        let (_, h, _) = replica_info(&leader(&all), SerializeType::Json);
        assert_ne!(h.master_broker_id, Some(3), "an out-of-sync replica was elected");
        std::thread::sleep(POLL);
    }
    // Broker 2 returns: it is in the set, so it leads again with a new epoch.
    let h = until_master(&all, &[(2, 100), (3, 500)], "in-sync broker 2 back", |h| {
        h.master_broker_id.is_some()
    });
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(2), Some(3)));
}

// Goal: a one-member quorum works, and `enableElectUncleanMaster` lets an out-of-sync
// replica lead when no in-sync one is alive. Method: one member; two fake brokers; broker 1
// is master alone in the set; it falls silent while broker 2 heartbeats.
#[test]
fn single_member_quorum_elects_unclean_when_allowed() {
    let q = Quorum::new(1, true);
    let _d = q.start(0);
    let all = [q.addrs[0].as_str()];
    let l = leader(&all);
    join(&l, 1);
    join(&l, 2);
    let h = until_master(&all, &[(1, 10)], "first master", |h| h.master_broker_id.is_some());
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(1), Some(1)));
    let h = until_master(&all, &[(2, 5)], "unclean election", |h| h.master_broker_id == Some(2));
    assert_eq!(h.master_epoch, Some(2));
    let (_, _, set) = replica_info(&l, SerializeType::RocketMq);
    assert_eq!(set.sync_state_set, vec![2]);
}
