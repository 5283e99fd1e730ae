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
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{member_of, TlsError};
use crate::model::Country;

/// A client has this long to finish its handshake before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond this, accepting waits. Each costs a task and a
/// socket, so a flood of clients that never finish cannot exhaust the node.
const MAX_PENDING_HANDSHAKES: usize = 256;
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
    ready: ReceiverStream<Result<ServerStream, io::Error>>,
}

impl Stream for Incoming {
    type Item = Result<ServerStream, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.ready).poll_next(cx)
    }
}

/// Accepts connections on `listener` and completes mutual TLS with `config` (see
/// [`super::server_config`]). Must be called inside a tokio runtime.
pub fn incoming(listener: TcpListener, config: Arc<ServerConfig>) -> Incoming {
    let (sender, receiver) = mpsc::channel(READY_QUEUE);
    tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), sender));
    Incoming {
        ready: ReceiverStream::new(receiver),
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<Result<ServerStream, io::Error>>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            _ = ready.closed() => return,
            permit = pending.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                // Only a closed semaphore fails, and nothing closes this one.
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = ready.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accepting a TCP connection failed");
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
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
            drop(permit);
            match handshake {
                // A send fails only when the server has gone; the connection just closes.
                Ok(Ok(tls)) => drop(ready.send(Ok(tls)).await),
                Ok(Err(error)) => tracing::warn!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::warn!(
                    %peer,
                    "TLS handshake not finished after {} s, dropped",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
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
