//! The node daemon (`accord serve`): the Exchange and health services over mutual TLS, the
//! admin socket, the anti-entropy loop and optional metrics, all stopped by one shutdown
//! signal. Configuration is checked (TLS files, store, signing key) before any port is bound.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch};

use super::Node;
use crate::admin::AdminService;
use crate::exchange::server::ExchangeService;
use crate::exchange::sync::Syncer;
use crate::exchange::{MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_STREAMS_PER_PEER};
use crate::proto::admin_server::AdminServer;
use crate::proto::exchange_server::ExchangeServer;
use crate::record::Country;

/// Daemon failures.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// A socket could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Bind { what: String, source: std::io::Error },
    /// The gRPC server failed.
    #[error("server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The longest a failing peer waits between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Binds the configured listen address.
pub async fn bind(node: &Node) -> Result<TcpListener, DaemonError> {
    TcpListener::bind(node.config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            what: node.config.listen.to_string(),
            source,
        })
}

/// Runs the node on `listener` until `shutdown` completes, then drains and flushes.
pub async fn run(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let tls = crate::tls::server_config(&node.config.tls)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (announced_tx, announced_rx) = mpsc::channel(64);
    let syncer = Arc::new(Syncer::new(node.clone()));

    // Admin socket: remove a stale one (the store lock already proved no node runs here).
    let socket = node.config.admin_socket();
    let _ = std::fs::remove_file(&socket);
    let admin_listener = bind_admin_socket(&socket).map_err(|source| DaemonError::Bind {
        what: socket.display().to_string(),
        source,
    })?;

    let metrics_task = match node.config.metrics_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind {
                what: addr.to_string(),
                source,
            })?;
            Some(tokio::spawn(crate::node::metrics::serve(
                node.clone(),
                l,
                stop_rx.clone(),
            )))
        }
        None => None,
    };

    let addr = listener.local_addr().ok();
    if node.config.consortium.test_only {
        tracing::warn!(
            "consortium {:?} is marked test_only: this node is NOT for real data",
            node.config.consortium.name
        );
    }
    tracing::info!(country = %node.country(), listen = ?addr, admin = %socket.display(), peers = node.config.peers.len(), "node started");

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ExchangeServer<ExchangeService>>().await;
    let exchange = ExchangeServer::new(ExchangeService::new(node.clone(), announced_tx))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut stop = stop_rx.clone();
    let peer_server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_STREAMS_PER_PEER))
        .timeout(Duration::from_secs(60))
        .add_service(health_service)
        .add_service(exchange)
        .serve_with_incoming_shutdown(crate::tls::incoming(listener, tls), async move {
            let _ = stop.changed().await;
        });
    let admin = AdminServer::new(AdminService {
        node: node.clone(),
        syncer: syncer.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut stop = stop_rx.clone();
    let admin_server = tonic::transport::Server::builder()
        .add_service(admin)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(admin_listener),
            async move {
                let _ = stop.changed().await;
            },
        );
    let sync_task = tokio::spawn(sync_loop(node.clone(), syncer.clone(), announced_rx, stop_rx.clone()));
    // Announce at start, so peers that missed our publications while we were down pull them.
    let s = syncer.clone();
    tokio::spawn(async move { s.announce_all().await });

    let peer_handle = tokio::spawn(peer_server);
    let admin_handle = tokio::spawn(admin_server);
    shutdown.await;
    tracing::info!("shutting down: no new connections, finishing in-flight work");
    let _ = stop_tx.send(true);
    let peer_result = peer_handle.await;
    let _ = admin_handle.await;
    let _ = sync_task.await;
    if let Some(t) = metrics_task {
        let _ = t.await;
    }
    let _ = std::fs::remove_file(&socket);
    if let Err(e) = node.store.flush() {
        tracing::error!(error = %e, "final flush failed");
    }
    tracing::info!("node stopped");
    match peer_result {
        Ok(r) => r.map_err(DaemonError::from),
        Err(e) => {
            tracing::error!(error = %e, "server task failed");
            Ok(())
        }
    }
}

/// A pseudo-random factor in [0.8, 1.2) so peers do not sync in lockstep.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base.mul_f64(0.8 + f64::from(nanos % 1000) / 2500.0)
}

/// Pulls from each peer on a jittered interval, backing off exponentially from failing peers,
/// and at once from a peer that announces.
async fn sync_loop(
    node: Arc<Node>,
    syncer: Arc<Syncer>,
    mut announced: mpsc::Receiver<Country>,
    mut stop: watch::Receiver<bool>,
) {
    let interval = node.config.sync_interval;
    let mut due: HashMap<Country, Instant> = node.config.peers.iter().map(|p| (p.country, Instant::now())).collect();
    let mut failures: HashMap<Country, u32> = HashMap::new();
    loop {
        let next = due
            .values()
            .min()
            .copied()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let peer = tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                due.iter().find(|(_, t)| **t <= now).map(|(p, _)| *p)
            }
            Some(p) = announced.recv() => due.contains_key(&p).then_some(p),
        };
        let Some(peer) = peer else { continue };
        let result = syncer.pull_from(peer).await;
        let wait = match &result {
            Ok(s) => {
                failures.remove(&peer);
                if s.appended > 0 {
                    tracing::info!(%peer, appended = s.appended, "sync round brought new entries");
                    // Relay onwards at once: peers of ours may be waiting for these.
                    let s = syncer.clone();
                    tokio::spawn(async move { s.announce_all().await });
                }
                jitter(interval)
            }
            Err(e) => {
                let f = failures.entry(peer).or_insert(0);
                *f += 1;
                tracing::warn!(%peer, error = %e, failures = *f, "sync failed");
                jitter(interval.saturating_mul(1 << (*f).min(6)).min(MAX_BACKOFF))
            }
        };
        due.insert(peer, Instant::now() + wait);
    }
}

/// Binds the admin socket so that it is never reachable by anyone but the owner, not even for a
/// moment: bound inside a fresh private (0700) directory, made 0600, then renamed into place.
fn bind_admin_socket(socket: &std::path::Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = socket.parent().unwrap_or(std::path::Path::new("."));
    let private = parent.join(format!(".admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let staged = private.join("admin.sock");
    let result = (|| {
        let listener = UnixListener::bind(&staged)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, socket)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    result
}
