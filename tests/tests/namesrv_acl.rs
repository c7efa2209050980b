//! Access control on the NameServer (`aclEnable=true` in namesrv.conf, or broker.conf for
//! the embedded one), against real processes, in both header encodings.
//!
//! Goal: the NameServer's write requests (REGISTER_BROKER, UNREGISTER_BROKER,
//! PUT_KV_CONFIG, DELETE_KV_CONFIG, ...) need an admin account's signature: unsigned,
//! wrongly signed and non-admin requests are each refused with the broker's ACL answer
//! (SYSTEM_ERROR, remark `org.apache.rocketmq.acl.common.AclException: <message>`) and
//! change nothing (route table and KV unchanged); reads stay open (a client without
//! credentials finds routes and reads KV); a broker with
//! `innerClientAuthenticationCredentials` registers; denials are counted per account on
//! the NameServer's `/metrics`; a file edit takes effect without a restart (a bad edit
//! keeps the last good file); a missing file at start stops the NameServer.
//!
//! Method: a standalone `ramjet-namesrv` with a namesrv.conf naming a `plain_acl.yml` and a
//! broker (ACL off) registering with it with the admin account; requests are built by the
//! test, signed (or mis-signed) with `ramjet_proto::acl::sign_request`, and sent by a
//! client without credentials. A second test runs a broker with ACL on and its embedded
//! NameServer.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ramjet_client::{Client, Credentials};
use ramjet_proto::acl::sign_request;
use ramjet_proto::body::ClusterInfo;
use ramjet_proto::codes::{request, response};
use ramjet_proto::header::{
    CommandHeader, RegisterBrokerRequestHeader, UnRegisterBrokerRequestHeader,
};
use ramjet_proto::{Frame, Header, SerializeType};
use ramjet_tests::{
    admin, client, http_get, metric_sum, metrics_addr, parse_prometheus, run_glommio, store_dir,
    wait_until, BrokerOptions, Daemon, Exiting,
};

const REMARK_PREFIX: &str = "org.apache.rocketmq.acl.common.AclException: ";

const ACL_FILE: &str = "\
accounts:
  - accessKey: nsAdmin01
    secretKey: nsAdminSecret
    admin: true
  - accessKey: userKey01
    secretKey: userSecret1
    admin: false
    defaultTopicPerm: PUB|SUB
";

/// broker.conf's line giving the broker the admin account for its own requests.
const INNER_CREDENTIALS: &str =
    r#"innerClientAuthenticationCredentials={"accessKey":"nsAdmin01","secretKey":"nsAdminSecret"}"#;

fn creds(access_key: &str, secret_key: &str) -> Credentials {
    ramjet_tests::credentials(access_key, secret_key)
}

fn admin_creds() -> Credentials {
    creds("nsAdmin01", "nsAdminSecret")
}

fn user_creds() -> Credentials {
    creds("userKey01", "userSecret1")
}

/// Writes the ACL file and a config file named `conf_name` holding `aclEnable`,
/// `aclFilePath` and `extra`; returns the config's path.
fn write_conf(dir: &Path, conf_name: &str, extra: &str) -> String {
    let acl = dir.join("plain_acl.yml");
    std::fs::write(&acl, ACL_FILE).expect("write acl file");
    let conf = dir.join(conf_name);
    let text = format!("aclEnable=true\naclFilePath={}\n{extra}\n", acl.display());
    std::fs::write(&conf, text).expect("write conf");
    conf.to_string_lossy().into_owned()
}

fn register(name: &str, addr: &str, cluster: &str, st: SerializeType) -> Header {
    let mut h = Header::request(request::REGISTER_BROKER, 0, st);
    RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: cluster.into(),
        ha_server_addr: format!("{addr}1"),
        broker_id: 0,
        heartbeat_timeout_millis: None,
        compressed: Some(false),
        body_crc32: None,
    }
    .encode(&mut h.ext_fields);
    h
}

fn unregister(name: &str, addr: &str, cluster: &str, st: SerializeType) -> Header {
    let mut h = Header::request(request::UNREGISTER_BROKER, 0, st);
    UnRegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: cluster.into(),
        broker_id: 0,
    }
    .encode(&mut h.ext_fields);
    h
}

fn kv(code: i32, namespace: &str, key: &str, value: Option<&str>, st: SerializeType) -> Header {
    let mut h = Header::request(code, 0, st);
    h.ext_fields.insert("namespace", namespace);
    h.ext_fields.insert("key", key);
    if let Some(v) = value {
        h.ext_fields.insert("value", v);
    }
    h
}

/// The test's side of one NameServer: a client without credentials.
struct Probe {
    client: Client,
    namesrv: String,
    st: SerializeType,
    /// Denials the test caused, by the account label `/metrics` should show.
    denied: BTreeMap<String, u64>,
}

impl Probe {
    async fn raw(&self, header: Header, body: &[u8]) -> Frame {
        self.client.invoke(&self.namesrv, header, body).await.expect("transport")
    }

    async fn signed(&self, mut header: Header, body: &[u8], creds: &Credentials) -> Frame {
        sign_request(&mut header.ext_fields, body, creds);
        self.raw(header, body).await
    }

    fn refused(&mut self, frame: &Frame, message: &str, account: &str) {
        assert_eq!(
            (frame.header.code, frame.header.remark.as_deref()),
            (response::SYSTEM_ERROR, Some(format!("{REMARK_PREFIX}{message}").as_str())),
            "{:?}: expected the refusal {message:?}",
            self.st
        );
        *self.denied.entry(account.to_string()).or_insert(0) += 1;
    }

    /// Sends `header` unsigned, wrongly signed and signed by a non-admin account; asserts
    /// each is refused with the reference's message.
    async fn refused_three_ways(&mut self, header: Header, body: &[u8]) {
        let code = header.code;
        let frame = self.raw(header.clone(), body).await;
        self.refused(&frame, "No accessKey is configured", "(none)");
        let frame = self.signed(header.clone(), body, &creds("nsAdmin01", "guessed")).await;
        self.refused(&frame, "Check signature failed for accessKey=nsAdmin01", "nsAdmin01");
        let frame = self.signed(header, body, &user_creds()).await;
        let message = format!(
            "Need admin permission for request code={code}, but accessKey=userKey01 is not"
        );
        self.refused(&frame, &message, "userKey01");
    }

    /// The cluster info, read unsigned (reads are open).
    async fn cluster_info(&self) -> ClusterInfo {
        let frame =
            self.raw(Header::request(request::GET_BROKER_CLUSTER_INFO, 0, self.st), &[]).await;
        assert_eq!(frame.header.code, response::SUCCESS, "{:?}", frame.header.remark);
        ramjet_proto::body::from_json(&frame.body).expect("cluster info")
    }

    /// A KV value, read unsigned (`None`: not found).
    async fn kv_value(&self, namespace: &str, key: &str) -> Option<String> {
        let frame = self.raw(kv(request::GET_KV_CONFIG, namespace, key, None, self.st), &[]).await;
        match frame.header.code {
            response::SUCCESS => frame.header.ext_fields.get("value").map(str::to_string),
            response::QUERY_NOT_FOUND => None,
            code => panic!("GET_KV_CONFIG answered {code}: {:?}", frame.header.remark),
        }
    }
}

/// Every refusal of the brief in one encoding, with the route table and KV checked after.
async fn refusals(probe: &mut Probe, broker_addr: &str) {
    let st = probe.st;
    let before = probe.cluster_info().await;
    assert!(
        before.broker_addr_table.contains_key("broker-a"),
        "{st:?}: the real broker is not registered: {before:?}"
    );

    // A fake broker cannot register.
    let fake = register("evil-broker", "127.0.0.1:1", "evil-cluster", st);
    probe.refused_three_ways(fake, b"").await;
    // The real broker cannot be unregistered.
    let real = unregister("broker-a", broker_addr, "DefaultCluster", st);
    probe.refused_three_ways(real, b"").await;
    let after = probe.cluster_info().await;
    assert_eq!(
        after.broker_addr_table, before.broker_addr_table,
        "{st:?}: a refused register or unregister changed the route table"
    );
    assert!(!after.cluster_addr_table.contains_key("evil-cluster"));

    // KV writes: refused and nothing stored; an admin's put passes; a refused delete
    // leaves the value.
    let ns = format!("nsacl-{st:?}");
    let put = kv(request::PUT_KV_CONFIG, &ns, "k", Some("v1"), st);
    probe.refused_three_ways(put.clone(), b"").await;
    assert_eq!(probe.kv_value(&ns, "k").await, None, "{st:?}: a refused put stored");
    let frame = probe.signed(put, b"", &admin_creds()).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert_eq!(probe.kv_value(&ns, "k").await.as_deref(), Some("v1"));
    let delete = kv(request::DELETE_KV_CONFIG, &ns, "k", None, st);
    probe.refused_three_ways(delete.clone(), b"").await;
    assert_eq!(probe.kv_value(&ns, "k").await.as_deref(), Some("v1"), "{st:?}: deleted");
    let frame = probe.signed(delete, b"", &admin_creds()).await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert_eq!(probe.kv_value(&ns, "k").await, None);

    // An admin may register and unregister a broker.
    let name = format!("admin-made-{st:?}");
    let frame = probe
        .signed(register(&name, "127.0.0.1:2", "admin-cluster", st), b"", &admin_creds())
        .await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert!(probe.cluster_info().await.broker_addr_table.contains_key(&name));
    let frame = probe
        .signed(unregister(&name, "127.0.0.1:2", "admin-cluster", st), b"", &admin_creds())
        .await;
    assert_eq!(frame.header.code, response::SUCCESS, "{st:?}: {:?}", frame.header.remark);
    assert!(!probe.cluster_info().await.broker_addr_table.contains_key(&name));
}

// Goal: see the module doc (standalone NameServer).
#[test]
fn namesrv_acl_refuses_writes_keeps_reads_open_and_reloads() {
    let dir = store_dir();
    let conf = write_conf(dir.path(), "namesrv.conf", "");
    let namesrv = Daemon::namesrv_with(&["-c", &conf, "--metrics-port", "0"]);
    let ns = namesrv.namesrv_addr.clone();
    let broker_conf = dir.path().join("broker.conf");
    std::fs::write(&broker_conf, format!("{INNER_CREDENTIALS}\n")).expect("write broker.conf");
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.namesrv_addr = Some(ns.clone());
    opts.extra = vec!["-c".into(), broker_conf.to_string_lossy().into_owned()];
    let broker = Daemon::broker(&opts);
    let addr = broker.broker_addr.clone();
    admin(&["updateTopic", "-n", &ns, "-b", &addr, "-t", "nsacl-topic"]).ok();

    let (ns2, addr2) = (ns.clone(), addr.clone());
    let denied = run_glommio(move || async move {
        // A client without credentials finds the route the broker registered (signed).
        let st = SerializeType::RocketMq;
        let reader = client(&ns2, st);
        let (r, n) = (&reader, &ns2);
        wait_until(Duration::from_secs(30), "route of nsacl-topic", || async move {
            let h = ramjet_client::protocol::route_request("nsacl-topic", st);
            let frame = r.invoke(n, h, &[]).await.expect("transport");
            frame.header.code == response::SUCCESS
        })
        .await;
        reader.close();

        let mut denied = BTreeMap::new();
        for st in [SerializeType::Json, SerializeType::RocketMq] {
            let mut probe = Probe {
                client: client(&ns2, st),
                namesrv: ns2.clone(),
                st,
                denied: BTreeMap::new(),
            };
            refusals(&mut probe, &addr2).await;
            for (k, v) in probe.denied {
                *denied.entry(k).or_insert(0) += v;
            }
            probe.client.close();
        }
        denied
    });

    // Denials per account on the NameServer's /metrics: exactly the refusals above (the
    // broker's signed registrations count nothing).
    let (code, page) = http_get(&metrics_addr(&namesrv), "/metrics");
    assert_eq!(code, 200);
    let samples = parse_prometheus(&page);
    assert_eq!(denied.len(), 3, "{denied:?}");
    for (account, n) in &denied {
        let got = metric_sum(&samples, "ramjet_namesrv_acl_denied_total", &[("account", account)]);
        assert_eq!(got, *n as f64, "ramjet_namesrv_acl_denied_total{{account={account:?}}}");
    }

    // Reload: a bad edit keeps the last good file (and says so); a good edit making
    // userKey01 an admin lets its put through, no restart.
    let acl_path = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_path, "accounts: [unclosed\n").expect("write bad acl file");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !namesrv.log_text().contains("ACL file not reloaded") {
        assert!(Instant::now() < deadline, "bad file not reported:\n{}", namesrv.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let promoted = ACL_FILE.replace("admin: false", "admin: true");
    let ns3 = ns.clone();
    run_glommio(move || async move {
        let st = SerializeType::RocketMq;
        let mut probe =
            Probe { client: client(&ns3, st), namesrv: ns3.clone(), st, denied: BTreeMap::new() };
        let put = move || kv(request::PUT_KV_CONFIG, "reload", "k", Some("v"), st);
        let frame = probe.signed(put(), b"", &user_creds()).await;
        let code = request::PUT_KV_CONFIG;
        let message = format!(
            "Need admin permission for request code={code}, but accessKey=userKey01 is not"
        );
        probe.refused(&frame, &message, "userKey01");
        std::fs::write(&acl_path, promoted).expect("write acl file");
        let (p, put) = (&probe, &put);
        wait_until(Duration::from_secs(20), "reloaded admin account", || async move {
            p.signed(put(), b"", &user_creds()).await.header.code == response::SUCCESS
        })
        .await;
        assert_eq!(probe.kv_value("reload", "k").await.as_deref(), Some("v"));
        probe.client.close();
    });
    drop(broker);
}

// Goal: a broker with ACL on makes its embedded NameServer check writes with the same
// file: the broker registers with its own credentials and an unsigned client finds the
// route; an unsigned KV put is refused and counted on the broker's /metrics.
#[test]
fn embedded_namesrv_follows_broker_acl() {
    let dir = store_dir();
    let conf = write_conf(dir.path(), "broker.conf", INNER_CREDENTIALS);
    let mut opts = BrokerOptions::new(&dir.path().join("store"));
    opts.extra = vec!["-c".into(), conf, "--metrics-port".into(), "0".into()];
    let broker = Daemon::broker(&opts);
    let (ns, addr) = (broker.namesrv_addr.clone(), broker.broker_addr.clone());
    let creds = ["--access-key", "nsAdmin01", "--secret-key", "nsAdminSecret"];
    let mut args: Vec<&str> = vec!["updateTopic", "-n", &ns, "-b", &addr, "-t", "embedded-topic"];
    args.extend(creds);
    admin(&args).ok();
    let ns2 = ns.clone();
    run_glommio(move || async move {
        let st = SerializeType::Json;
        let mut probe =
            Probe { client: client(&ns2, st), namesrv: ns2.clone(), st, denied: BTreeMap::new() };
        let (p, ns3) = (&probe, &ns2);
        wait_until(Duration::from_secs(30), "route of embedded-topic", || async move {
            let h = ramjet_client::protocol::route_request("embedded-topic", st);
            let frame = p.client.invoke(ns3, h, &[]).await.expect("transport");
            frame.header.code == response::SUCCESS
        })
        .await;
        let frame = probe.raw(kv(request::PUT_KV_CONFIG, "e", "k", Some("v"), st), b"").await;
        probe.refused(&frame, "No accessKey is configured", "(none)");
        assert_eq!(probe.kv_value("e", "k").await, None);
        probe.client.close();
    });
    let (code, page) = http_get(&metrics_addr(&broker), "/metrics");
    assert_eq!(code, 200);
    let samples = parse_prometheus(&page);
    let got = metric_sum(&samples, "ramjet_namesrv_acl_denied_total", &[("account", "(none)")]);
    assert_eq!(got, 1.0, "{page}");
}

// Goal: a namesrv.conf with aclEnable=true and a missing file stops the NameServer with a
// message naming the file.
#[test]
fn namesrv_acl_missing_file_at_start_is_an_error() {
    let dir = store_dir();
    let missing = dir.path().join("missing.yml");
    let conf = dir.path().join("namesrv.conf");
    std::fs::write(&conf, format!("aclEnable=true\naclFilePath={}\n", missing.display()))
        .expect("write conf");
    let conf = conf.to_string_lossy().into_owned();
    let args = ["-c", conf.as_str(), "--listen-port", "0", "--bind-ip", "127.0.0.1"];
    let mut p = Exiting::start("ramjet-namesrv", &args, &[]);
    let status = p.wait_exit(Duration::from_secs(30)).expect("namesrv did not exit");
    assert!(!status.success(), "{}", p.log_text());
    let named = missing.display().to_string();
    assert!(p.wait_for_log(&named, Duration::from_secs(10)), "{}", p.log_text());
}

// Goal: the broker's own outgoing requests are signed with
// `innerClientAuthenticationCredentials`: a slave (ACL on) of a master with ACL on finds
// its master through a NameServer with ACL on (both register) and copies the master's
// topics through its metadata sync, which the master checks like any request.
// Method: one ACL file for all three processes; a topic created on the master by the
// admin tool (signed) must appear in the slave's topic table (read signed).
#[test]
fn a_slave_signs_its_registration_and_metadata_sync() {
    let dir = store_dir();
    let ns_conf = write_conf(dir.path(), "namesrv.conf", "");
    let namesrv = Daemon::namesrv_with(&["-c", &ns_conf]);
    let ns = namesrv.namesrv_addr.clone();
    let conf = write_conf(dir.path(), "broker.conf", INNER_CREDENTIALS);
    let options = |store: &str, extra: &[&str]| {
        let mut o = BrokerOptions::new(&dir.path().join(store));
        o.namesrv_addr = Some(ns.clone());
        o.broker_name = Some("rb".into());
        o.extra = vec!["-c".into(), conf.clone(), "--cluster".into(), "RC".into()];
        o.extra.extend(extra.iter().map(|s| s.to_string()));
        o
    };
    let master = Daemon::broker(&options("master", &["--broker-role", "ASYNC_MASTER"]));
    let slave = Daemon::broker(&options("slave", &["--broker-role", "SLAVE", "--broker-id", "1"]));
    let (m, s) = (master.broker_addr.clone(), slave.broker_addr.clone());
    let creds = ["--access-key", "nsAdmin01", "--secret-key", "nsAdminSecret"];
    let mut args: Vec<&str> = vec!["updateTopic", "-n", &ns, "-b", &m, "-t", "slave-sync-topic"];
    args.extend(creds);
    admin(&args).ok();
    run_glommio(move || async move {
        let st = SerializeType::RocketMq;
        let probe =
            Probe { client: client(&ns, st), namesrv: ns.clone(), st, denied: BTreeMap::new() };
        let (p, s) = (&probe, &s);
        wait_until(Duration::from_secs(60), "the slave copies the master's topic", || async move {
            let h = Header::request(request::GET_ALL_TOPIC_CONFIG, 0, st);
            let mut h = h;
            sign_request(&mut h.ext_fields, b"", &admin_creds());
            let frame = p.client.invoke(s, h, b"").await.expect("transport");
            assert_eq!(frame.header.code, response::SUCCESS, "{:?}", frame.header.remark);
            String::from_utf8_lossy(&frame.body).contains("slave-sync-topic")
        })
        .await;
        // Both are registered with the NameServer (registrations signed).
        let info = probe.cluster_info().await;
        let addrs = &info.broker_addr_table.get("rb").expect("rb registered").broker_addrs;
        assert_eq!(addrs.len(), 2, "{addrs:?}");
        probe.client.close();
    });
    drop((slave, master));
}
