//! tonic over rustls in both directions, with our own configurations (tonic's built-in TLS has
//! no CRLs and no member check). The server side accepts TCP and runs each handshake in its own
//! task, so a slow or hostile client never stalls accepting and a failed handshake never ends
//! the stream tonic serves from. The client side dials TCP, then TLS, per connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{member_of, ServerTls, TlsError};
use crate::domain::model::Country;

/// A client has this long to finish its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress at once. Accepting never waits for a slot: a new connection evicts
/// the oldest pending handshake of the source address holding the most instead, so strangers
/// holding and reopening sockets from a few addresses only evict each other, however fast they
/// reconnect, and a member's handshake from its own address runs to its end.
const MAX_PENDING_HANDSHAKES: usize = 256;
/// Handshakes in progress from one source address; beyond this its own oldest is evicted, so
/// one address cannot take every slot.
const MAX_PENDING_PER_SOURCE: usize = 16;
/// Authenticated connections one member may hold at once; more are closed after the handshake.
/// A node needs one to a peer; the rest of the share covers reconnects and tools.
pub const MAX_CONNECTIONS_PER_MEMBER: usize = 32;
/// Finished handshakes waiting for tonic to pick them up.
const READY_QUEUE: usize = 32;
/// Pause after a failed `accept` (e.g. out of file descriptors), which would otherwise repeat
/// at once in a hot loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// Client side: time allowed to connect (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Client side: time allowed for a response to start.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type ServerStream = server::TlsStream<TcpStream>;

/// Authenticated TLS connections for `tonic::transport::Server::serve_with_incoming`. It never
/// yields an error and never ends on its own: failed or stalled handshakes are logged and
/// dropped, since tonic stops serving at the first error. Dropping it stops accepting and
/// closes the listener.
pub struct Incoming {
    ready: ReceiverStream<Result<MemberConnection, io::Error>>,
}

/// One authenticated connection, counted against its member's share of connections while it
/// lives. Reads, writes and connection info (the peer's certificates) are the TLS stream's.
pub struct MemberConnection {
    inner: ServerStream,
    _share: Option<Share>,
    watch: Arc<Watched>,
}

/// What an established connection needs to be checked again after a reload: the client's
/// chain, and a way to close the connection from outside (a revoked member must not keep
/// the connection it opened before the CRL arrived).
struct Watched {
    peer: std::net::SocketAddr,
    member: Option<Country>,
    chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    closed: std::sync::atomic::AtomicBool,
    /// The waker of the last read that waited, woken on close so the server sees the error.
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Watched {
    fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.wake();
        }
    }

    /// An error once closed; otherwise remembers `cx`'s waker.
    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        *self.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the client's certificate is no longer accepted (reloaded CA or CRL)",
            ));
        }
        Ok(())
    }
}

/// Established connections, checked again whenever the TLS configuration is reloaded.
type Live = std::sync::Mutex<Vec<std::sync::Weak<Watched>>>;

/// Closes every live connection whose client chain `tls` no longer accepts.
fn recheck(live: &Live, tls: &ServerTls) {
    let Some(verifier) = &tls.verifier else {
        return;
    };
    let now = rustls_pki_types::UnixTime::now();
    let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    for watched in live.iter().filter_map(std::sync::Weak::upgrade) {
        let Some((end_entity, intermediates)) = watched.chain.split_first() else {
            continue;
        };
        if let Err(error) = verifier.verify_client_cert(end_entity, intermediates, now) {
            tracing::warn!(
                peer = %watched.peer,
                member = ?watched.member,
                %error,
                "closing an established connection: its certificate is no longer accepted after the reload"
            );
            watched.close();
        }
    }
}

/// A member's place among [`MAX_CONNECTIONS_PER_MEMBER`]; given back when dropped.
struct Share {
    member: Country,
    counts: Arc<std::sync::Mutex<std::collections::HashMap<Country, usize>>>,
}

impl Share {
    /// A place for `member`, unless it holds all its share already.
    fn take(
        counts: &Arc<std::sync::Mutex<std::collections::HashMap<Country, usize>>>,
        member: Country,
    ) -> Option<Share> {
        let mut held = counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(member).or_default();
        if *n >= MAX_CONNECTIONS_PER_MEMBER {
            return None;
        }
        *n += 1;
        Some(Share {
            member,
            counts: counts.clone(),
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.member) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.remove(&self.member);
            }
        }
    }
}

impl tokio::io::AsyncRead for MemberConnection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for MemberConnection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.watch.check(cx)?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl tonic::transport::server::Connected for MemberConnection {
    type ConnectInfo = <ServerStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl Stream for Incoming {
    type Item = Result<MemberConnection, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.ready).poll_next(cx)
    }
}

/// Connections the kernel queues for `accept` (the kernel caps it at `net.core.somaxconn`).
/// Every connection a source holds waits here until accepted, so a queue larger than the
/// sockets a flood holds never drops a member's SYN (a dropped SYN costs the member a one-second
/// retransmission); tokio's default is 1,024.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` for [`incoming`], with a deep accept queue.
pub fn listen(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Accepts connections on `listener` and completes mutual TLS with `config` (see
/// [`super::server_config`]). Must be called inside a tokio runtime.
pub fn incoming(listener: TcpListener, config: Arc<ServerConfig>) -> Incoming {
    incoming_reloadable(listener, tokio::sync::watch::channel(config.into()).1)
}

/// [`incoming`] whose TLS configuration can be replaced while it runs: each new connection's
/// handshake uses the configuration current when it arrives (a reloaded certificate, key or
/// CRL); connections already established keep their session, but each is checked again
/// under the new CA and CRLs (with [`ServerTls::verifier`]) and closed if its client
/// certificate is no longer accepted.
pub fn incoming_reloadable(listener: TcpListener, config: tokio::sync::watch::Receiver<ServerTls>) -> Incoming {
    let (sender, receiver) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, config, sender));
    Incoming {
        ready: ReceiverStream::new(receiver),
    }
}

/// The handshakes in progress, oldest first, with a way to cancel each.
#[derive(Default)]
struct Pending {
    next_id: u64,
    order: std::collections::VecDeque<(u64, std::net::IpAddr)>,
    cancels: std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>,
    per_source: std::collections::HashMap<std::net::IpAddr, usize>,
}

impl Pending {
    /// Registers a handshake from `source`, evicting the oldest from the same source when it
    /// holds its share, or the oldest of the busiest source when every slot is taken. Returns
    /// its id and its cancel signal.
    fn admit(&mut self, source: std::net::IpAddr) -> (u64, tokio::sync::oneshot::Receiver<()>) {
        if self.per_source.get(&source).copied().unwrap_or(0) >= MAX_PENDING_PER_SOURCE {
            self.evict_oldest_of(source);
        }
        if self.order.len() >= MAX_PENDING_HANDSHAKES {
            // Evicting the oldest of all would let a fast enough flood age out every other
            // handshake; the busiest source pays instead (the newcomer's own, on a tie).
            let own = self.per_source.get(&source).copied().unwrap_or(0);
            let most = self.per_source.values().copied().max().unwrap_or(0);
            let victim = self
                .order
                .iter()
                .find(|(_, ip)| {
                    if most > own {
                        self.per_source.get(ip) == Some(&most)
                    } else {
                        *ip == source
                    }
                })
                .map(|(id, _)| *id);
            if let Some(id) = victim {
                self.evict(id);
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        self.order.push_back((id, source));
        self.cancels.insert(id, cancel);
        *self.per_source.entry(source).or_default() += 1;
        (id, cancelled)
    }

    fn evict_oldest_of(&mut self, source: std::net::IpAddr) {
        if let Some(id) = self.order.iter().find(|(_, ip)| *ip == source).map(|(id, _)| *id) {
            self.evict(id);
        }
    }

    /// Forgets handshake `id` (finished, failed or evicted), cancelling it if it still runs.
    fn evict(&mut self, id: u64) {
        if let Some(at) = self.order.iter().position(|(i, _)| *i == id) {
            if let Some((_, source)) = self.order.remove(at) {
                if let Some(n) = self.per_source.get_mut(&source) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_source.remove(&source);
                    }
                }
            }
        }
        if let Some(cancel) = self.cancels.remove(&id) {
            let _ = cancel.send(());
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    mut config: tokio::sync::watch::Receiver<ServerTls>,
    ready: mpsc::Sender<Result<MemberConnection, io::Error>>,
) {
    let pending = Arc::new(std::sync::Mutex::new(Pending::default()));
    let shares = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let live: Arc<Live> = Arc::default();
    let mut reloads = true;
    // Consecutive failed accepts.
    let mut failures: u64 = 0;
    loop {
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            changed = config.changed(), if reloads => {
                match changed {
                    Ok(()) => recheck(&live, &config.borrow_and_update()),
                    // No more reloads: the configuration in hand stays.
                    Err(_) => reloads = false,
                }
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => {
                if failures > 0 {
                    tracing::info!(failures, "accepting TCP connections again");
                    failures = 0;
                }
                pair
            }
            Err(error) => {
                // Out of descriptors (`EMFILE`) lasts until connections close: the loop never
                // ends on it, it pauses and tries again, saying so once per streak rather than
                // ten times a second.
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "accepting a TCP connection failed; retrying every {} ms", ACCEPT_ERROR_PAUSE.as_millis());
                }
                tokio::select! {
                    _ = ready.closed() => return,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                }
            }
        };
        // gRPC sends many small frames; Nagle would delay them.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let (id, cancelled) = pending.lock().unwrap_or_else(|p| p.into_inner()).admit(peer.ip());
        let acceptor = TlsAcceptor::from(config.borrow().config.clone());
        let (ready, pending, shares, live) = (ready.clone(), pending.clone(), shares.clone(), live.clone());
        tokio::spawn(async move {
            let handshake = tokio::select! {
                done = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => Some(done),
                _ = cancelled => None,
            };
            pending.lock().unwrap_or_else(|p| p.into_inner()).evict(id);
            match handshake {
                Some(Ok(Ok(tls))) => {
                    // The member comes from the verified certificate; a certificate naming
                    // none is let through to be refused, with its reason, by the service.
                    let member = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|certs| certs.first())
                        .and_then(|cert| member_of(cert.as_ref()).ok());
                    let share = match member {
                        Some(member) => match Share::take(&shares, member) {
                            Some(share) => Some(share),
                            None => {
                                tracing::warn!(%peer, %member, "connection refused: the member holds {MAX_CONNECTIONS_PER_MEMBER} connections, the limit max_connections_per_member");
                                return;
                            }
                        },
                        None => None,
                    };
                    let chain = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let watch = Arc::new(Watched {
                        peer,
                        member,
                        chain,
                        closed: Default::default(),
                        waker: Default::default(),
                    });
                    {
                        let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
                        live.retain(|w| w.strong_count() > 0);
                        live.push(Arc::downgrade(&watch));
                    }
                    // A send fails only when the server has gone; the connection just closes.
                    drop(
                        ready
                            .send(Ok(MemberConnection {
                                inner: tls,
                                _share: share,
                                watch,
                            }))
                            .await,
                    );
                }
                Some(Ok(Err(error))) => tracing::warn!(%peer, %error, "TLS handshake failed"),
                Some(Err(_)) => tracing::debug!(
                    %peer,
                    "TLS handshake not finished after {} s, dropped",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
                None => tracing::debug!(%peer, "pending TLS handshake evicted by newer connections"),
            }
        });
    }
}

/// A lazily connecting channel to the member `expected` at `endpoint` (`https://host:port`).
/// The server certificate must be valid for `tls_name` (default: the endpoint's host) and name
/// `expected`; `config` comes from [`super::client_config`] for that member. Connect timeout
/// 5 s, request timeout 30 s. Must be called inside a tokio runtime (tonic spawns the
/// channel's worker).
pub fn channel(
    endpoint: &str,
    tls_name: Option<&str>,
    config: Arc<ClientConfig>,
    expected: Country,
) -> Result<Channel, TlsError> {
    let bad = |reason: String| TlsError::Endpoint {
        endpoint: endpoint.to_string(),
        reason,
    };
    let rest = endpoint
        .strip_prefix("https://")
        .ok_or_else(|| bad("must start with https://".into()))?;
    // TLS is done by our connector, below tonic; tonic must see a plain-HTTP URI or it
    // insists on its own TLS configuration.
    let target = Endpoint::from_shared(format!("http://{rest}"))
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT);
    let host = target.uri().host().ok_or_else(|| bad("no host".into()))?.to_string();
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.to_string(),
        None => host,
    };
    let port = target.uri().port_u16().unwrap_or(443);
    let name = tls_name.unwrap_or(&host);
    let server_name =
        ServerName::try_from(name.to_string()).map_err(|e| bad(format!("invalid TLS name {name:?}: {e}")))?;
    let dial = Dial {
        host,
        port,
        server_name,
        connector: TlsConnector::from(config),
        expected,
    };
    let connector = tower::service_fn(move |_: Uri| dial.clone().connect());
    Ok(target.connect_with_connector_lazy(connector))
}

/// What one connection attempt needs.
#[derive(Clone)]
struct Dial {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    connector: TlsConnector,
    expected: Country,
}

impl Dial {
    async fn connect(self) -> io::Result<TokioIo<client::TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
        tcp.set_nodelay(true)?;
        let tls = self.connector.connect(self.server_name, tcp).await?;
        // The verifier in the config has already checked the member; checking again costs one
        // parse per connection and holds even if the config was built for another member.
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first());
        let found = match leaf {
            Some(cert) => member_of(cert),
            None => Err(TlsError::NoMemberSan),
        };
        match found {
            Ok(member) if member == self.expected => Ok(TokioIo::new(tls)),
            Ok(member) => Err(refused(TlsError::MemberMismatch {
                found: member,
                expected: self.expected,
            })),
            Err(error) => Err(refused(error)),
        }
    }
}

fn refused(error: TlsError) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, error)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn one_source_never_holds_more_than_its_share_and_its_oldest_goes_first() {
        let mut pending = Pending::default();
        let mut signals: Vec<_> = (0..MAX_PENDING_PER_SOURCE + 3).map(|_| pending.admit(ip(2))).collect();
        assert_eq!(pending.order.len(), MAX_PENDING_PER_SOURCE);
        assert_eq!(pending.per_source[&ip(2)], MAX_PENDING_PER_SOURCE);
        // The three oldest were cancelled, the rest still run.
        for (i, (_, cancelled)) in signals.iter_mut().enumerate() {
            let evicted = cancelled.try_recv().is_ok();
            assert_eq!(evicted, i < 3, "handshake {i}");
        }
    }

    #[test]
    fn a_new_connection_evicts_the_oldest_of_the_busiest_source_when_every_slot_is_taken() {
        let mut pending = Pending::default();
        let mut signals = Vec::new();
        // A member's handshake first, then strangers from 16 addresses fill every other slot.
        let (member, _) = pending.admit(ip(1));
        for i in 0..MAX_PENDING_HANDSHAKES - 1 {
            signals.push(pending.admit(ip(2 + (i % 16) as u8)));
        }
        assert_eq!(pending.order.len(), MAX_PENDING_HANDSHAKES);
        // However many more strangers come, only strangers are evicted, the oldest first.
        for i in 0..10_000 {
            signals.push(pending.admit(ip(2 + (i % 16) as u8)));
            assert_eq!(pending.order.len(), MAX_PENDING_HANDSHAKES);
            assert_eq!(
                pending.order.front().map(|p| p.0),
                Some(member),
                "the member's handshake is kept"
            );
        }
        assert!(signals[0].1.try_recv().is_ok(), "the oldest stranger was evicted");
        assert!(
            signals.last_mut().unwrap().1.try_recv().is_err(),
            "the newest still runs"
        );
        // A second member from its own address takes a stranger's slot, not the first member's.
        let (second, _) = pending.admit(ip(250));
        assert_eq!(pending.per_source[&ip(1)], 1);
        assert_eq!(pending.per_source[&ip(250)], 1);
        pending.evict(member);
        pending.evict(second);
        assert_eq!(pending.order.len(), MAX_PENDING_HANDSHAKES - 2);
        assert!(!pending.per_source.contains_key(&ip(250)));
    }

    #[test]
    fn a_newcomer_from_a_quiet_source_evicts_the_oldest_of_the_busiest() {
        let mut pending = Pending::default();
        let mut signals = Vec::new();
        for i in 0..MAX_PENDING_HANDSHAKES {
            signals.push(pending.admit(ip((i % 250) as u8 + 1)));
        }
        // Sources 1..=6 hold two, the rest one: a newcomer from a source of one evicts the
        // oldest of the busiest, source 1's first handshake.
        pending.admit(ip(251));
        assert!(signals[0].1.try_recv().is_ok());
        assert_eq!(pending.per_source[&ip(1)], 1);
        assert_eq!(pending.order.len(), MAX_PENDING_HANDSHAKES);
    }
}
