//! `ramjet-namesrv`: a standalone NameServer.

use std::net::IpAddr;

use clap::Parser;
use ramjet_server::{net::listener::bind_group, runtime, signal};

/// A RocketMQ-compatible NameServer.
#[derive(Parser, Debug)]
#[command(name = "ramjet-namesrv", version, about)]
struct Args {
    /// Port (default 9876). 0 = ephemeral.
    #[arg(long = "listen-port", default_value_t = 9876)]
    listen_port: u16,
    /// Address to bind (default all).
    #[arg(long = "bind-ip", default_value = "0.0.0.0")]
    bind_ip: IpAddr,
    /// Serve Prometheus metrics on this port.
    #[arg(long = "metrics-port")]
    metrics_port: Option<u16>,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
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
    let (stop_tx, stop_rx) = flume::bounded::<()>(1);
    let join = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("namesrv")
        .io_memory(runtime::IO_MEMORY_BYTES)
        .spawn(move || async move {
            let listener = ramjet_server::net::listener::adopt(listener);
            let stop = async move {
                let _ = stop_rx.recv_async().await;
            };
            ramjet_server::namesrv::service::run_namesrv_with_metrics(listener, stop, metrics)
                .await;
        });
    let join = match join {
        Ok(j) => j,
        Err(e) => {
            eprintln!("ramjet-namesrv: cannot start: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("ramjet-namesrv ready: namesrv {addr}{metrics_line}");
    signal::wait_stop_signal();
    signal::exit_on_second_signal();
    let _ = stop_tx.send(());
    let _ = join.join();
}
