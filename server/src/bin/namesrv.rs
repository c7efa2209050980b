//! `ramjet-namesrv`: a standalone NameServer.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use ramjet_server::config::{
    apply_connection_limit, apply_metrics_limit, parse_bool, parse_properties,
};
use ramjet_server::{net::listener::bind_group, runtime, signal};

/// A RocketMQ-compatible NameServer. Flags override the `-c` file.
#[derive(Parser, Debug)]
#[command(name = "ramjet-namesrv", version, about)]
struct Args {
    /// A RocketMQ namesrv.conf (Java properties: `listenPort`, `bindAddress`,
    /// `aclEnable`, `aclFilePath`, limits, and the controller's `enableControllerInNamesrv`,
    /// `controllerDLegerGroup`, `controllerDLegerPeers`, `controllerDLegerSelfId`,
    /// `controllerStorePath`, `enableElectUncleanMaster`, `controllerHeartBeatTimeoutMills`).
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Port (default 9876). 0 = ephemeral.
    #[arg(long = "listen-port")]
    listen_port: Option<u16>,
    /// Address to bind (default all).
    #[arg(long = "bind-ip")]
    bind_ip: Option<IpAddr>,
    /// Serve Prometheus metrics on this port.
    #[arg(long = "metrics-port")]
    metrics_port: Option<u16>,
}

/// Where the NameServer listens, from the `-c` file and the flags.
struct Settings {
    listen_port: u16,
    bind_ip: IpAddr,
    metrics_port: Option<u16>,
    limits: ramjet_server::net::limits::ConnectionLimits,
    metrics_limits: ramjet_server::metrics::MetricsLimits,
    table_limits: ramjet_server::table_limits::TableLimits,
    /// `aclEnable`: write requests need an admin account's signature.
    acl_enable: bool,
    /// `aclFilePath`; `None`: `$ROCKETMQ_HOME/conf/plain_acl.yml`.
    acl_file_path: Option<String>,
    /// The controller's keys (`enableControllerInNamesrv`, `controllerDLeger*`, ...).
    controller: ramjet_server::controller::ControllerConfig,
}

fn settings(args: Args) -> Result<Settings, String> {
    let mut s = Settings {
        listen_port: 9876,
        bind_ip: IpAddr::from([0, 0, 0, 0]),
        metrics_port: args.metrics_port,
        limits: Default::default(),
        metrics_limits: Default::default(),
        table_limits: Default::default(),
        acl_enable: false,
        acl_file_path: None,
        controller: Default::default(),
    };
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for (key, value) in parse_properties(&text) {
            match key.as_str() {
                "listenPort" => {
                    s.listen_port =
                        value.parse().map_err(|_| format!("listenPort: not a port: {value}"))?;
                }
                "bindAddress" => {
                    s.bind_ip =
                        value.parse().map_err(|_| format!("bindAddress: not an IP: {value}"))?;
                }
                "aclEnable" => {
                    s.acl_enable = parse_bool(&key, &value).map_err(|e| e.to_string())?;
                }
                "aclFilePath" => s.acl_file_path = Some(value),
                _ if s.controller.apply(&key, &value)? => {}
                _ => {
                    let known = apply_connection_limit(&mut s.limits, &key, &value)
                        .and_then(|known| {
                            Ok(known || apply_metrics_limit(&mut s.metrics_limits, &key, &value)?)
                        })
                        .map_err(|e| e.to_string())?
                        || s.table_limits.apply(&key, &value).map_err(|e| e.to_string())?;
                    if !known {
                        tracing::info!(%key, "config key not used by ramjet; ignored");
                    }
                }
            }
        }
    }
    s.listen_port = args.listen_port.unwrap_or(s.listen_port);
    s.bind_ip = args.bind_ip.unwrap_or(s.bind_ip);
    if s.controller.enabled {
        s.controller.self_member()?;
    }
    Ok(s)
}

fn main() {
    ramjet_server::panic::install("ramjet-namesrv");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match settings(Args::parse()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ramjet-namesrv: {e}");
            std::process::exit(2);
        }
    };
    ramjet_server::net::limits::install(args.limits.clone());
    ramjet_server::http::install(&args.metrics_limits);
    ramjet_server::table_limits::install(args.table_limits.clone());
    let acl =
        match ramjet_server::acl::gate::open_file(args.acl_enable, args.acl_file_path.as_deref()) {
            Ok(acl) => acl,
            Err(e) => {
                eprintln!("ramjet-namesrv: {e}");
                std::process::exit(1);
            }
        };
    runtime::raise_memlock_limit();
    signal::block_stop_signals();
    let listener = match bind_group(args.bind_ip, args.listen_port, 1) {
        Ok(mut l) => l.remove(0),
        Err(e) => {
            eprintln!(
                "ramjet-namesrv: cannot listen on {}:{}: {e}",
                args.bind_ip, args.listen_port
            );
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let metrics = match args.metrics_port.map(|p| ramjet_server::http::bind(args.bind_ip, p)) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            eprintln!("ramjet-namesrv: {e}");
            std::process::exit(1);
        }
        None => None,
    };
    let metrics_line = metrics
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| format!(" metrics {a}"))
        .unwrap_or_default();
    // The controller (enableControllerInNamesrv): its own listener and executor.
    let mut controller_line = String::new();
    let mut controller_join = None;
    let (ctrl_stop_tx, ctrl_stop_rx) = flume::bounded::<()>(1);
    let gauges =
        args.controller.enabled.then(ramjet_server::controller::node::SharedGauges::default);
    if let Some(gauges) = gauges.clone() {
        let cfg = args.controller.clone();
        let addr: std::net::SocketAddr = match cfg.self_member().map(|(_, a)| a.parse()) {
            Ok(Ok(a)) => a,
            _ => {
                eprintln!("ramjet-namesrv: controllerDLegerSelfId has no usable address");
                std::process::exit(2);
            }
        };
        let listener = match bind_group(addr.ip(), addr.port(), 1) {
            Ok(mut l) => l.remove(0),
            Err(e) => {
                eprintln!("ramjet-namesrv: cannot listen on {addr} for the controller: {e}");
                std::process::exit(1);
            }
        };
        let bound = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        controller_line = format!(" controller {bound}");
        let (ready_tx, ready_rx) = flume::bounded::<Result<(), String>>(1);
        let join = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name("controller")
            .io_memory(runtime::IO_MEMORY_BYTES)
            .spawn(move || async move {
                let listener = ramjet_server::net::listener::adopt(listener);
                let stop = async move {
                    let _ = ctrl_stop_rx.recv_async().await;
                };
                let ready = ready_tx.clone();
                let r = ramjet_server::controller::node::run_controller(
                    listener,
                    cfg,
                    gauges,
                    stop,
                    move || {
                        let _ = ready.try_send(Ok(()));
                    },
                )
                .await;
                if let Err(e) = r {
                    let _ = ready_tx.try_send(Err(e));
                }
            });
        match join {
            Ok(j) => controller_join = Some(j),
            Err(e) => {
                eprintln!("ramjet-namesrv: cannot start the controller: {e}");
                std::process::exit(1);
            }
        }
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("ramjet-namesrv: controller: {e}");
                std::process::exit(1);
            }
            Err(_) => {
                eprintln!("ramjet-namesrv: the controller ended before it was ready");
                std::process::exit(1);
            }
        }
    }
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let join = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("namesrv")
        .io_memory(runtime::IO_MEMORY_BYTES)
        .spawn(move || async move {
            let listener = ramjet_server::net::listener::adopt(listener);
            let stop = async move {
                let _ = stop_rx.recv_async().await;
            };
            let acl = acl.map(|r| (r, ramjet_server::acl::namesrv::SharedDenials::default()));
            let options = ramjet_server::namesrv::service::NamesrvOptions {
                metrics,
                acl,
                controller: gauges,
            };
            ramjet_server::namesrv::service::run_namesrv_with(listener, stop, options).await;
        });
    let join = match join {
        Ok(j) => j,
        Err(e) => {
            eprintln!("ramjet-namesrv: cannot start: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("ramjet-namesrv ready: namesrv {addr}{metrics_line}{controller_line}");
    signal::wait_stop_signal();
    signal::exit_on_second_signal();
    let _ = stop_tx.send(());
    let _ = ctrl_stop_tx.send(());
    let _ = join.join();
    if let Some(j) = controller_join {
        let _ = j.join();
    }
}
