//! The plain-HTTP listeners (the dashboard, `/metrics`, `/healthz`, `/ready`): serves an axum
//! `Router` on a `TcpListener` with deadlines and caps, so that half-sent or idle requests
//! cannot pile up. Each connection has [`Limits::header_read`] to send its request head and is
//! closed after [`Limits::idle`] without a byte either way; a listener holds at most
//! [`Limits::max_connections`]; and all of them together hold at most a quarter of the
//! process's file-descriptor limit, so these loopback ports can never starve the gRPC
//! listener of descriptors. This module never binds a port and never knows what it serves.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

/// The deadlines and the cap of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time from the start of a request head to its blank line; hyper closes the connection
    /// when it runs out (a half-sent request holds nothing longer than this).
    pub header_read: Duration,
    /// Time without a byte read or written; then the connection is closed, whatever it was
    /// doing (waiting between keep-alive requests, a body trickling, a reader that stopped).
    pub idle: Duration,
    /// Connections held at once. Past it, a new connection is answered 503 and closed at once:
    /// the newest pays, not the oldest, because evicting the oldest would let a flood cut off
    /// an operator's page load in progress, whereas a refused newcomer just retries, and the
    /// held ones are gone within `header_read` or `idle` anyway.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// How long, after the stop signal, a connection may finish the response it is writing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Pause after a failed `accept` (e.g. `EMFILE`): the listener backs off instead of spinning,
/// and keeps accepting once descriptors are free again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The answer to a connection over the cap, written without reading its request.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\n\
content-length: 38\r\n\r\ntoo many connections: try again later\n";

/// File descriptors all HTTP listeners of the process may hold together: a quarter of the soft
/// `RLIMIT_NOFILE`. The other three quarters stay for what the node cannot do without: the
/// gRPC listener (itself capped: pending handshakes and connections per member), outgoing
/// connections to peers, the store's files and the admin socket.
///
/// Why a count of our own connections and not a count of `/proc/self/fd` before each accept:
/// the count is exact for what these listeners hold, costs nothing per connection, and cannot
/// race with another task opening a file between the look and the accept; reading the
/// directory would cost a scan per connection of a flood and is Linux-only. The limit itself
/// is read once from `/proc/self/limits` (the library forbids `unsafe`, so no `getrlimit`);
/// where that file does not exist, 1,024 (the usual default soft limit) is assumed.
fn process_budget() -> &'static Arc<Semaphore> {
    static BUDGET: OnceLock<Arc<Semaphore>> = OnceLock::new();
    BUDGET.get_or_init(|| {
        let limit = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|text| soft_open_files(&text))
            .unwrap_or(1024);
        Arc::new(Semaphore::new(
            (limit / 4).clamp(1, Semaphore::MAX_PERMITS as u64) as usize
        ))
    })
}

/// The soft limit on open files from the text of `/proc/<pid>/limits`.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    match line["Max open files".len()..].split_whitespace().next()? {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Serves `router` on `listener` within `limits` until `stop` changes; then stops accepting,
/// gives open connections [`SHUTDOWN_GRACE`] to finish and closes the rest. `what` names the
/// listener in the log.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    what: &'static str,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    // Consecutive failed accepts, so a streak is logged once.
    let mut failures: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => {
                failures = 0;
                tcp
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(listener = what, %error, "accepting a connection failed; retrying every {} ms", ACCEPT_ERROR_PAUSE.as_millis());
                }
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        let (Ok(slot), Ok(descriptor)) = (
            slots.clone().try_acquire_owned(),
            process_budget().clone().try_acquire_owned(),
        ) else {
            // Best effort: a client that does not read gets nothing, and the socket closes now.
            let _ = tcp.try_write(BUSY);
            tracing::debug!(listener = what, "connection refused: the listener holds its maximum");
            continue;
        };
        let (router, stop) = (router.clone(), stop.clone());
        connections.spawn(connection(tcp, router, limits, stop, (slot, descriptor)));
    }
    connections.close();
    connections.wait().await;
}

/// Serves one connection until it ends, stays idle past `limits.idle`, or the stop signal's
/// grace runs out. The permits are given back when it returns.
async fn connection(
    tcp: TcpStream,
    router: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
) {
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = Active {
        inner: tcp,
        started,
        last: activity.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    tokio::pin!(conn);
    loop {
        let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
        let idle_until = last + limits.idle;
        tokio::select! {
            _ = &mut conn => return,
            _ = tokio::time::sleep_until(idle_until) => {
                // Activity since the deadline was computed moves it on; otherwise, close.
                let last = started + Duration::from_millis(activity.load(Ordering::Relaxed));
                if last + limits.idle <= Instant::now() {
                    return;
                }
            }
            _ = stop.changed() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(SHUTDOWN_GRACE, &mut conn).await;
                return;
            }
        }
    }
}

/// A socket that records when a byte last went either way (milliseconds since `started`).
struct Active {
    inner: TcpStream,
    started: Instant,
    last: Arc<AtomicU64>,
}

impl Active {
    fn touch(&self) {
        let since = Instant::now().saturating_duration_since(self.started);
        self.last
            .store(u64::try_from(since.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

impl AsyncRead for Active {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl AsyncWrite for Active {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, bytes);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             63455                63455                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(soft_open_files(text), Some(1024));
        assert_eq!(
            soft_open_files("Max open files            unlimited            unlimited            files\n"),
            Some(u64::MAX)
        );
        assert_eq!(soft_open_files("Max processes 10 10 processes\n"), None);
    }
}
