//! Controller mode with real processes (issue 15): the broker's side.
//!
//! Every wait is a bounded loop on a condition; nothing asserts how long anything took.
//! Every process is a `Daemon`, killed when dropped. The controller here is a stand-in
//! in the test (a thread that answers BROKER_HEARTBEAT, 904, while told to), so the
//! broker's lease can be observed without a Raft quorum.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ramjet_client::{Admin, Client, ClientConfig, ClientError, Message, Producer, SendStatus};
use ramjet_proto::codes::{request, response};
use ramjet_proto::frame::{decode_frame, encode_frame, FRAME_SIZE_BYTES_MAX};
use ramjet_proto::Header;
use ramjet_tests::{run_glommio, store_dir, wait_for_route, BrokerOptions, Daemon};

const TOPIC: &str = "lease-orders";
const WAIT: Duration = Duration::from_secs(60);

fn client(namesrv: &str) -> Client {
    Client::new(ClientConfig::new(namesrv).expect("client config"))
}

/// A stand-in controller: answers every BROKER_HEARTBEAT with SUCCESS while `answering`,
/// and reads (and drops) them otherwise. Counts the heartbeats it answered.
struct FakeController {
    addr: String,
    answering: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeController {
    fn start() -> FakeController {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let answering = Arc::new(AtomicBool::new(true));
        let answered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, n, s) = (answering.clone(), answered.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (a, n, s) = (a.clone(), n.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, &a, &n, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeController { addr, answering, answered, stop }
    }
}

impl Drop for FakeController {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, answering: &AtomicBool, answered: &AtomicU64, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => continue,
        }
        while let Ok(Some(frame)) = decode_frame(&mut buf, FRAME_SIZE_BYTES_MAX) {
            if frame.header.code != request::BROKER_HEARTBEAT || !answering.load(Ordering::Relaxed)
            {
                continue;
            }
            let reply = Header::response_to(&frame.header, response::SUCCESS);
            let mut out = BytesMut::new();
            encode_frame(&reply, &[], &mut out).expect("encode");
            if stream.write_all(&out).is_err() {
                return;
            }
            answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One send to queue 0 of the topic: Ok(status), the broker's code, or -1 (no answer).
fn send_once(ns: &str, index: usize) -> Result<SendStatus, i32> {
    let ns = ns.to_string();
    run_glommio(move || async move {
        let producer = Producer::new(client(&ns), "lease-producer");
        let queue = ramjet_client::MessageQueue {
            topic: TOPIC.into(),
            broker_name: "lb".into(),
            queue_id: 0,
        };
        let body = Bytes::from(format!("m{index}"));
        match producer.send_to_queue(&queue, Message::new(TOPIC, body)).await {
            Ok(r) => Ok(r.status),
            Err(ClientError::Broker { code, .. }) => Err(code),
            Err(_) => Err(-1),
        }
    })
}

// Goal: in controller mode a master acknowledges sends only while the controller answers
// its heartbeats within its lease; cut off, it refuses them (SERVICE_NOT_AVAILABLE, the
// reference's answer of a broker that is not a writable master) until it hears from the
// controller again. Method: a stand-in controller answers; sends succeed; it stops
// answering: a send is refused within the bounded wait, and every send after it too (no
// heartbeat can renew the lease); it answers again: sends succeed again.
#[test]
fn a_master_past_its_lease_refuses_sends_until_the_controller_answers_again() {
    let namesrv = Daemon::namesrv();
    let ns = namesrv.namesrv_addr.clone();
    let controller = FakeController::start();
    let dir = store_dir();
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        format!(
            "enableControllerMode=true\ncontrollerAddr={}\ncontrollerHeartBeatTimeoutMills=4000\n\
             controllerLeaseMills=1500\nbrokerHeartbeatInterval=200\n",
            controller.addr
        ),
    )
    .expect("conf");
    let mut o = BrokerOptions::new(&dir.path().join("store"));
    o.namesrv_addr = Some(ns.clone());
    o.broker_name = Some("lb".into());
    o.extra = vec!["-c".into(), conf.display().to_string()];
    let broker = Daemon::broker(&o);
    let b = broker.broker_addr.clone();
    run_glommio({
        let (ns, b) = (ns.clone(), b.clone());
        move || async move {
            let admin = Admin::new(client(&ns));
            admin.create_topic(&b, TOPIC, 1, 1).await.expect("create topic");
            let producer = Producer::new(client(&ns), "route-probe");
            wait_for_route(&producer, TOPIC, 1).await;
        }
    });
    let until = |what: &str, ok: &dyn Fn(Result<SendStatus, i32>) -> bool| {
        let deadline = Instant::now() + WAIT;
        let mut i = 0;
        loop {
            i += 1;
            if ok(send_once(&ns, i)) {
                return;
            }
            assert!(Instant::now() < deadline, "never {what}: {}", broker.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until("acknowledged within the lease", &|r| r == Ok(SendStatus::Ok));
    assert!(controller.answered.load(Ordering::Relaxed) > 0);
    controller.answering.store(false, Ordering::Relaxed);
    until("refused past the lease", &|r| r == Err(response::SERVICE_NOT_AVAILABLE));
    for i in 0..10 {
        assert_eq!(
            send_once(&ns, 1000 + i),
            Err(response::SERVICE_NOT_AVAILABLE),
            "no heartbeat answered: every send refused"
        );
    }
    controller.answering.store(true, Ordering::Relaxed);
    until("acknowledged again", &|r| r == Ok(SendStatus::Ok));
    drop(broker);
    drop(namesrv);
}
