//! Anti-entropy: pull every feed a peer holds that is ahead of ours (or disagrees with ours),
//! verify each entry, and place it. Relayed feeds are pulled like any other: authenticity comes
//! from the publisher's signature, not from the peer that relays it.

use std::sync::Arc;

use tonic::transport::Channel;

use super::{MAX_FETCH_ENTRIES, MAX_MESSAGE_BYTES};
use crate::config::Peer;
use crate::dataset::{EntryHeader, Placement};
use crate::date::unix_now;
use crate::hex;
use crate::node::{Node, NodeError};
use crate::proto;
use crate::proto::exchange_client::ExchangeClient;
use crate::record::Country;

/// Sync failures with one peer.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The peer could not be reached or refused the call.
    #[error("peer {peer}: {message}")]
    Rpc { peer: Country, message: String },
    /// A TLS configuration problem on this node.
    #[error("peer {peer}: {source}")]
    Tls {
        peer: Country,
        source: crate::tls::TlsError,
    },
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl SyncError {
    /// The error without the peer's name, for lines that already start with it.
    pub fn detail(&self) -> String {
        match self {
            SyncError::Rpc { message, .. } => message.clone(),
            SyncError::Tls { source, .. } => source.to_string(),
            SyncError::Node(e) => e.to_string(),
        }
    }
}

/// What one pull from one peer brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSync {
    pub appended: u64,
    pub forks: u64,
    /// Entries refused, with the reason (publisher, seq: reason).
    pub rejected: Vec<String>,
    /// Feeds left with a gap the peer could not fill.
    pub gaps: u64,
}

/// A gRPC client for a peer over mutual TLS that insists the server is `peer.country`.
pub fn client(node: &Node, peer: &Peer) -> Result<ExchangeClient<Channel>, SyncError> {
    let tls = |source| SyncError::Tls {
        peer: peer.country,
        source,
    };
    let config = crate::tls::client_config(&node.config.tls, peer.country).map_err(tls)?;
    let channel = crate::tls::channel(&peer.endpoint, peer.tls_name.as_deref(), config, peer.country).map_err(tls)?;
    Ok(ExchangeClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

fn rpc_error(peer: Country, status: tonic::Status) -> SyncError {
    let mut message = status.message().to_string();
    if message.is_empty() {
        message = format!("{:?}", status.code());
    }
    // Transport errors hide the cause (e.g. a certificate mismatch) in the source chain; layers
    // often repeat their cause's text, which is said once.
    let mut source = std::error::Error::source(&status);
    while let Some(s) = source {
        let cause = s.to_string();
        if !message.contains(&cause) {
            message = format!("{message}: {cause}");
        }
        source = s.source();
    }
    // With TLS 1.3 a server that refuses the client certificate does so after the client has
    // finished its handshake, so the client often sees only a closed connection.
    if status.code() == tonic::Code::Unavailable
        && ["broken pipe", "connection closed", "connection reset"]
            .iter()
            .any(|m| message.to_ascii_lowercase().contains(m))
    {
        message.push_str(" (if the peer refused this node's certificate, its log says why)");
    }
    SyncError::Rpc { peer, message }
}

/// Pulls everything `peer` holds that this node lacks, and records the outcome in the store.
pub async fn pull(node: &Arc<Node>, peer: &Peer, client: &mut ExchangeClient<Channel>) -> Result<PeerSync, SyncError> {
    let started = unix_now();
    let result = pull_inner(node, peer, client).await;
    let mut status = node.store.peer_status(peer.country).map_err(NodeError::from)?;
    status.last_attempt = Some(started);
    match &result {
        Ok(sync) => {
            status.last_success = Some(unix_now());
            status.last_error = sync.rejected.first().cloned();
            status.entries_received += sync.appended;
        }
        Err(e) => status.last_error = Some(e.to_string()),
    }
    node.store
        .set_peer_status(peer.country, &status)
        .map_err(NodeError::from)?;
    result
}

async fn pull_inner(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
) -> Result<PeerSync, SyncError> {
    let heads = client
        .heads(proto::HeadsRequest {})
        .await
        .map_err(|s| rpc_error(peer.country, s))?
        .into_inner()
        .heads;
    let mut report = PeerSync::default();
    for head in heads {
        let Some(publisher) = Country::parse(&head.publisher).filter(|c| node.config.consortium.member(*c).is_some())
        else {
            report
                .rejected
                .push(format!("head for unknown publisher {:?}", head.publisher));
            continue;
        };
        let local = node.store.head(publisher).map_err(NodeError::from)?;
        let local_seq = local.map_or(0, |h| h.seq);
        if head.seq > local_seq {
            let mut from = local_seq + 1;
            while from <= head.seq {
                let to = head.seq.min(from + MAX_FETCH_ENTRIES - 1);
                match fetch_range(node, peer, client, publisher, from, to, &mut report).await? {
                    Fetched::Complete => from = to + 1,
                    Fetched::Stopped => break,
                    Fetched::BrokenAt(seq) => {
                        // The peer's history differs before `seq`: fetch its version of the
                        // entry we hold at seq - 1, which is the fork evidence.
                        if seq > 1 {
                            fetch_range(node, peer, client, publisher, seq - 1, seq - 1, &mut report).await?;
                        }
                        break;
                    }
                }
            }
        } else if head.seq > 0 {
            // Same or shorter feed: a different digest at the peer's head seq is a fork.
            let ours = node.store.entry(publisher, head.seq).map_err(NodeError::from)?;
            let our_digest = ours
                .and_then(|e| e.envelope)
                .map(|env| crate::dataset::envelope::sha256(&env.payload));
            if our_digest.is_some_and(|d| d.as_slice() != head.digest.as_slice()) {
                fetch_range(node, peer, client, publisher, head.seq, head.seq, &mut report).await?;
            }
        }
        fetch_missing_payloads(node, peer, client, publisher, head.seq, &mut report).await?;
    }
    Ok(report)
}

/// Entries that reached this node as header only (through a relay outside their audience)
/// are asked for again from a peer that may hold the payload: one the audience admits too.
async fn fetch_missing_payloads(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    peer_head: u64,
    report: &mut PeerSync,
) -> Result<(), SyncError> {
    for seq in node.store.lacking_payload(publisher).map_err(NodeError::from)? {
        if seq > peer_head {
            break;
        }
        let header = node
            .store
            .entry(publisher, seq)
            .map_err(NodeError::from)?
            .and_then(|e| e.envelope)
            .and_then(|env| EntryHeader::decode(&env.payload).ok());
        if header.is_some_and(|h| h.admits(node.country()) && h.admits(peer.country)) {
            fetch_range(node, peer, client, publisher, seq, seq, report).await?;
        }
    }
    Ok(())
}

/// The (publisher, seq) an entry claims, read from its header before any work is spent on it;
/// `None` when the header does not decode (verification then names the fault).
fn claimed(entry: &proto::Entry) -> Option<(Country, u64)> {
    let env = entry.envelope.as_ref()?;
    let header = EntryHeader::decode(&env.payload).ok()?;
    Some((header.publisher, header.seq))
}

/// How a range fetch ended.
enum Fetched {
    Complete,
    /// A gap, a rejected entry or a short stream: try again next round.
    Stopped,
    /// The entry at this seq does not chain onto the held feed.
    BrokenAt(u64),
}

/// Fetches and places `publisher[from..=to]`.
async fn fetch_range(
    node: &Arc<Node>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    from: u64,
    to: u64,
    report: &mut PeerSync,
) -> Result<Fetched, SyncError> {
    let mut stream = client
        .fetch(proto::FetchRequest {
            publisher: publisher.to_string(),
            from_seq: from,
            to_seq: to,
        })
        .await
        .map_err(|s| rpc_error(peer.country, s))?
        .into_inner();
    let mut expected = from;
    while let Some(entry) = stream.message().await.map_err(|s| rpc_error(peer.country, s))? {
        if expected > to {
            report.rejected.push(format!(
                "{publisher}: peer {} sent more entries than seq {from}..={to}",
                peer.country
            ));
            tracing::warn!(peer = %peer.country, %publisher, from, to, outcome = "rejected", reason = "entries beyond the requested range");
            break;
        }
        if let Some((p, seq)) = claimed(&entry).filter(|c| *c != (publisher, expected)) {
            let reason = format!(
                "{publisher} seq {expected}: peer {} sent {p} seq {seq} instead",
                peer.country
            );
            tracing::warn!(peer = %peer.country, %publisher, seq = expected, outcome = "rejected", %reason);
            report.rejected.push(reason);
            return Ok(Fetched::Stopped);
        }
        let outcome = {
            let node = node.clone();
            tokio::task::spawn_blocking(move || node.accept(entry))
                .await
                .map_err(|e| SyncError::Rpc {
                    peer: peer.country,
                    message: format!("verification task failed: {e}"),
                })?
        };
        match outcome {
            Ok((v, placement)) => {
                let seq = v.header.seq;
                let digest = hex::encode(&v.digest[..8]);
                match placement {
                    Placement::Append => {
                        report.appended += 1;
                        tracing::info!(peer = %peer.country, publisher = %v.header.publisher, seq, %digest, outcome = "accepted");
                    }
                    Placement::Replay => {}
                    Placement::Fork { held } => {
                        report.forks += 1;
                        tracing::warn!(peer = %peer.country, publisher = %v.header.publisher, seq, held = %hex::encode(&held[..8]), conflicting = %digest, outcome = "fork", "publisher equivocates: two signed headers for one seq");
                    }
                    Placement::Gap { expected } => {
                        report.gaps += 1;
                        tracing::warn!(peer = %peer.country, publisher = %v.header.publisher, seq, expected, outcome = "gap");
                        return Ok(Fetched::Stopped);
                    }
                    Placement::BrokenChain => {
                        report.rejected.push(format!(
                            "{} seq {seq}: prev does not match the held feed",
                            v.header.publisher
                        ));
                        tracing::warn!(peer = %peer.country, publisher = %v.header.publisher, seq, outcome = "rejected", reason = "broken chain");
                        return Ok(Fetched::BrokenAt(seq));
                    }
                }
            }
            Err(NodeError::Verify(e)) => {
                let reason = format!("{publisher} seq {expected}: {e}");
                tracing::warn!(peer = %peer.country, %publisher, seq = expected, outcome = "rejected", reason = %e);
                report.rejected.push(reason);
                return Ok(Fetched::Stopped);
            }
            Err(e) => return Err(e.into()),
        }
        expected += 1;
    }
    node.store.flush().map_err(NodeError::from)?;
    Ok(if expected > to {
        Fetched::Complete
    } else {
        Fetched::Stopped
    })
}

/// Tells `peer` about our heads so it pulls at once.
pub async fn announce(node: &Node, client: &mut ExchangeClient<Channel>, peer: Country) -> Result<(), SyncError> {
    let heads = node
        .store
        .heads()
        .map_err(NodeError::from)?
        .into_iter()
        .map(|(p, h)| proto::Head {
            publisher: p.to_string(),
            seq: h.seq,
            digest: h.digest.to_vec(),
        })
        .collect();
    client
        .announce(proto::AnnounceRequest { heads })
        .await
        .map_err(|s| rpc_error(peer, s))?;
    Ok(())
}

/// Clients for every configured peer, reused across rounds (channels reconnect lazily).
pub struct Syncer {
    node: Arc<Node>,
    clients: tokio::sync::Mutex<std::collections::HashMap<Country, ExchangeClient<Channel>>>,
}

impl Syncer {
    pub fn new(node: Arc<Node>) -> Syncer {
        Syncer {
            node,
            clients: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    async fn client_for(&self, peer: &Peer) -> Result<ExchangeClient<Channel>, SyncError> {
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&peer.country) {
            return Ok(c.clone());
        }
        let c = client(&self.node, peer)?;
        clients.insert(peer.country, c.clone());
        Ok(c)
    }

    /// Pulls from one configured peer; every pull, periodic or asked for, counts in the metrics.
    pub async fn pull_from(&self, peer: Country) -> Result<PeerSync, SyncError> {
        let Some(p) = self.node.config.peers.iter().find(|p| p.country == peer).cloned() else {
            return Err(SyncError::Rpc {
                peer,
                message: "not a configured peer".into(),
            });
        };
        let started = std::time::Instant::now();
        let result = match self.client_for(&p).await {
            Ok(mut client) => pull(&self.node, &p, &mut client).await,
            Err(e) => Err(e),
        };
        self.node
            .metrics
            .record_round(peer.as_str(), started.elapsed(), &result);
        result
    }

    /// Pulls from every configured peer, one after another (a small consortium; ordering
    /// keeps load on each peer low), and returns each outcome.
    pub async fn pull_all(&self) -> Vec<(Country, Result<PeerSync, SyncError>)> {
        let mut out = Vec::new();
        for p in self.node.config.peers.clone() {
            out.push((p.country, self.pull_from(p.country).await));
        }
        out
    }

    /// Announces our heads to every peer; failures are logged and otherwise ignored (the
    /// periodic pull covers them).
    pub async fn announce_all(&self) {
        for p in self.node.config.peers.clone() {
            match self.client_for(&p).await {
                Ok(mut c) => {
                    if let Err(e) = announce(&self.node, &mut c, p.country).await {
                        tracing::debug!(peer = %p.country, error = %e, "announce failed");
                    }
                }
                Err(e) => tracing::warn!(peer = %p.country, error = %e, "no client for peer"),
            }
        }
    }
}

/// A human summary of a sync round, one line per peer, and the one-line reason when a peer failed.
pub fn summarize(results: &[(Country, Result<PeerSync, SyncError>)]) -> (String, Option<String>) {
    let mut text = String::new();
    let mut failures = Vec::new();
    for (peer, r) in results {
        match r {
            Ok(s) => {
                text.push_str(&format!("{peer}: {} new entries", s.appended));
                if s.forks > 0 {
                    text.push_str(&format!(", {} FORKS detected", s.forks));
                }
                if s.gaps > 0 {
                    text.push_str(&format!(", {} feeds with gaps", s.gaps));
                }
                for r in &s.rejected {
                    text.push_str(&format!("\n  rejected: {r}"));
                }
            }
            Err(e) => {
                let detail = e.detail();
                failures.push(format!("{peer}: {detail}"));
                text.push_str(&format!("{peer}: failed: {detail}"));
            }
        }
        text.push('\n');
    }
    if results.is_empty() {
        text.push_str("no peers configured\n");
    }
    // One line for stderr: how many peers failed, and the first one's error.
    let reason = failures.first().map(|first| {
        format!(
            "sync failed with {} of {} peers; {}",
            failures.len(),
            results.len(),
            first.replace('\n', " ")
        )
    });
    (text, reason)
}
