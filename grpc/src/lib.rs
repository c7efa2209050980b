//! RocketMQ 5.x gRPC front end: `apache.rocketmq.v2.MessagingService` served by the
//! broker itself, on its own thread with a tokio runtime (ARCHITECTURE §15).
//!
//! The front end holds no messages: every send, read and offset goes to the broker's shards
//! as an ordinary remoting request through a [`Backend`] (the broker hands its shard inboxes
//! in), so routing, storage, long polling, delay levels and send-back are the remoting
//! paths. What only 5.x clients need, POP consumption (received messages invisible for a
//! while, acked one by one, redelivered when not), lives here in [`pop`], with its own
//! durable journal.
//!
//! Lives on: the `grpc` thread of the broker process.

#![warn(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod backend;
mod convert;
pub mod pop;
mod service;

/// Generated from `proto/apache/rocketmq/v2/*.proto` (apache/rocketmq-apis) by `build.rs`.
#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::nursery, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("apache.rocketmq.v2");
}

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use backend::{Backend, BoxFuture, Reply};

/// Settings of the front end (broker.conf keys in parentheses).
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Where the POP journal lives (`<storePathRootDir>/pop`).
    pub pop_dir: PathBuf,
    /// Broker name shown in routes.
    pub broker_name: String,
    /// The address clients are told to use (QueryRoute endpoints): the broker IP and the
    /// gRPC port.
    pub advertised: SocketAddr,
    /// Most messages one ReceiveMessage returns (`grpcMaxReceiveBatch`, 32).
    pub max_receive_batch: usize,
    /// Most messages of one consumer group invisible at once (`grpcMaxInflightPerGroup`).
    pub max_inflight_per_group: usize,
    /// Shortest invisible duration accepted, ms (`grpcMinInvisibleTimeMs`, 10 s as the
    /// reference proxy).
    pub min_invisible_ms: u64,
    /// Longest invisible duration accepted, ms (`grpcMaxInvisibleTimeMs`, 12 h).
    pub max_invisible_ms: u64,
    /// Longest long-polling wait, ms (`grpcMaxLongPollingMs`, 30 s).
    pub max_long_polling_ms: u64,
    /// Deliveries before a message goes to the group's DLQ, when the group's own
    /// `retryMaxTimes` is not known (`grpcMaxDeliveryAttempts`, 17 = 16 retries + 1).
    pub max_delivery_attempts: u32,
    /// Most consumer groups with POP state (`grpcMaxPopGroups`).
    pub max_groups: usize,
}

impl GrpcOptions {
    /// Defaults for a broker named `broker_name` advertising `advertised`.
    pub fn new(pop_dir: PathBuf, broker_name: String, advertised: SocketAddr) -> GrpcOptions {
        GrpcOptions {
            pop_dir,
            broker_name,
            advertised,
            max_receive_batch: 32,
            max_inflight_per_group: 65_536,
            min_invisible_ms: 10_000,
            max_invisible_ms: 12 * 3600 * 1000,
            max_long_polling_ms: 30_000,
            max_delivery_attempts: 17,
            max_groups: 4096,
        }
    }
}

/// A running front end.
pub struct GrpcServer {
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl GrpcServer {
    /// Stops serving (open streams end), syncs the POP journal and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Opens the POP journal, then serves `listener` on a new thread until [`GrpcServer::stop`].
///
/// # Errors
/// The journal cannot be opened, or the thread or runtime cannot start.
pub fn start(
    listener: std::net::TcpListener,
    backend: Arc<dyn Backend>,
    options: GrpcOptions,
) -> Result<GrpcServer, String> {
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let pop = pop::PopStore::open(&options.pop_dir, options.max_groups)
        .map_err(|e| format!("POP journal {}: {e}", options.pop_dir.display()))?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let join = std::thread::Builder::new()
        .name("grpc".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("gRPC runtime: {e}")));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("gRPC listener: {e}")));
                        return;
                    }
                };
                let svc = service::Service::new(backend, options, pop);
                let sync = svc.pop_sync_task();
                let _ = ready_tx.send(Ok(()));
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let server = tonic::transport::Server::builder()
                    .http2_keepalive_interval(Some(Duration::from_secs(30)))
                    .add_service(pb::messaging_service_server::MessagingServiceServer::new(
                        svc.clone(),
                    ))
                    .serve_with_incoming_shutdown(incoming, async move {
                        let _ = stop_rx.await;
                    });
                let served = tokio::select! {
                    r = server => r,
                    () = sync => Ok(()),
                };
                if let Err(e) = served {
                    tracing::warn!(error = %e, "gRPC server ended");
                }
                svc.pop_close();
            });
        })
        .map_err(|e| format!("cannot start the gRPC thread: {e}"))?;
    match ready_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(())) => Ok(GrpcServer { addr, stop: Some(stop_tx), join: Some(join) }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("the gRPC thread did not start".into()),
    }
}
