//! The node daemon (`accord serve`): the Exchange and health services over mutual TLS, the
//! admin socket, the anti-entropy loop and optional metrics, all stopped by one shutdown
//! signal. Configuration is checked (TLS files, store, signing key) before any port is bound.
//!
//! Tasks: every task the daemon starts (servers, sync loop, announcements) is spawned on one
//! [`TaskTracker`]; at shutdown the stop signal goes out, the tracker is closed and awaited,
//! then the store is flushed. Nothing is left running and nothing is polled for.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_util::task::TaskTracker;

use crate::domain::model::Country;
use crate::io::exchange::server::ExchangeService;
use crate::io::exchange::sync::MAX_CONCURRENT_PULLS;
use crate::io::exchange::{PeerSync, SyncError, Syncer, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, MAX_STREAMS_PER_PEER};
use crate::node::Node;
use crate::proto::admin_server::AdminServer;
use crate::proto::exchange_server::ExchangeServer;
use crate::shell::admin::AdminService;

mod reload;

/// Daemon failures.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Tls(#[from] crate::io::tls::TlsError),
    /// A socket could not be bound.
    #[error("cannot listen on {what}: {source}")]
    Bind { what: String, source: std::io::Error },
    /// The thread that keeps the view up to date could not be started.
    #[error("cannot start the view's thread: {0}")]
    Thread(std::io::Error),
    /// The gRPC server failed.
    #[error("server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// How long shutdown waits for in-flight work before it closes every connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The longest a failing peer waits between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// Binds the configured listen address.
pub async fn bind(node: &Node) -> Result<TcpListener, DaemonError> {
    let listen = node.config().listen;
    crate::io::tls::listen(listen).map_err(|source| DaemonError::Bind {
        what: listen.to_string(),
        source,
    })
}

/// Runs the node on `listener` until `shutdown` completes, then drains and flushes.
pub async fn run(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let config = node.config();
    let tls = crate::io::tls::server_tls(&node.tls_files())?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (announced_tx, announced_rx) = crate::io::exchange::announce::queue(config.consortium.members.len());
    let tasks = TaskTracker::new();
    let syncer = Arc::new(node.syncer());

    // Admin socket: remove a stale one (the store lock already proved no node runs here).
    let socket = config.admin_socket();
    let _ = std::fs::remove_file(&socket);
    let admin_listener = bind_admin_socket(&socket).map_err(|source| DaemonError::Bind {
        what: socket.display().to_string(),
        source,
    })?;
    if let Some(addr) = config.metrics_listen {
        let l = TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind {
            what: addr.to_string(),
            source,
        })?;
        tasks.spawn(serve_metrics(node.clone(), l, stop_rx.clone()));
    }
    if let Some(addr) = config.dashboard_listen {
        let l = TcpListener::bind(addr).await.map_err(|source| DaemonError::Bind {
            what: addr.to_string(),
            source,
        })?;
        tracing::info!(url = %format!("http://{addr}/"), "dashboard");
        tasks.spawn(crate::shell::dashboard::serve(node.clone(), l, stop_rx.clone()));
    }
    let (tls_tx, tls_rx) = watch::channel(tls);
    // The handler is installed before "node started" is logged, so a SIGHUP sent once that line
    // is out reloads rather than ending the process.
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hangups) => {
            tasks.spawn(reload::on_hangup(
                hangups,
                node.clone(),
                syncer.clone(),
                tls_tx,
                stop_rx.clone(),
            ));
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP: TLS files reload only on restart"),
    }

    // Every stored entry is verified once, now, so the first status is quick and entries the
    // consortium no longer accepts are named in the log at start.
    let n = node.clone();
    match tokio::task::spawn_blocking(move || n.left_out()).await {
        Ok(Ok(left_out)) if !left_out.is_empty() => {
            tracing::warn!(
                entries = left_out.len(),
                "stored entries no longer verify and are left out of the view (see status)"
            )
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "cannot index the stored entries"),
        Err(e) => tracing::error!(error = %e, "indexing task failed"),
    }
    // From now on the view is computed in the background whenever what it is built from
    // changes, so `status` reads it and never computes it (SPEC §17). Stopped at shutdown.
    let maintainer = node.maintain_view().map_err(DaemonError::Thread)?;

    let addr = listener.local_addr().ok();
    if config.consortium.test_only {
        tracing::warn!(
            "consortium {:?} is marked test_only: this node is NOT for real data",
            config.consortium.name
        );
    }
    tracing::info!(country = %node.country(), listen = ?addr, admin = %socket.display(), peers = config.peers.len(), "node started");

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<ExchangeServer<ExchangeService>>().await;
    let exchange = ExchangeServer::new(ExchangeService::new(
        node.clone(),
        announced_tx,
        tasks.clone(),
        stop_rx.clone(),
    ))
    .max_decoding_message_size(MAX_REQUEST_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut stop = stop_rx.clone();
    let peer_server = tonic::transport::Server::builder()
        .max_concurrent_streams(Some(MAX_STREAMS_PER_PEER))
        .timeout(Duration::from_secs(60))
        // A connection whose peer stops answering pings is closed, not kept for ever.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .add_service(health_service)
        .add_service(exchange)
        .serve_with_incoming_shutdown(crate::io::tls::incoming_reloadable(listener, tls_rx), async move {
            let _ = stop.changed().await;
        });
    let admin = AdminServer::new(AdminService::new(
        node.clone(),
        syncer.clone(),
        tasks.clone(),
        stop_rx.clone(),
    ))
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
    tasks.spawn(sync_loop(
        node.clone(),
        syncer.clone(),
        tasks.clone(),
        announced_rx,
        stop_rx.clone(),
    ));
    // Announce at start, so peers that missed our publications while we were down pull them.
    syncer.announce_on(&tasks, &stop_rx);

    let peer_handle = tasks.spawn(peer_server);
    let admin_handle = tasks.spawn(admin_server);
    shutdown.await;
    tracing::info!("shutting down: no new connections, finishing in-flight work");
    let _ = stop_tx.send(true);
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait()).await.is_err() {
        // A peer that never reads keeps its connection's last responses from finishing; the
        // daemon stops anyway, closing every connection.
        tracing::warn!(
            "in-flight work not finished after {} s: closing every connection",
            SHUTDOWN_GRACE.as_secs()
        );
        peer_handle.abort();
        admin_handle.abort();
        tasks.wait().await;
    }
    let _ = std::fs::remove_file(&socket);
    // Waits for a view being computed, off the async workers: the store closes only after.
    let _ = tokio::task::spawn_blocking(move || drop(maintainer)).await;
    let n = node.clone();
    match tokio::task::spawn_blocking(move || n.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "final flush failed"),
        Err(e) => tracing::error!(error = %e, "final flush task failed"),
    }
    tracing::info!("node stopped");
    match peer_handle.await {
        Ok(r) => r.map_err(DaemonError::from),
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => {
            tracing::error!(error = %e, "server task failed");
            Ok(())
        }
    }
}

/// Serves the node's counters on `/metrics` (Prometheus text), liveness on `/healthz` and
/// readiness on `/ready` (200, or 503 with one reason per line) until `stop` changes, within
/// the deadlines and the cap of `crate::io::http`.
async fn serve_metrics(node: Arc<Node>, listener: TcpListener, stop: watch::Receiver<bool>) {
    let metrics_node = node.clone();
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let node = metrics_node.clone();
                async move {
                    let text = tokio::task::spawn_blocking(move || {
                        node.refresh_gauges();
                        node.metrics().render()
                    })
                    .await
                    .unwrap_or_default();
                    (
                        [(axum::http::header::CONTENT_TYPE, crate::node::metrics::CONTENT_TYPE)],
                        text,
                    )
                }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "alive\n" }))
        .route(
            "/ready",
            axum::routing::get(move || {
                let node = node.clone();
                async move {
                    // Reads files and the store: off the async threads.
                    let reasons = tokio::task::spawn_blocking(move || node.unready(crate::domain::date::unix_now()))
                        .await
                        .unwrap_or_else(|e| vec![format!("readiness check failed: {e}")]);
                    if reasons.is_empty() {
                        (axum::http::StatusCode::OK, "ready\n".to_string())
                    } else {
                        let body = reasons.iter().map(|r| format!("not ready: {r}\n")).collect::<String>();
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, body)
                    }
                }
            }),
        );
    crate::io::http::serve(listener, app, crate::io::http::Limits::default(), "metrics", stop).await;
}

/// A pseudo-random factor in [0.8, 1.2) so peers do not sync in lockstep.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base.mul_f64(0.8 + f64::from(nanos % 1000) / 2500.0)
}

/// Pulls from each peer on a jittered interval, backing off exponentially from failing peers,
/// and at once from a peer that announces. Each pull is a task of its own (at most
/// [`MAX_CONCURRENT_PULLS`] at a time, one per peer), so a slow or stuck peer never delays the
/// others; the pull's own deadline bounds it.
async fn sync_loop(
    node: Arc<Node>,
    syncer: Arc<Syncer>,
    tasks: TaskTracker,
    mut announced: crate::io::exchange::announce::AnnounceReceiver,
    mut stop: watch::Receiver<bool>,
) {
    let interval = node.config().sync_interval;
    let peers: Vec<Country> = node.config().peers.iter().map(|p| p.country).collect();
    let mut due: HashMap<Country, Instant> = peers.iter().map(|p| (*p, Instant::now())).collect();
    let mut failures: HashMap<Country, u32> = HashMap::new();
    let mut in_flight: HashSet<Country> = HashSet::new();
    // Peers that announced while a pull from them ran: pulled again when it ends.
    let mut again: HashSet<Country> = HashSet::new();
    let (done_tx, mut done) = mpsc::channel::<(Country, Result<PeerSync, SyncError>)>(peers.len().max(1));
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_PULLS));
    let task_stop = stop.clone();
    let start = |peer: Country, in_flight: &mut HashSet<Country>| {
        in_flight.insert(peer);
        let (syncer, done_tx, slots, mut stop) = (syncer.clone(), done_tx.clone(), slots.clone(), task_stop.clone());
        tasks.spawn(async move {
            tokio::select! {
                result = async {
                    let _slot = slots.acquire().await;
                    syncer.pull_from(peer).await
                } => {
                    let _ = done_tx.send((peer, result)).await;
                }
                _ = stop.changed() => {}
            }
        });
    };
    loop {
        let next = due
            .iter()
            .filter(|(p, _)| !in_flight.contains(*p))
            .map(|(_, t)| *t)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                let ready: Vec<Country> = due
                    .iter()
                    .filter(|(p, t)| **t <= now && !in_flight.contains(*p))
                    .map(|(p, _)| *p)
                    .collect();
                for peer in ready {
                    start(peer, &mut in_flight);
                }
            }
            Some(peer) = announced.recv() => {
                if in_flight.contains(&peer) {
                    again.insert(peer);
                } else if due.contains_key(&peer) {
                    start(peer, &mut in_flight);
                }
            }
            Some((peer, result)) = done.recv() => {
                in_flight.remove(&peer);
                let wait = match &result {
                    Ok(s) => {
                        failures.remove(&peer);
                        if s.appended > 0 {
                            tracing::info!(%peer, appended = s.appended, "sync round brought new entries");
                            // Relay onwards at once: peers of ours may be waiting for these.
                            syncer.announce_on(&tasks, &stop);
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
                let wait = if again.remove(&peer) { Duration::ZERO } else { wait };
                due.insert(peer, Instant::now() + wait);
            }
        }
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
