//! Master/slave replication with real processes: a standalone NameServer, a master and a
//! slave of broker group `rb`, 2 shards each, 256 KiB segments (so logs roll).
//!
//! Every wait is a bounded loop on a condition (a send's status, a slave's offsets, a
//! metadata listing); nothing asserts how long anything took. Every process is a
//! `Daemon`, killed when dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::protocol::{self, PullArgs};
use ramjet_client::{
    Admin, Client, ClientConfig, ClientError, Message, MessageQueue, Producer, PullConsumer,
    PullStatus, SendStatus, StoredMessage,
};
use ramjet_proto::codes::{request, response};
use ramjet_proto::controller::EpochEntryCache;
use ramjet_proto::{Header, SerializeType};
use ramjet_server::replication::wire::{self, LogState};
use ramjet_tests::{commit_log_contents, ha_addr, run_glommio, store_dir, BrokerOptions, Daemon};

const TOPIC: &str = "repl-orders";
const QUEUES: i32 = 4;
const SEGMENT_BYTES: u64 = 256 * 1024;
const WAIT: Duration = Duration::from_secs(90);

fn client(namesrv: &str) -> Client {
    Client::new(ClientConfig::new(namesrv).expect("client config"))
}

fn master_options(dir: &Path, namesrv: &str, role: &str, conf: Option<&Path>) -> BrokerOptions {
    let mut o = BrokerOptions::new(dir);
    o.namesrv_addr = Some(namesrv.to_string());
    o.segment_size = Some(SEGMENT_BYTES);
    o.broker_name = Some("rb".into());
    o.extra = vec!["--cluster".into(), "RC".into(), "--broker-role".into(), role.into()];
    if let Some(conf) = conf {
        o.extra.extend(["-c".to_string(), conf.display().to_string()]);
    }
    o
}

/// A slave of `rb`; without `ha`, it finds its master through the NameServer.
fn slave_options(dir: &Path, namesrv: &str, ha: Option<String>) -> BrokerOptions {
    let mut o = master_options(dir, namesrv, "SLAVE", None);
    o.extra.extend(["--broker-id".to_string(), "1".to_string()]);
    if let Some(ha) = ha {
        o.extra.extend(["--ha-master-address".to_string(), ha]);
    }
    o
}

fn body(task: usize, index: usize) -> Bytes {
    let mut b = format!("t{task}-m{index}-").into_bytes();
    b.extend((0..(index * 53 + task * 7) % 1500).map(|k| (k as u8).wrapping_mul(17)));
    Bytes::from(b)
}

async fn deadline_sleep(deadline: Instant, what: &str) {
    assert!(Instant::now() < deadline, "timed out waiting for {what}");
    glommio::timer::sleep(Duration::from_millis(50)).await;
}

async fn create_topic_and_route(namesrv: &str, master: &str) -> Vec<MessageQueue> {
    create_and_route(namesrv, master, TOPIC, QUEUES).await
}

async fn create_and_route(
    namesrv: &str,
    master: &str,
    topic: &str,
    queues: i32,
) -> Vec<MessageQueue> {
    let admin = Admin::new(client(namesrv));
    admin.create_topic(master, topic, queues, queues).await.expect("create topic");
    let producer = Producer::new(client(namesrv), "route-probe");
    let deadline = Instant::now() + WAIT;
    loop {
        producer.client().invalidate_route(topic);
        if let Ok(q) = producer.write_queues(topic).await {
            if q.len() == queues as usize {
                return q;
            }
        }
        deadline_sleep(deadline, "the topic's route").await;
    }
}

/// Sends until a send is acknowledged with SEND_OK (for SYNC_MASTER: a slave is in sync).
async fn send_until_ok(producer: &Producer, queue: &MessageQueue) {
    let deadline = Instant::now() + WAIT;
    loop {
        let msg = Message::new(TOPIC, Bytes::from_static(b"probe"));
        if let Ok(r) = producer.send_to_queue(queue, msg).await {
            if r.status == SendStatus::Ok {
                return;
            }
        }
        deadline_sleep(deadline, "a send acknowledged by a slave").await;
    }
}

/// One pull from the broker at `addr` (not through the route: the master may be gone).
async fn pull_at(
    client: &Client,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    offset: i64,
) -> Result<ramjet_client::PullResult, ClientError> {
    let args = PullArgs {
        consumer_group: group,
        queue,
        offset,
        max_nums: 32,
        suspend_timeout_ms: None,
        subscription: None,
        commit_offset: None,
        sub_version: 0,
    };
    let header = protocol::pull_request(&args, SerializeType::RocketMq);
    protocol::parse_pull_response(client.invoke(addr, header, &[]).await?, &[])
}

/// Every message of `queue` at `addr` from `from` on, waiting (bounded) while the broker
/// does not know the topic yet (a slave gets it from its master's metadata).
async fn read_from(
    client: &Client,
    addr: &str,
    group: &str,
    queue: &MessageQueue,
    from: i64,
) -> Vec<StoredMessage> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        match pull_at(client, addr, group, queue, offset).await {
            Ok(r) if r.status == PullStatus::Found => {
                for m in r.messages {
                    assert_eq!(m.queue_offset, offset, "dense queue offsets");
                    offset += 1;
                    out.push(m);
                }
            }
            Ok(r) if r.status == PullStatus::NoNewMsg => return out,
            Ok(r) => panic!("pull from {addr} at {offset}: {:?}", r.status),
            Err(ClientError::Broker { code, .. }) if code == response::TOPIC_NOT_EXIST => {
                deadline_sleep(deadline, "the topic on the slave").await
            }
            Err(e) => panic!("pull from {addr}: {e}"),
        }
    }
}

async fn max_offset_at(client: &Client, addr: &str, queue: &MessageQueue) -> i64 {
    let header = protocol::max_offset_request(queue, SerializeType::RocketMq);
    let frame = client.invoke(addr, header, &[]).await.expect("max offset");
    protocol::parse_offset(frame, request::GET_MAX_OFFSET).expect("max offset")
}

/// Waits (bounded) until the slave's queues end where the master's do.
async fn wait_caught_up(client: &Client, master: &str, slave: &str, queues: &[MessageQueue]) {
    let deadline = Instant::now() + WAIT;
    for q in queues {
        let want = max_offset_at(client, master, q).await;
        while max_offset_at(client, slave, q).await != want {
            deadline_sleep(deadline, "the slave to catch up").await;
        }
    }
}

/// The logs agree on every byte both hold: each slave segment and the master's are
/// prefixes one of the other. A slave may run past a SIGKILLed master by bytes the master
/// had not written yet (streamed while its write was in flight, never acknowledged), so
/// only segments past the master's last one of a log may be the slave's alone.
fn assert_logs_agree(master: &Path, slave: &Path) {
    let masters: BTreeMap<String, Vec<u8>> = commit_log_contents(master).into_iter().collect();
    let slaves = commit_log_contents(slave);
    assert!(slaves.iter().any(|(_, b)| !b.is_empty()), "the slave holds data");
    for (name, bytes) in slaves {
        let Some(theirs) = masters.get(&name) else {
            let log = name.split('/').next().unwrap_or_default();
            let later = masters.keys().filter(|m| m.starts_with(log)).all(|m| *m < name);
            assert!(later, "master lacks {name}, which is not past its end");
            continue;
        };
        let common = theirs.len().min(bytes.len());
        assert!(theirs[..common] == bytes[..common], "segment {name} differs");
    }
}

fn assert_identical_logs(master: &Path, slave: &Path) {
    let (m, s) = (commit_log_contents(master), commit_log_contents(slave));
    assert!(m.len() > 2, "several segments: {}", m.len());
    assert_eq!(m.len(), s.len(), "segment count");
    for ((mn, mb), (sn, sb)) in m.iter().zip(&s) {
        assert_eq!(mn, sn);
        assert!(mb == sb, "segment {mn} differs ({} vs {} bytes used)", mb.len(), sb.len());
    }
}

type Acked = Arc<Mutex<Vec<(i32, i64, Bytes)>>>;

/// Sends from 8 concurrent tasks until `stop` or the first error; records SEND_OK acks.
fn produce_run(namesrv: String, queues: Vec<MessageQueue>, acked: Acked, stop: Arc<AtomicBool>) {
    run_glommio(move || async move {
        let producer = Rc::new(Producer::new(client(&namesrv), "repl-producer"));
        let mut tasks = Vec::new();
        for task in 0..8usize {
            let (producer, queue) = (producer.clone(), queues[task % queues.len()].clone());
            let (acked, stop) = (acked.clone(), stop.clone());
            tasks.push(glommio::spawn_local(async move {
                for index in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let b = body(task, index);
                    match producer.send_to_queue(&queue, Message::new(TOPIC, b.clone())).await {
                        Ok(r) if r.status == SendStatus::Ok => {
                            acked.lock().expect("acked").push((queue.queue_id, r.queue_offset, b))
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    });
}

// Goal: under SYNC_MASTER every acknowledged message is on the slave, byte-identical,
// when the master dies mid-run; consumers read it there while the master is down; when
// the master returns, replication resumes from the slave's end with no gap and no
// duplicate bytes.
// Method: the slave finds its master through the NameServer. 8 concurrent producers send
// until 400 SEND_OK acks, then SIGKILL the master. Read every queue from the slave and
// find every ack at its queue offset with its body; the logs agree on every byte both hold
// (the slave may hold more: bytes streamed while the master's write was in flight). Restart
// the master and send 200 to it alone, then restart the slave (it cuts what the killed run
// never wrote, though the new run's logs are longer), send more, wait for the slave, stop
// both: the logs are equal.
#[test]
fn sync_master_killed_mid_run_leaves_every_acked_message_on_the_slave() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    let master_opts = master_options(master_dir.path(), &ns, "SYNC_MASTER", None);
    let slave_opts = slave_options(slave_dir.path(), &ns, None);
    let mut master = Daemon::broker(&master_opts);
    let mut slave = Daemon::broker(&slave_opts);
    let (master_addr, slave_addr) = (master.broker_addr.clone(), slave.broker_addr.clone());
    let queues = {
        let (ns, m, s) = (ns.clone(), master_addr.clone(), slave_addr.clone());
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            send_until_ok(&producer, &queues[0]).await;
            read_from(&client(&ns), &s, "probe", &queues[0], 0).await; // the topic is there
            queues
        })
    };
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let run = {
        let (ns, queues, acked, stop) = (ns.clone(), queues.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || produce_run(ns, queues, acked, stop))
    };
    let deadline = Instant::now() + WAIT;
    while acked.lock().expect("acked").len() < 400 {
        assert!(Instant::now() < deadline, "400 acks never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    master.kill();
    stop.store(true, Ordering::Relaxed);
    run.join().expect("producers");
    let acked = acked.lock().expect("acked").clone();
    let (ns2, s2, queues2) = (ns.clone(), slave_addr.clone(), queues.clone());
    run_glommio(move || async move {
        let c = client(&ns2);
        let mut on_slave: BTreeMap<(i32, i64), Bytes> = BTreeMap::new();
        for q in &queues2 {
            for m in read_from(&c, &s2, "reader", q, 0).await {
                on_slave.insert((q.queue_id, m.queue_offset), m.body.clone());
            }
        }
        for (queue_id, offset, body) in &acked {
            let got = on_slave.get(&(*queue_id, *offset));
            assert_eq!(got, Some(body), "acked message {queue_id}:{offset} on the slave");
        }
    });
    slave.stop();
    assert_logs_agree(master_dir.path(), slave_dir.path());
    let mut master = Daemon::broker(&master_opts);
    // The new run of the master takes sends before the slave returns (stored, answered
    // SLAVE_NOT_AVAILABLE): its logs pass the slave's ends, at positions where the slave
    // may hold bytes the killed run never wrote; the slave must cut those, not follow on.
    {
        let (ns, queues) = (ns.clone(), queues.clone());
        run_glommio(move || async move {
            let producer = Producer::new(client(&ns), "repl-producer");
            for i in 0..200 {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, body(98, i))).await;
                assert_eq!(r.expect("stored").status, SendStatus::SlaveNotAvailable);
            }
        });
    }
    let mut slave = Daemon::broker(&slave_opts);
    let (m, s) = (master.broker_addr.clone(), slave.broker_addr.clone());
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns), "repl-producer");
        send_until_ok(&producer, &queues[1]).await;
        for i in 0..200 {
            let q = &queues[i % queues.len()];
            let r = producer.send_to_queue(q, Message::new(TOPIC, body(99, i))).await;
            assert_eq!(r.expect("send after the restart").status, SendStatus::Ok);
        }
        wait_caught_up(&client(&ns), &m, &s, &queues).await;
    });
    master.stop();
    slave.stop();
    assert_identical_logs(master_dir.path(), slave_dir.path());
    drop(namesrv);
}

// Goal: a slave killed and restarted catches up from its own end, with no gap and no
// duplicate bytes; an ASYNC_MASTER acknowledges without it.
// Method: the slave is given the master's HA address. Send 300, wait for the slave,
// SIGKILL it, send 300 more (all acknowledged at once), restart it on its store, wait for
// it, stop both: the logs are equal segment by segment.
#[test]
fn a_restarted_slave_resumes_from_its_own_end() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    let mut master = Daemon::broker(&master_options(master_dir.path(), &ns, "ASYNC_MASTER", None));
    let slave_opts = slave_options(slave_dir.path(), &ns, Some(ha_addr(&master)));
    let mut slave = Daemon::broker(&slave_opts);
    let (m, s) = (master.broker_addr.clone(), slave.broker_addr.clone());
    let send = |ns: String, m: String, s: String, from: usize| {
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            for i in from..from + 300 {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, body(1, i))).await;
                assert_eq!(r.expect("async master send").status, SendStatus::Ok);
            }
            if !s.is_empty() {
                wait_caught_up(&client(&ns), &m, &s, &queues).await;
            }
        })
    };
    send(ns.clone(), m.clone(), s.clone(), 0);
    slave.kill();
    send(ns.clone(), m.clone(), String::new(), 300);
    let mut slave = Daemon::broker(&slave_opts);
    let s = slave.broker_addr.clone();
    send(ns.clone(), m, s, 600);
    master.stop();
    slave.stop();
    assert_identical_logs(master_dir.path(), slave_dir.path());
    drop(namesrv);
}

// Goal: SYNC_MASTER reports a stopped slave with FLUSH_SLAVE_TIMEOUT within its
// configured timeout, succeeds again once the slave continues, and reports a dead slave
// with SLAVE_NOT_AVAILABLE.
// Method: syncFlushTimeout=1000 (below the client's 3 s request timeout). SIGSTOP the
// slave: the next send is stored and answered FLUSH_SLAVE_TIMEOUT. SIGCONT: sends are
// SEND_OK again. SIGKILL: sends become SLAVE_NOT_AVAILABLE.
#[test]
fn a_stopped_slave_times_sync_sends_out_and_a_dead_one_is_not_available() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    let conf = master_dir.path().join("broker.conf");
    std::fs::write(&conf, "syncFlushTimeout=1000\n").expect("broker.conf");
    let master = Daemon::broker(&master_options(
        &master_dir.path().join("store"),
        &ns,
        "SYNC_MASTER",
        Some(&conf),
    ));
    let mut slave = Daemon::broker(&slave_options(slave_dir.path(), &ns, None));
    let m = master.broker_addr.clone();
    let queues = {
        let (ns, m) = (ns.clone(), m.clone());
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            send_until_ok(&Producer::new(client(&ns), "repl-producer"), &queues[0]).await;
            queues
        })
    };
    slave.signal("STOP");
    let status = {
        let (ns, q) = (ns.clone(), queues[0].clone());
        run_glommio(move || async move {
            let producer = Producer::new(client(&ns), "repl-producer");
            let r = producer.send_to_queue(&q, Message::new(TOPIC, body(2, 0))).await;
            r.expect("stored").status
        })
    };
    slave.signal("CONT");
    assert_eq!(status, SendStatus::FlushSlaveTimeout);
    {
        let (ns, q) = (ns.clone(), queues[1].clone());
        run_glommio(move || async move {
            send_until_ok(&Producer::new(client(&ns), "repl-producer"), &q).await;
        });
    }
    slave.kill();
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns), "repl-producer");
        let deadline = Instant::now() + WAIT;
        loop {
            let r = producer.send_to_queue(&queues[2], Message::new(TOPIC, body(3, 0))).await;
            if r.expect("stored").status == SendStatus::SlaveNotAvailable {
                return;
            }
            deadline_sleep(deadline, "SLAVE_NOT_AVAILABLE").await;
        }
    });
    drop(master);
    drop(namesrv);
}

async fn admin_call(client: &Client, addr: &str, code: i32, body: &[u8]) -> Bytes {
    let frame = client.invoke(addr, Header::request(code, 0, SerializeType::RocketMq), body).await;
    let frame = frame.expect("admin call");
    assert_eq!(frame.header.code, response::SUCCESS, "request {code}: {:?}", frame.header.remark);
    frame.body
}

// Goal: topics, consumer offsets, delay progress and subscription groups follow the
// master to the slave; slaves show in routes and cluster info; a consumer that moves to
// the slave when the master dies resumes at its committed offsets and skips nothing; the
// slave refuses sends.
// Method: SYNC_MASTER. Create a group, send 200 messages and one delayed message (level
// 1), consume half of each queue from the master and commit. Wait for the slave to list
// the topic, the group, the offsets and the delay progress. SIGKILL the master; read on
// from the slave from the committed offsets; together with what was read before, every
// acknowledged message is read exactly once, in order.
#[test]
fn consumers_move_to_the_slave_and_metadata_follows_the_master() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    let mut master = Daemon::broker(&master_options(master_dir.path(), &ns, "SYNC_MASTER", None));
    let slave = Daemon::broker(&slave_options(slave_dir.path(), &ns, None));
    let (m, s) = (master.broker_addr.clone(), slave.broker_addr.clone());
    let group = "repl-consumers";
    let (queues, sent, read) = {
        let (ns, m, s) = (ns.clone(), m.clone(), s.clone());
        run_glommio(move || async move {
            let c = client(&ns);
            let info = Admin::new(client(&ns)).cluster_info().await.expect("cluster info");
            let addrs = &info.broker_addr_table.get("rb").expect("group rb").broker_addrs;
            assert_eq!(addrs.get(&0), Some(&m), "master listed");
            assert_eq!(addrs.get(&1), Some(&s), "slave listed");
            let group_json = format!("{{\"groupName\":\"{group}\"}}");
            admin_call(&c, &m, request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, group_json.as_bytes())
                .await;
            let queues = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            send_until_ok(&producer, &queues[0]).await;
            // A delayed message (level 1, 1 s) on a topic of its own: its delivery moves
            // the delay progress that the slave must copy.
            let later = create_and_route(&ns, &m, "repl-later", 1).await;
            let mut delayed = Message::new("repl-later", Bytes::from_static(b"later"));
            delayed.set_property("DELAY", "1");
            producer.send_to_queue(&later[0], delayed).await.expect("delayed send");
            for i in 0..200 {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, body(4, i))).await;
                assert_eq!(r.expect("send").status, SendStatus::Ok);
            }
            let consumer = PullConsumer::new(client(&ns), group);
            let mut read: BTreeMap<i32, Vec<Bytes>> = BTreeMap::new();
            let mut sent: BTreeMap<i32, Vec<Bytes>> = BTreeMap::new();
            for q in &queues {
                let all = read_from(&c, &m, group, q, 0).await;
                sent.insert(q.queue_id, all.iter().map(|m| m.body.clone()).collect());
                let half = all.len() / 2;
                read.insert(q.queue_id, all[..half].iter().map(|m| m.body.clone()).collect());
                consumer.update_offset(q, half as i64).await.expect("commit");
            }
            wait_for_metadata(&c, &s, group, &queues, &read).await;
            let route = c.fetch_route(TOPIC).await.expect("route").expect("route data");
            let rb = route.broker_datas.iter().find(|b| b.broker_name == "rb").expect("rb");
            assert!(rb.broker_addrs.contains_key(&1), "the slave is in the route");
            (queues, sent, read)
        })
    };
    master.kill();
    run_glommio(move || async move {
        let c = client(&ns);
        for q in &queues {
            let header = protocol::query_offset_request(group, q, SerializeType::RocketMq);
            let frame = c.invoke(&s, header, &[]).await.expect("query offset on the slave");
            let committed = protocol::parse_query_offset(frame).expect("offset").expect("some");
            let mut got = read[&q.queue_id].clone();
            assert_eq!(committed, got.len() as i64);
            got.extend(read_from(&c, &s, group, q, committed).await.into_iter().map(|m| m.body));
            assert!(got == sent[&q.queue_id], "queue {} read exactly once, in order", q.queue_id);
        }
        let send = Header::request(request::SEND_MESSAGE_V2, 0, SerializeType::RocketMq);
        let frame = c.invoke(&s, send, b"x").await.expect("send to the slave");
        assert_eq!(frame.header.code, response::SERVICE_NOT_AVAILABLE);
    });
    drop(slave);
    drop(namesrv);
}

/// Waits (bounded) until the slave lists the topic, the group, the committed offsets and
/// the delay progress copied from the master.
async fn wait_for_metadata(
    c: &Client,
    slave: &str,
    group: &str,
    queues: &[MessageQueue],
    read: &BTreeMap<i32, Vec<Bytes>>,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let topics = admin_call(c, slave, request::GET_ALL_TOPIC_CONFIG, &[]).await;
        let groups = admin_call(c, slave, request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG, &[]).await;
        let delays = admin_call(c, slave, request::GET_ALL_DELAY_OFFSET, &[]).await;
        let delays: serde_json::Value = serde_json::from_slice(&delays).expect("delay offsets");
        let mut offsets_ok = true;
        for q in queues {
            let header = protocol::query_offset_request(group, q, SerializeType::RocketMq);
            let frame = c.invoke(slave, header, &[]).await.expect("query offset");
            let committed = protocol::parse_query_offset(frame).ok().flatten();
            offsets_ok &= committed == Some(read[&q.queue_id].len() as i64);
        }
        let topic_ok = String::from_utf8_lossy(&topics).contains(TOPIC);
        let group_ok = String::from_utf8_lossy(&groups).contains(group);
        let delay_ok = delays["offsetTable"]["1"].as_i64().is_some_and(|o| o >= 1);
        if topic_ok && group_ok && delay_ok && offsets_ok {
            return;
        }
        deadline_sleep(deadline, "metadata on the slave").await;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

// Goal: a slave whose log runs past its master's (the master came back without its
// tail) does not drop bytes it has acknowledged on its own: it refuses, says why, and
// keeps them; restarted by the operator with haTruncateAcknowledgedEnable=true it
// truncates to the master's end, says so, and then follows the master byte-identical.
// Method: send 500, wait for the slave, stop the master and keep a copy of its store;
// restart it, send 500 more, wait for the slave; stop the master and put the old copy
// back (it lost those 500); start it: the slave refuses and still holds all 1000.
// Restart the slave with the key: it truncates. Send 700 more, wait for the slave, stop
// both: the logs are equal.
#[test]
fn a_slave_past_its_restarted_master_truncates_and_follows_again() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir, backup_dir) = (store_dir(), store_dir(), store_dir());
    let store = master_dir.path().join("store");
    let master_opts = master_options(&store, &ns, "ASYNC_MASTER", None);
    let mut master = Daemon::broker(&master_opts);
    let mut slave = Daemon::broker(&slave_options(slave_dir.path(), &ns, None));
    let s = slave.broker_addr.clone();
    let send = |ns: String, m: String, s: String, from: usize, count: usize| {
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            for i in from..from + count {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, body(5, i))).await;
                assert_eq!(r.expect("send").status, SendStatus::Ok);
            }
            wait_caught_up(&client(&ns), &m, &s, &queues).await;
        })
    };
    send(ns.clone(), master.broker_addr.clone(), s.clone(), 0, 500);
    master.stop();
    let old = backup_dir.path().join("store");
    copy_dir(&store, &old);
    let mut master = Daemon::broker(&master_opts);
    send(ns.clone(), master.broker_addr.clone(), s.clone(), 500, 500);
    master.stop();
    std::fs::remove_dir_all(&store).expect("remove the newer store");
    copy_dir(&old, &store);
    let mut master = Daemon::broker(&master_opts);
    let deadline = Instant::now() + WAIT;
    while !slave.log_text().contains("not truncating without haTruncateAcknowledgedEnable") {
        assert!(Instant::now() < deadline, "the slave never refused to truncate");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!slave.log_text().contains("lost its tail); truncating"), "{}", slave.log_text());
    let held = run_glommio({
        let (ns, m, s) = (ns.clone(), master.broker_addr.clone(), s.clone());
        move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            let mut total = 0;
            for q in &queues {
                total += max_offset_at(&client(&ns), &s, q).await;
            }
            total
        }
    });
    assert_eq!(held, 1000, "the slave kept every message it had acknowledged");
    slave.stop();
    let conf = slave_dir.path().join("truncate.conf");
    std::fs::write(&conf, "haTruncateAcknowledgedEnable=true\n").expect("conf");
    let mut opts = slave_options(slave_dir.path(), &ns, None);
    opts.extra.extend(["-c".to_string(), conf.display().to_string()]);
    let mut slave = Daemon::broker(&opts);
    let s = slave.broker_addr.clone();
    let deadline = Instant::now() + WAIT;
    while !slave.log_text().contains("truncating") {
        assert!(Instant::now() < deadline, "the slave never said it truncates");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 700, not 500: the slave's queues must not already end where the master's will.
    send(ns.clone(), master.broker_addr.clone(), s.clone(), 1000, 700);
    master.stop();
    slave.stop();
    assert_identical_logs(&store, slave_dir.path());
    drop(namesrv);
}

/// Every message of `queue` at `addr`, without waiting for anything: the broker must know
/// the topic at once.
async fn read_known(client: &Client, addr: &str, queue: &MessageQueue) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..100_000 {
        match pull_at(client, addr, "inband-reader", queue, offset).await {
            Ok(r) if r.status == PullStatus::Found => {
                for m in r.messages {
                    assert_eq!(m.queue_offset, offset, "dense queue offsets");
                    offset += 1;
                    out.push(m);
                }
            }
            Ok(r) if r.status == PullStatus::NoNewMsg => return out,
            Ok(r) => panic!("pull from {addr} at {offset}: {:?}", r.status),
            Err(e) => panic!("pull from {addr} at {offset}: {e}"),
        }
    }
    panic!("queue {} never ended", queue.queue_id)
}

// Goal: metadata travels with the data: a topic and a subscription group created on a
// SYNC_MASTER reach the slave ahead of the first record, so when the master is SIGKILLed
// right after the last acknowledged send, the slave serves every acknowledged message of
// the new topic at its acknowledged offset at once (no "topic not exist", no waiting for
// the 3 s metadata sync, which cannot reach a dead master) and lists the group.
// Method: SYNC_MASTER and a slave that finds it through the NameServer; one SEND_OK on
// another topic (the slave is in sync); then create topic `inband-fresh` (8 queues) and a
// group, send 300 messages (every one SEND_OK) and SIGKILL the master. Read every queue
// from the slave without retrying; every acknowledged (queue, offset, body) is there.
#[test]
fn a_topic_created_just_before_a_master_dies_is_readable_on_the_slave() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir) = (store_dir(), store_dir());
    let mut master = Daemon::broker(&master_options(master_dir.path(), &ns, "SYNC_MASTER", None));
    let mut slave_opts = slave_options(slave_dir.path(), &ns, None);
    slave_opts.rust_log = Some("info".into()); // to see how the topic arrived
    let mut slave = Daemon::broker(&slave_opts);
    let (m, s) = (master.broker_addr.clone(), slave.broker_addr.clone());
    let (queues, acked) = {
        let ns = ns.clone();
        run_glommio(move || async move {
            let warm = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            send_until_ok(&producer, &warm[0]).await;
            let c = client(&ns);
            admin_call(
                &c,
                &m,
                request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                br#"{"groupName":"inband-group"}"#,
            )
            .await;
            let queues = create_and_route(&ns, &m, "inband-fresh", 8).await;
            let mut acked = Vec::new();
            for i in 0..300 {
                let q = &queues[i % queues.len()];
                let b = body(7, i);
                let r = producer.send_to_queue(q, Message::new("inband-fresh", b.clone())).await;
                let r = r.expect("send");
                assert_eq!(r.status, SendStatus::Ok, "send {i}");
                acked.push((q.queue_id, r.queue_offset, b));
            }
            (queues, acked)
        })
    };
    master.kill();
    run_glommio(move || async move {
        let c = client(&ns);
        let mut on_slave: BTreeMap<(i32, i64), Bytes> = BTreeMap::new();
        for q in &queues {
            for m in read_known(&c, &s, q).await {
                on_slave.insert((q.queue_id, m.queue_offset), m.body.clone());
            }
        }
        for (queue_id, offset, body) in &acked {
            let got = on_slave.get(&(*queue_id, *offset));
            assert_eq!(got, Some(body), "acked message {queue_id}:{offset} on the slave");
        }
        let groups = admin_call(&c, &s, request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG, &[]).await;
        assert!(String::from_utf8_lossy(&groups).contains("inband-group"), "the group followed");
    });
    let log = slave.log_text();
    assert!(log.contains("topics follow the master (in-band)"), "{log}");
    slave.stop();
    drop(namesrv);
}

// ---------------------------------------------------------------------------------------
// Authentication (haAuthSecret) and what a hostile slave can do.

/// Connects to an HA port as a raw peer, writes `frames`, and reads what comes back until
/// the master closes or `window` passes: the frames, and how many bytes arrived.
fn raw_ha(addr: &str, frames: &[wire::Message], window: Duration) -> (Vec<wire::Message>, usize) {
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(addr).expect("connect to the HA port");
    for f in frames {
        sock.write_all(&wire::encode(f)).expect("write");
    }
    sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let (mut buf, mut total, mut chunk) = (bytes::BytesMut::new(), 0, [0u8; 65536]);
    let deadline = Instant::now() + window;
    while Instant::now() < deadline {
        match sock.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let mut out = Vec::new();
    while let Ok(Some(m)) = wire::decode(&mut buf) {
        out.push(m);
    }
    (out, total)
}

fn hello(logs: usize, nonce: Option<[u8; wire::NONCE_BYTES]>) -> wire::Message {
    wire::Message::Hello {
        version: if nonce.is_some() { 2 } else { 1 },
        segment_size_bytes: SEGMENT_BYTES,
        logs: vec![LogState::default(); logs],
        nonce,
        broker_addr: "127.0.0.1:1".into(),
    }
}

/// The master's log count, from its refusal of a HELLO with none.
fn master_log_count(ha: &str) -> usize {
    let (frames, _) = raw_ha(ha, &[hello(0, None)], Duration::from_secs(5));
    let reason = frames
        .iter()
        .find_map(|f| match f {
            wire::Message::Error { reason } => Some(reason.clone()),
            _ => None,
        })
        .expect("an ERROR for a HELLO with no logs");
    let count = reason.rsplit(' ').next().and_then(|w| w.parse().ok());
    count.unwrap_or_else(|| panic!("no log count in {reason:?}"))
}

fn total_held(ns: &str, master: &str, broker: &str) -> i64 {
    let (ns, m, b) = (ns.to_string(), master.to_string(), broker.to_string());
    run_glommio(move || async move {
        let queues = create_topic_and_route(&ns, &m).await;
        let mut total = 0;
        for q in &queues {
            total += max_offset_at(&client(&ns), &b, q).await;
        }
        total
    })
}

// Goal: with haAuthSecret on the master, nothing of its log reaches a peer that does not
// prove the secret: an anonymous HELLO (both versions), a forged AUTH, a slave without the
// secret and a slave with another one each get no WELCOME and no DATA; a slave with the
// secret replicates everything; a slave with a secret refuses a master without one.
#[test]
fn only_a_slave_holding_the_secret_receives_the_log() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let master_dir = store_dir();
    let conf = master_dir.path().join("broker.conf");
    std::fs::write(&conf, "haAuthSecret=right-secret\n").expect("broker.conf");
    let store = master_dir.path().join("store");
    let master = Daemon::broker(&master_options(&store, &ns, "ASYNC_MASTER", Some(&conf)));
    let m = master.broker_addr.clone();
    let ha = ha_addr(&master);
    {
        let (ns, m) = (ns.clone(), m.clone());
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            let producer = Producer::new(client(&ns), "repl-producer");
            for i in 0..200 {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, body(7, i))).await;
                assert_eq!(r.expect("send").status, SendStatus::Ok);
            }
        });
    }
    // Authentication comes before the log count is compared: any count will do.
    let logs = 2;
    let streamed = |frames: &[wire::Message]| {
        frames
            .iter()
            .any(|f| matches!(f, wire::Message::Welcome { .. } | wire::Message::Data { .. }))
    };
    // Anonymous, version 1 (no nonce): refused at once.
    let (frames, bytes) = raw_ha(&ha, &[hello(logs, None)], Duration::from_secs(3));
    assert!(!streamed(&frames) && bytes < 1024, "v1 HELLO got {bytes} bytes: {frames:?}");
    assert!(frames.iter().any(|f| matches!(f, wire::Message::Error { .. })), "{frames:?}");
    // Anonymous, version 2, then a forged AUTH: a CHALLENGE, then an ERROR; no log.
    let forged = wire::Message::Auth { proof: [0x5a; wire::PROOF_BYTES] };
    let (frames, bytes) =
        raw_ha(&ha, &[hello(logs, Some([1; wire::NONCE_BYTES])), forged], Duration::from_secs(3));
    assert!(!streamed(&frames) && bytes < 1024, "forged AUTH got {bytes} bytes: {frames:?}");
    assert!(matches!(frames.first(), Some(wire::Message::Challenge { .. })), "{frames:?}");
    // The master logs the refusal after writing the ERROR frame: wait for the line.
    assert!(
        master.wait_for_log("wrong haAuthSecret", Duration::from_secs(10)),
        "{}",
        master.log_text()
    );

    // Real slaves: without the secret, with another one.
    for (secret, says) in [
        (None, "the master requires haAuthSecret; this slave has none"),
        (Some("wrong-secret"), "the master does not prove haAuthSecret"),
    ] {
        let dir = store_dir();
        let mut opts = slave_options(dir.path(), &ns, None);
        if let Some(secret) = secret {
            let conf = dir.path().join("slave.conf");
            std::fs::write(&conf, format!("haAuthSecret={secret}\n")).expect("slave.conf");
            opts.extra.extend(["-c".to_string(), conf.display().to_string()]);
        }
        let mut slave = Daemon::broker(&opts);
        let deadline = Instant::now() + WAIT;
        while !slave.log_text().contains(says) {
            assert!(Instant::now() < deadline, "slave never said {says:?}:\n{}", slave.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(total_held(&ns, &m, &slave.broker_addr), 0, "{secret:?} received messages");
        slave.stop();
    }

    // With the secret: everything.
    let dir = store_dir();
    let slave_conf = dir.path().join("slave.conf");
    std::fs::write(&slave_conf, "haAuthSecret=right-secret\n").expect("slave.conf");
    let mut opts = slave_options(dir.path(), &ns, None);
    opts.extra.extend(["-c".to_string(), slave_conf.display().to_string()]);
    let mut slave = Daemon::broker(&opts);
    {
        let (ns, m, s) = (ns.clone(), m.clone(), slave.broker_addr.clone());
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            wait_caught_up(&client(&ns), &m, &s, &queues).await;
        });
    }
    assert_eq!(total_held(&ns, &m, &slave.broker_addr), 200);
    slave.stop();
    drop(master);

    // A slave with a secret refuses a master without one.
    let plain = store_dir();
    let master =
        Daemon::broker(&master_options(&plain.path().join("store"), &ns, "ASYNC_MASTER", None));
    let dir = store_dir();
    let mut opts = slave_options(dir.path(), &ns, Some(ha_addr(&master)));
    opts.extra.extend(["-c".to_string(), slave_conf.display().to_string()]);
    let slave = Daemon::broker(&opts);
    let says = "the master did not authenticate";
    let deadline = Instant::now() + WAIT;
    while !slave.log_text().contains(says) {
        assert!(Instant::now() < deadline, "slave never said {says:?}:\n{}", slave.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(slave);
    drop(master);
    drop(namesrv);
}

// Goal: a slave's ACK counts only up to what the master has sent it: a peer that ACKs
// u64::MAX on every log and never reads does not release a SYNC_MASTER send, which times
// out as FLUSH_SLAVE_TIMEOUT (without the clamp it would answer SEND_OK at once).
// Method: 64 MiB in the log before the fake slave connects, so the master's queue and
// the socket buffers (far less) fill before the new send's bytes could be sent to it.
#[test]
fn an_ack_past_what_was_sent_does_not_release_sync_sends() {
    use std::io::Write;
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let master_dir = store_dir();
    let conf = master_dir.path().join("broker.conf");
    std::fs::write(&conf, "syncFlushTimeout=1000\n").expect("broker.conf");
    let store = master_dir.path().join("store");
    let master = Daemon::broker(&master_options(&store, &ns, "SYNC_MASTER", Some(&conf)));
    let m = master.broker_addr.clone();
    let ha = ha_addr(&master);
    let queues = {
        let (ns, m) = (ns.clone(), m.clone());
        run_glommio(move || async move {
            let queues = create_topic_and_route(&ns, &m).await;
            // No slave yet: each is stored and answered SLAVE_NOT_AVAILABLE at once.
            let producer = Producer::new(client(&ns), "repl-producer");
            let chunk = Bytes::from(vec![7u8; 100 * 1024]);
            for i in 0..660 {
                let q = &queues[i % queues.len()];
                let r = producer.send_to_queue(q, Message::new(TOPIC, chunk.clone())).await;
                assert_eq!(r.expect("stored").status, SendStatus::SlaveNotAvailable);
            }
            queues
        })
    };
    let logs = master_log_count(&ha);
    // A fake slave: HELLO with empty logs, read the WELCOME, ACK u64::MAX everywhere.
    let mut sock = std::net::TcpStream::connect(&ha).expect("connect");
    sock.write_all(&wire::encode(&hello(logs, None))).expect("hello");
    let mut buf = bytes::BytesMut::new();
    let deadline = Instant::now() + WAIT;
    loop {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).expect("read WELCOME");
        assert!(n > 0 && Instant::now() < deadline, "no WELCOME");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(f) = wire::decode(&mut buf).expect("frame") {
            assert!(matches!(f, wire::Message::Welcome { .. }), "{f:?}");
            break;
        }
    }
    let lie = wire::Message::Ack { positions: (0..logs as u32).map(|l| (l, u64::MAX)).collect() };
    sock.write_all(&wire::encode(&lie)).expect("ack");
    let status = {
        let (ns, q) = (ns.clone(), queues[0].clone());
        run_glommio(move || async move {
            let producer = Producer::new(client(&ns), "repl-producer");
            let r = producer.send_to_queue(&q, Message::new(TOPIC, body(8, 0))).await;
            r.expect("stored").status
        })
    };
    assert_eq!(status, SendStatus::FlushSlaveTimeout, "a lying ACK released a SYNC_MASTER send");
    drop(sock);
    drop(master);
    drop(namesrv);
}

// ---------------------------------------------------------------------------------------
// The NameServer's stateVersion check (groundwork for failover).

fn register_versioned(addr: &str, id: i64, state_version: i64) -> (Header, Vec<u8>) {
    use ramjet_proto::header::{CommandHeader, RegisterBrokerRequestHeader};
    let mut h = Header::request(request::REGISTER_BROKER, 0, SerializeType::RocketMq);
    RegisterBrokerRequestHeader {
        broker_name: "sv".into(),
        broker_addr: addr.into(),
        cluster_name: "SvCluster".into(),
        ha_server_addr: format!("{addr}1"),
        broker_id: id,
        heartbeat_timeout_millis: None,
        compressed: Some(false),
        body_crc32: None,
    }
    .encode(&mut h.ext_fields);
    let body = format!(
        "{{\"topicConfigSerializeWrapper\":{{\"topicConfigTable\":{{\"sv-topic\":{{\
         \"topicName\":\"sv-topic\",\"readQueueNums\":4,\"writeQueueNums\":4,\"perm\":6}}}},\
         \"dataVersion\":{{\"stateVersion\":{state_version},\"timestamp\":1,\"counter\":1}}}},\
         \"filterServerList\":[]}}"
    );
    (h, body.into_bytes())
}

// Goal: as the reference's RouteInfoManager.registerBroker, a registration for a broker id
// held by another live address with a higher stateVersion is ignored (answered SUCCESS
// without a master, logged, the newcomer forgotten): a deposed master that comes back
// cannot take brokerId 0 from the one promoted after it; an equal or higher version can.
// Method: a standalone NameServer and raw REGISTER_BROKER frames; the route of the topic
// names the master after each registration.
#[test]
fn the_namesrv_refuses_a_master_with_a_lower_state_version() {
    use ramjet_client::{Connection, ConnectionOptions};
    let mut namesrv = Daemon::namesrv();
    let addr = namesrv.namesrv_addr.clone();
    run_glommio(move || async move {
        let timeout = Duration::from_secs(20);
        let conn = Connection::connect(&addr, ConnectionOptions::default()).await.expect("connect");
        let master_of = |route: ramjet_proto::Frame| {
            assert_eq!(route.header.code, response::SUCCESS, "{:?}", route.header.remark);
            let route: ramjet_proto::body::TopicRouteData =
                ramjet_proto::body::from_json(&route.body).expect("route");
            route.broker_datas[0].broker_addrs.get(&0).cloned()
        };
        let route = || {
            let mut h = Header::request(request::GET_ROUTEINFO_BY_TOPIC, 0, SerializeType::Json);
            h.ext_fields.insert("topic", "sv-topic");
            h
        };
        let steps = [
            ("127.0.0.1:20001", 0, 5, "127.0.0.1:20001"), // the promoted master, version 5
            ("127.0.0.1:20002", 0, 4, "127.0.0.1:20001"), // the deposed one: ignored
            ("127.0.0.1:20002", 0, 0, "127.0.0.1:20001"), // still ignored
            ("127.0.0.1:20003", 0, 5, "127.0.0.1:20003"), // an equal version takes it
            ("127.0.0.1:20004", 0, 6, "127.0.0.1:20004"), // a higher one too
        ];
        for (broker, id, version, master) in steps {
            let (h, body) = register_versioned(broker, id, version);
            let reply = conn.request(h, &body, timeout).await.expect("registered");
            assert_eq!(reply.header.code, response::SUCCESS);
            let got = master_of(conn.request(route(), b"", timeout).await.expect("route"));
            assert_eq!(got.as_deref(), Some(master), "after {broker} at version {version}");
        }
    });
    namesrv.stop();
}

/// `body(5, index)` with other bytes of the same length: a record at the same position
/// and of the same size as `body`'s, but different.
fn other_body(index: usize) -> Bytes {
    let mut b = body(5, index).to_vec();
    b[0] = b'u';
    Bytes::from(b)
}

/// Sends `count` messages from `from` on (with `other_body` when `other`), then waits for
/// `slave` when given.
fn send_range(ns: &str, master: &str, slave: Option<&str>, from: usize, count: usize, other: bool) {
    let (ns, m, s) = (ns.to_string(), master.to_string(), slave.map(str::to_string));
    run_glommio(move || async move {
        let queues = create_topic_and_route(&ns, &m).await;
        let producer = Producer::new(client(&ns), "repl-producer");
        for i in from..from + count {
            let q = &queues[i % queues.len()];
            let b = if other { other_body(i) } else { body(5, i) };
            let r = producer.send_to_queue(q, Message::new(TOPIC, b)).await;
            assert_eq!(r.expect("send").status, SendStatus::Ok);
        }
        if let Some(s) = s {
            wait_caught_up(&client(&ns), &m, &s, &queues).await;
        }
    });
}

// Goal (issue 15, epochs): a slave that holds bytes of a term its master never had cuts
// exactly them, even where its log ends where the master's does (positions coincide), so
// the run id of the master's last start cannot tell (the gap the run-id cut left).
// Method: term 1 (master + slave, 500 sends); keep a copy of the master's store; term 2
// (300 sends, the slave follows), stop both; put the copy back: term 3 sends 300 other
// messages of the same sizes (same positions); restart the master (term 4 begins where
// the slave's log ends) and start the slave (with haTruncateAcknowledgedEnable: the cut
// bytes were acknowledged by term 2). The slave cuts back to term 1's end, follows, and
// after 700 more sends both logs are byte-identical.
#[test]
fn a_slave_cuts_a_term_its_master_never_had_where_positions_coincide() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let (master_dir, slave_dir, backup_dir) = (store_dir(), store_dir(), store_dir());
    let store = master_dir.path().join("store");
    let master_opts = master_options(&store, &ns, "ASYNC_MASTER", None);
    let conf = slave_dir.path().join("truncate.conf");
    std::fs::write(&conf, "haTruncateAcknowledgedEnable=true\n").expect("conf");
    let mut slave_opts = slave_options(slave_dir.path(), &ns, None);
    slave_opts.extra.extend(["-c".to_string(), conf.display().to_string()]);
    let mut master = Daemon::broker(&master_opts);
    let mut slave = Daemon::broker(&slave_opts);
    send_range(&ns, &master.broker_addr, Some(&slave.broker_addr), 0, 500, false);
    master.stop();
    let old = backup_dir.path().join("store");
    copy_dir(&store, &old);
    let mut master = Daemon::broker(&master_opts);
    send_range(&ns, &master.broker_addr, Some(&slave.broker_addr), 500, 300, false);
    slave.stop();
    master.stop();
    std::fs::remove_dir_all(&store).expect("remove the newer store");
    copy_dir(&old, &store);
    let mut master = Daemon::broker(&master_opts);
    send_range(&ns, &master.broker_addr, None, 500, 300, true);
    master.stop();
    let mut master = Daemon::broker(&master_opts);
    let mut slave = Daemon::broker(&slave_opts);
    let deadline = Instant::now() + WAIT;
    while !slave.log_text().contains("epochs differ") {
        assert!(Instant::now() < deadline, "the slave never cut by epoch: {}", slave.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    send_range(&ns, &master.broker_addr, Some(&slave.broker_addr), 800, 700, false);
    // GET_BROKER_EPOCH_CACHE (1007): the slave holds its master's epochs.
    let (m, s, n) = (master.broker_addr.clone(), slave.broker_addr.clone(), ns.clone());
    let (ours, theirs) = run_glommio(move || async move {
        let c = client(&n);
        let get = |body: Bytes| {
            ramjet_proto::body::from_json::<EpochEntryCache>(&body).expect("EpochEntryCache")
        };
        let ours = get(admin_call(&c, &m, request::GET_BROKER_EPOCH_CACHE, &[]).await);
        let theirs = get(admin_call(&c, &s, request::GET_BROKER_EPOCH_CACHE, &[]).await);
        (ours, theirs)
    });
    assert_eq!(ours.epoch_list, theirs.epoch_list, "the slave adopted the master's epochs");
    assert!(ours.epoch_list.iter().any(|e| e.epoch >= 3), "{ours:?}");
    master.stop();
    slave.stop();
    assert_identical_logs(&store, slave_dir.path());
    drop(namesrv);
}
