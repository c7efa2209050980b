//! Crash test: SIGKILL the real broker at random moments under sync flush and prove that
//! every acknowledged message survives, byte for byte, and that the log always opens.
//!
//! Goal: an acknowledgement under `SYNC_FLUSH` means the record was written and
//! `fdatasync`ed, so no SIGKILL may lose it, tear it or change its queue offset, and the
//! store must always reopen (recovery truncates the half-written tail the kill left).
//!
//! Method (sled's `test_crash_recovery.rs`, TigerBeetle's vortex): one broker process with
//! sync flush and 1 MiB segments (so kills also land around segment rolls). Each round:
//! start the broker on the same store (a failure to open fails the test with its log),
//! check every message acknowledged in earlier rounds, then run producers with several
//! sends in flight on every queue; after the first acknowledgement wait a seeded random
//! delay and SIGKILL the broker while sends are in flight. Acknowledged sends (SEND_OK)
//! are recorded as (queue, queue offset, body, property). A last start checks everything
//! once more. The seed is printed; `RAMJET_CRASH_SEED` replays it and
//! `RAMJET_CRASH_ROUNDS` changes the number of rounds.
//!
//! A SIGKILL keeps the page cache, so this does not model a power cut; the storage
//! crate's fault-injecting I/O seam covers lost unsynced writes and torn sectors.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ramjet_client::{
    Admin, Client, ClientConfig, Message, MessageQueue, Producer, PullConsumer, PullStatus,
    SendStatus,
};
use ramjet_tests::{run_glommio, store_dir, BrokerOptions, Daemon};

const TOPIC: &str = "crash-orders";
const QUEUES: i32 = 4;
const ROUNDS_DEFAULT: u64 = 20;
/// Sends in flight at once (one task each).
const SENDERS: usize = 6;
/// The kill comes this long (at most) after the first acknowledgement of a round.
const KILL_DELAY_MS_MAX: u64 = 400;
/// The property that carries each message's id.
const ID_PROPERTY: &str = "CRASH_ID";
/// Messages one round sends at most (bounds a round if a kill is slow to land).
const SENDS_PER_ROUND_MAX: u64 = 50_000;

/// One acknowledged send.
#[derive(Debug, Clone)]
struct Acked {
    queue_id: i32,
    queue_offset: i64,
    id: u64,
    body: Bytes,
}

/// xorshift64*: a small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn client(namesrv: &str) -> Client {
    let mut config = ClientConfig::new(namesrv).expect("client config");
    // A send to a killed broker fails at once (connection closed); this bounds the rest.
    config.request_timeout = Duration::from_secs(5);
    Client::new(config)
}

/// Body of message `id`: self-describing prefix, then binary bytes of a size that varies
/// from a few bytes to about 2 KiB, derived from the id alone.
fn body(id: u64) -> Bytes {
    let mut b = format!("crash-{id}-").into_bytes();
    let len = (id.wrapping_mul(2_654_435_761) % 2048) as usize;
    b.extend((0..len).map(|k| (k as u64 ^ id).wrapping_mul(31) as u8));
    Bytes::from(b)
}

/// Waits (bounded) until the NameServer routes the topic with all its write queues.
async fn wait_for_route(producer: &Producer) -> Vec<MessageQueue> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        producer.client().invalidate_route(TOPIC);
        if let Ok(queues) = producer.write_queues(TOPIC).await {
            if queues.len() == QUEUES as usize {
                return queues;
            }
        }
        assert!(Instant::now() < deadline, "route of {TOPIC} never appeared");
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends from `SENDERS` tasks until a send fails (the kill) or `stop` is set; returns
/// what was acknowledged. Ids start at `first_id`. Signals `started` at the first ack.
async fn produce(
    namesrv: String,
    first_id: u64,
    stop: Arc<AtomicBool>,
    started: mpsc::Sender<()>,
) -> Vec<Acked> {
    let producer = Rc::new(Producer::new(client(&namesrv), "crash-pg"));
    let queues = Rc::new(wait_for_route(&producer).await);
    let next_id = Rc::new(std::cell::Cell::new(first_id));
    let acked = Rc::new(std::cell::RefCell::new(Vec::new()));
    let started = Rc::new(std::cell::RefCell::new(Some(started)));
    let mut tasks = Vec::new();
    for _ in 0..SENDERS {
        let (producer, queues, next_id, acked, started, stop) = (
            producer.clone(),
            queues.clone(),
            next_id.clone(),
            acked.clone(),
            started.clone(),
            stop.clone(),
        );
        tasks.push(glommio::spawn_local(async move {
            while !stop.load(Ordering::Relaxed) && next_id.get() < first_id + SENDS_PER_ROUND_MAX {
                let id = next_id.get();
                next_id.set(id + 1);
                let queue = &queues[(id % QUEUES as u64) as usize];
                let mut message = Message::new(TOPIC, body(id)).with_keys(format!("k{id}"));
                message.set_property(ID_PROPERTY, id.to_string());
                match producer.send_to_queue(queue, message).await {
                    Ok(result) if result.status == SendStatus::Ok => {
                        acked.borrow_mut().push(Acked {
                            queue_id: queue.queue_id,
                            queue_offset: result.queue_offset,
                            id,
                            body: body(id),
                        });
                        if let Some(tx) = started.borrow_mut().take() {
                            let _ = tx.send(());
                        }
                    }
                    // Not acknowledged as stored and flushed: not recorded.
                    Ok(_) => {}
                    // The broker is gone: this sender is done.
                    Err(_) => return,
                }
            }
        }));
    }
    for task in tasks {
        task.await;
    }
    let acked = acked.borrow().clone();
    acked
}

/// Reads every queue from offset 0 and checks each acknowledged message: present at its
/// queue offset, body byte-identical, id property intact.
fn verify(broker: &Daemon, acked: &[Acked], context: &str) {
    let namesrv = broker.namesrv_addr.clone();
    let mut want: BTreeMap<i32, Vec<Acked>> = BTreeMap::new();
    for a in acked {
        want.entry(a.queue_id).or_default().push(a.clone());
    }
    let context = context.to_string();
    run_glommio(move || async move {
        let producer = Producer::new(client(&namesrv), "crash-pg");
        let consumer = PullConsumer::new(client(&namesrv), "crash-cg");
        for queue in wait_for_route(&producer).await {
            let mut stored = BTreeMap::new();
            let mut offset = 0;
            for _ in 0..100_000 {
                let r = consumer.pull(&queue, offset, 32, None, None).await.expect("pull");
                match r.status {
                    PullStatus::Found => {
                        for m in r.messages {
                            assert_eq!(m.queue_offset, offset, "{context}: offsets are dense");
                            offset += 1;
                            stored.insert(m.queue_offset, m);
                        }
                        assert_eq!(offset, r.next_begin_offset, "{context}");
                    }
                    PullStatus::NoNewMsg => break,
                    other => panic!("{context}: pull status {other:?} at offset {offset}"),
                }
            }
            for a in want.get(&queue.queue_id).map(Vec::as_slice).unwrap_or_default() {
                let Some(m) = stored.get(&a.queue_offset) else {
                    panic!(
                        "{context}: acknowledged message {} lost: queue {} offset {} \
                         (queue holds {} messages)",
                        a.id,
                        a.queue_id,
                        a.queue_offset,
                        stored.len()
                    );
                };
                assert!(m.body == a.body, "{context}: message {} body differs", a.id);
                let id = a.id.to_string();
                assert_eq!(m.property(ID_PROPERTY).as_deref(), Some(id.as_str()), "{context}");
                assert_eq!(m.property("KEYS"), Some(format!("k{}", a.id)), "{context}");
            }
        }
    });
}

// Goal and method: see the module comment.
#[test]
fn acknowledged_messages_survive_sigkill_under_sync_flush() {
    let seed = env_u64("RAMJET_CRASH_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        now.map_or(1, |d| d.as_nanos() as u64)
    });
    let rounds = env_u64("RAMJET_CRASH_ROUNDS").unwrap_or(ROUNDS_DEFAULT);
    eprintln!("crash test: seed {seed}, {rounds} rounds (RAMJET_CRASH_SEED={seed} replays)");
    let mut rng = Rng::new(seed);
    let dir = store_dir();
    let mut options = BrokerOptions::new(dir.path());
    options.flush_disk_type = "SYNC_FLUSH";
    options.segment_size = Some(1 << 20);
    let mut acked: Vec<Acked> = Vec::new();
    let started_at = Instant::now();
    for round in 0..rounds {
        let context = format!("seed {seed} round {round}");
        let mut broker = Daemon::broker(&options);
        if round > 0 {
            verify(&broker, &acked, &context);
        } else {
            let (namesrv, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
            run_glommio(move || async move {
                let admin = Admin::new(client(&namesrv));
                admin.create_topic(&addr, TOPIC, QUEUES, QUEUES).await.expect("create topic");
            });
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = mpsc::channel();
        let load = {
            let (namesrv, stop) = (broker.namesrv_addr.clone(), stop.clone());
            let first_id = round * SENDS_PER_ROUND_MAX;
            std::thread::spawn(move || {
                run_glommio(move || produce(namesrv, first_id, stop, started_tx))
            })
        };
        let first_ack = started_rx.recv_timeout(Duration::from_secs(60));
        assert!(first_ack.is_ok(), "{context}: no send was acknowledged\n{}", broker.log_text());
        let delay = Duration::from_millis(rng.below(KILL_DELAY_MS_MAX + 1));
        std::thread::sleep(delay);
        broker.kill();
        stop.store(true, Ordering::Relaxed);
        let new = load.join().expect("producer thread");
        eprintln!(
            "{context}: killed {} ms after the first ack; {} acknowledged this round, {} in all",
            delay.as_millis(),
            new.len(),
            acked.len() + new.len()
        );
        acked.extend(new);
    }
    let broker = Daemon::broker(&options);
    verify(&broker, &acked, &format!("seed {seed} final"));
    eprintln!(
        "crash test: seed {seed}: {} acknowledged messages intact after {rounds} kills in {:?}",
        acked.len(),
        started_at.elapsed()
    );
}
