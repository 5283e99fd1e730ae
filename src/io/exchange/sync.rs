//! Anti-entropy: pull every feed a peer holds that is ahead of ours (or disagrees with ours),
//! verify each entry, and place it. Relayed feeds are pulled like any other: authenticity comes
//! from the publisher's signature, not from the peer that relays it.

use std::sync::Arc;

use tonic::transport::Channel;

use super::{
    blocking, AcceptError, Feeds, FeedsError, MAX_ATTESTATIONS, MAX_ATTESTATIONS_BYTES, MAX_FETCH_ENTRIES,
    MAX_HEADS_BYTES, MAX_MESSAGE_BYTES,
};
use crate::domain::dataset::{EntryHeader, Placement};
use crate::domain::date::unix_now;
use crate::domain::hex;
use crate::domain::model::Country;
use crate::io::config::Peer;
use crate::io::tls::TlsFiles;
use crate::proto;
use crate::proto::exchange_client::ExchangeClient;

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
        source: crate::io::tls::TlsError,
    },
    /// This node failed during the pull (its store).
    #[error(transparent)]
    Local(#[from] FeedsError),
}

impl SyncError {
    /// The error without the peer's name, for lines that already start with it.
    pub fn detail(&self) -> String {
        match self {
            SyncError::Rpc { message, .. } => message.clone(),
            SyncError::Tls { source, .. } => source.to_string(),
            SyncError::Local(e) => e.to_string(),
        }
    }
}

/// What one pull from one peer brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerSync {
    pub appended: u64,
    pub forks: u64,
    /// Entries and heads refused, each with its reason: the first [`MAX_REJECTIONS_KEPT`] of
    /// a pull; `rejected_by_reason` counts them all.
    pub rejected: Vec<Rejection>,
    /// Every refusal of the pull, by reason (a fixed set, whatever the peer sent).
    pub rejected_by_reason: std::collections::BTreeMap<RejectReason, u64>,
    /// Feeds left with a gap the peer could not fill.
    pub gaps: u64,
    /// The peer said nothing changed since the last complete pull: nothing was fetched.
    pub quiet: bool,
    /// Attestations the peer's answers carried, new to this node or not.
    pub notes_read: u64,
}

/// Why something a peer sent was refused: a fixed set, so metrics count by it and a peer's
/// bytes never become a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// A head names a publisher outside the consortium.
    UnknownPublisher,
    /// The peer sent an entry other than the one asked for, or more than the range.
    UnrequestedEntry,
    /// The entry does not chain onto the feed held here.
    BrokenChain,
    /// The entry failed verification; the label says which check.
    Invalid(&'static str),
}

impl RejectReason {
    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            RejectReason::UnknownPublisher => "unknown_publisher",
            RejectReason::UnrequestedEntry => "unrequested_entry",
            RejectReason::BrokenChain => "broken_chain",
            RejectReason::Invalid(label) => label,
        }
    }
}

/// One refusal: its reason and a line for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// A peer's text quoted in bounded length: what this node keeps or prints never grows with it.
fn quoted(text: &str) -> String {
    let shown: String = text.chars().take(16).collect();
    let more = if text.chars().count() > 16 { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// The longest one pull from one peer may take, start to end.
pub const PULL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);
/// Peers pulled at once.
pub const MAX_CONCURRENT_PULLS: usize = 4;

/// Refusals kept with their text per pull: a peer that sends a million bad heads costs a count,
/// not a million lines.
pub const MAX_REJECTIONS_KEPT: usize = 64;
/// Fork evidence fetched per pull on the strength of attestations (one per publisher): a
/// hostile peer's notes cannot make a pull fetch without end.
pub const MAX_EVIDENCE_PER_PULL: usize = 16;

impl PeerSync {
    /// Counts a refusal, and keeps its text while fewer than [`MAX_REJECTIONS_KEPT`] are kept.
    pub fn reject(&mut self, rejection: Rejection) {
        *self.rejected_by_reason.entry(rejection.reason).or_default() += 1;
        if self.rejected.len() < MAX_REJECTIONS_KEPT {
            self.rejected.push(rejection);
        }
    }

    /// All refusals of the pull, kept or only counted.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }
}

/// A gRPC client for a peer over mutual TLS that insists the server is `peer.country`.
pub fn client(tls_files: &TlsFiles, peer: &Peer) -> Result<ExchangeClient<Channel>, SyncError> {
    let tls = |source| SyncError::Tls {
        peer: peer.country,
        source,
    };
    let config = crate::io::tls::client_config(tls_files, peer.country).map_err(tls)?;
    let channel =
        crate::io::tls::channel(&peer.endpoint, peer.tls_name.as_deref(), config, peer.country).map_err(tls)?;
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

/// What this node saw of a peer after its last complete pull (SPEC §17 quiet rounds): the
/// peer's feeds summary with this node's own as that pull began, and the peer's attestations
/// summary. When neither side's feeds changed since, a round asks one small question and
/// fetches nothing; when the peer's notes did not change, it reads none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    feeds: Option<([u8; 32], [u8; 32])>,
    attestations: Option<[u8; 32]>,
}

/// Pulls everything `peer` holds that this node lacks; the node hears of the outcome through
/// [`Feeds::pulled`].
pub async fn pull(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
) -> Result<PeerSync, SyncError> {
    pull_after(feeds, peer, client, Seen::default(), &NotesTurn::default())
        .await
        .0
}

/// Held by a pull while it reads the attestations new to this node from its peer and keeps
/// them, so the next pull asks with those held: in a round where many members re-attested, a
/// new note crosses the wire once, from the first peer that has it, not once per peer (N² bytes
/// a round rather than N³). A pull waits for its turn at most [`TURN_WAIT`], then asks anyway:
/// a peer that answers slowly delays the others' notes by that much, never more.
pub type NotesTurn = tokio::sync::Mutex<()>;

/// How long a pull waits for its turn to read new attestations.
pub const TURN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// [`pull`], given what the last pull from `peer` saw; returns what this one saw.
pub async fn pull_after(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    seen: Seen,
    turn: &NotesTurn,
) -> (Result<PeerSync, SyncError>, Seen) {
    let started_at = unix_now();
    let started = std::time::Instant::now();
    // The whole pull has a deadline: a peer that answers slowly (or not at all, after a start)
    // costs at most this, however it paces its answers.
    let (result, next) = match tokio::time::timeout(PULL_DEADLINE, pull_inner(feeds, peer, client, seen, turn)).await {
        Ok(Ok((report, next))) => (Ok(report), next),
        Ok(Err(e)) => (Err(e), Seen::default()),
        Err(_) => (
            Err(SyncError::Rpc {
                peer: peer.country,
                message: format!(
                    "the pull did not finish within {} s (pull_deadline)",
                    PULL_DEADLINE.as_secs()
                ),
            }),
            Seen::default(),
        ),
    };
    let f = feeds.clone();
    let (country, took) = (peer.country, started.elapsed());
    let result = blocking(move || {
        f.pulled(country, started_at, took, &result);
        result
    })
    .await;
    (result, next)
}

async fn pull_inner(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    seen: Seen,
    turn: &NotesTurn,
) -> Result<(PeerSync, Seen), SyncError> {
    // This node's own summary first: anything it keeps or loses from here on makes the next
    // round ask in full.
    let ours = feeds.feeds_summary();
    let known = seen
        .feeds
        .filter(|(_, local)| *local == ours)
        .map(|(theirs, _)| theirs.to_vec())
        .unwrap_or_default();
    // A Heads answer names one feed per member: it is small, and bounded far below a Fetch.
    let answer = client
        .clone()
        .max_decoding_message_size(MAX_HEADS_BYTES)
        .heads(proto::HeadsRequest { known })
        .await
        .map_err(|s| rpc_error(peer.country, s))?
        .into_inner();
    let mut report = PeerSync {
        quiet: answer.unchanged,
        ..PeerSync::default()
    };
    let heads = if answer.unchanged { Vec::new() } else { answer.heads };
    for head in heads {
        // A member-to-be's feed is fetched too: it holds its approval of the version adding it.
        let Some(publisher) = Country::parse(&head.publisher).filter(|c| feeds.knows_publisher(*c)) else {
            report.reject(Rejection {
                reason: RejectReason::UnknownPublisher,
                detail: format!("head for unknown publisher {}", quoted(&head.publisher)),
            });
            continue;
        };
        let local = call(feeds, move |f| f.head(publisher)).await?;
        let local_seq = local.map_or(0, |h| h.seq);
        if head.seq > local_seq {
            let mut from = local_seq + 1;
            while from <= head.seq {
                let to = head.seq.min(from + MAX_FETCH_ENTRIES - 1);
                match fetch_range(feeds, peer, client, publisher, from, to, &mut report).await? {
                    Fetched::Complete => from = to + 1,
                    Fetched::Stopped => break,
                    Fetched::BrokenAt(seq) => {
                        // The peer's history differs before `seq`: fetch its version of the
                        // entry we hold at seq - 1, which is the fork evidence.
                        if seq > 1 {
                            fetch_range(feeds, peer, client, publisher, seq - 1, seq - 1, &mut report).await?;
                        }
                        break;
                    }
                }
            }
        } else if head.seq > 0 {
            // Same or shorter feed: a different digest at the peer's head seq is a fork.
            let seq = head.seq;
            let ours = call(feeds, move |f| f.entry(publisher, seq)).await?;
            let our_digest = ours
                .and_then(|e| e.envelope)
                .map(|env| crate::domain::dataset::envelope::sha256(&env.payload));
            if our_digest.is_some_and(|d| d.as_slice() != head.digest.as_slice()) {
                fetch_range(feeds, peer, client, publisher, head.seq, head.seq, &mut report).await?;
            }
        }
        fetch_missing_payloads(feeds, peer, client, publisher, head.seq, &mut report).await?;
    }
    let mut next = Seen::default();
    // Only a pull that took everything the heads named lets the next round skip them.
    let complete = report.rejected_total() == 0 && report.gaps == 0;
    if let Ok(summary) = <[u8; 32]>::try_from(answer.summary.as_slice()) {
        if answer.unchanged || complete {
            next.feeds = Some((summary, ours));
        }
    }
    // A fork the peer's attestations name (its own or relayed) is fetched from the peer as
    // evidence: a split view reaches members that never sync with the two sides (SPEC §12).
    let (wanted, attestations, notes_read) = fetch_attestations(feeds, peer, client, seen.attestations, turn).await;
    report.notes_read = notes_read;
    next.attestations = attestations;
    for (publisher, seq, digest) in wanted {
        // Evidence is extra: a peer that cannot serve it costs the pull nothing else.
        if let Err(e) = fetch_one(feeds, peer, client, publisher, seq, digest, &mut report).await {
            tracing::debug!(peer = %peer.country, %publisher, seq, error = %e, "fork evidence not fetched");
        }
    }
    Ok((report, next))
}

/// Reads the peer's attestations (SPEC §12) and keeps those that check out; returns the headers
/// the new ones name that conflict with this node's feeds (at most [`MAX_EVIDENCE_PER_PULL`]),
/// and the peer's attestations summary to send next time. When `known` is the peer's summary,
/// one small answer says nothing changed. A peer that does not answer, or sends notes that do
/// not verify, costs the pull nothing else.
async fn fetch_attestations(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    known: Option<[u8; 32]>,
    turn: &NotesTurn,
) -> (Vec<(Country, u64, [u8; 32])>, Option<[u8; 32]>, u64) {
    if let Some(known) = known {
        let answer = client
            .clone()
            .max_decoding_message_size(MAX_ATTESTATIONS_BYTES)
            .attestations(proto::AttestationsRequest {
                held: Vec::new(),
                known: known.to_vec(),
            })
            .await;
        match answer {
            Ok(r) if r.get_ref().unchanged => return (Vec::new(), Some(known), 0),
            // Changed: ask again with the times held, so only newer notes come.
            Ok(_) => {}
            Err(status) => {
                tracing::debug!(peer = %peer.country, error = %status.message(), "attestations not read");
                return (Vec::new(), None, 0);
            }
        }
    }
    // The turn is held until the notes read are kept (or the pull gives up on them).
    let _turn = tokio::time::timeout(TURN_WAIT, turn.lock()).await.ok();
    let held = match call(feeds, |f| f.attestation_times()).await {
        Ok(times) => times
            .into_iter()
            .map(|(member, time)| proto::AttestedAt {
                member: member.to_string(),
                time,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let answer = client
        .clone()
        .max_decoding_message_size(MAX_ATTESTATIONS_BYTES)
        .attestations(proto::AttestationsRequest {
            held,
            known: Vec::new(),
        })
        .await;
    let (notes, summary) = match answer {
        Ok(r) => {
            let r = r.into_inner();
            (r.notes, <[u8; 32]>::try_from(r.summary.as_slice()).ok())
        }
        Err(status) => {
            tracing::debug!(peer = %peer.country, error = %status.message(), "attestations not read");
            return (Vec::new(), None, 0);
        }
    };
    let read = notes.len() as u64;
    let f = feeds.clone();
    let country = peer.country;
    let wanted = blocking(move || {
        let mut wanted: Vec<(Country, u64, [u8; 32])> = Vec::new();
        for note in notes.iter().take(MAX_ATTESTATIONS) {
            match f.accept_attestation(note) {
                Ok(true) => {
                    for w in f.evidence_wanted(note)? {
                        if wanted.len() < MAX_EVIDENCE_PER_PULL && !wanted.iter().any(|h| h.0 == w.0) {
                            wanted.push(w);
                        }
                    }
                }
                Ok(false) => {}
                Err(reason) => tracing::debug!(peer = %country, %reason, "attestation refused"),
            }
        }
        Ok::<_, FeedsError>(wanted)
    })
    .await;
    match wanted {
        Ok(wanted) => (wanted, summary, read),
        // This node failed to keep what it read: ask in full next time.
        Err(_) => (Vec::new(), None, read),
    }
}

/// Fetches the one entry `publisher`/`seq` whose header has `digest` and places it: fork
/// evidence when it conflicts with the held feed. Whatever the peer sends is verified like any
/// entry; only a header signed by the publisher can become evidence.
async fn fetch_one(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    seq: u64,
    digest: [u8; 32],
    report: &mut PeerSync,
) -> Result<(), SyncError> {
    let request = proto::FetchRequest {
        publisher: publisher.to_string(),
        from_seq: seq,
        to_seq: seq,
        digest: digest.to_vec(),
    };
    fetch_stream(feeds, peer, client, publisher, request, report)
        .await
        .map(|_| ())
}

/// Entries that reached this node as header only (through a relay outside their audience)
/// are asked for again from a peer that may hold the payload: one the audience admits too.
async fn fetch_missing_payloads(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    peer_head: u64,
    report: &mut PeerSync,
) -> Result<(), SyncError> {
    for seq in call(feeds, move |f| f.lacking_payload(publisher)).await? {
        if seq > peer_head {
            break;
        }
        let header = call(feeds, move |f| f.entry(publisher, seq))
            .await?
            .and_then(|e| e.envelope)
            .and_then(|env| EntryHeader::decode(&env.payload).ok());
        if header.is_some_and(|h| feeds.may_receive(&h, feeds.country()) && feeds.may_receive(&h, peer.country)) {
            fetch_range(feeds, peer, client, publisher, seq, seq, report).await?;
        }
    }
    Ok(())
}

/// A blocking [`Feeds`] read, off the async workers.
async fn call<T: Send + 'static>(
    feeds: &Arc<dyn Feeds>,
    read: impl FnOnce(&dyn Feeds) -> Result<T, FeedsError> + Send + 'static,
) -> Result<T, SyncError> {
    let f = feeds.clone();
    Ok(blocking(move || read(f.as_ref())).await?)
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
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    from: u64,
    to: u64,
    report: &mut PeerSync,
) -> Result<Fetched, SyncError> {
    let request = proto::FetchRequest {
        publisher: publisher.to_string(),
        from_seq: from,
        to_seq: to,
        digest: Vec::new(),
    };
    fetch_stream(feeds, peer, client, publisher, request, report).await
}

/// Sends one Fetch and places what it streams back, in order.
async fn fetch_stream(
    feeds: &Arc<dyn Feeds>,
    peer: &Peer,
    client: &mut ExchangeClient<Channel>,
    publisher: Country,
    request: proto::FetchRequest,
    report: &mut PeerSync,
) -> Result<Fetched, SyncError> {
    let (from, to) = (request.from_seq, request.to_seq);
    let mut stream = client
        .fetch(request)
        .await
        .map_err(|s| rpc_error(peer.country, s))?
        .into_inner();
    let mut expected = from;
    while let Some(entry) = stream.message().await.map_err(|s| rpc_error(peer.country, s))? {
        if expected > to {
            report.reject(Rejection {
                reason: RejectReason::UnrequestedEntry,
                detail: format!(
                    "{publisher}: peer {} sent more entries than seq {from}..={to}",
                    peer.country
                ),
            });
            tracing::warn!(peer = %peer.country, %publisher, from, to, outcome = "rejected", reason = "entries beyond the requested range");
            break;
        }
        if let Some((p, seq)) = claimed(&entry).filter(|c| *c != (publisher, expected)) {
            let reason = format!(
                "{publisher} seq {expected}: peer {} sent {p} seq {seq} instead",
                peer.country
            );
            tracing::warn!(peer = %peer.country, %publisher, seq = expected, outcome = "rejected", %reason);
            report.reject(Rejection {
                reason: RejectReason::UnrequestedEntry,
                detail: reason,
            });
            return Ok(Fetched::Stopped);
        }
        let f = feeds.clone();
        match blocking(move || f.accept(entry)).await {
            Ok(v) => {
                let seq = v.seq;
                let digest = hex::encode(&v.digest[..8]);
                match v.placement {
                    Placement::Append => {
                        report.appended += 1;
                        tracing::info!(peer = %peer.country, publisher = %v.publisher, seq, %digest, outcome = "accepted");
                    }
                    Placement::Replay => {}
                    Placement::Fork { held } => {
                        report.forks += 1;
                        tracing::warn!(peer = %peer.country, publisher = %v.publisher, seq, held = %hex::encode(&held[..8]), conflicting = %digest, outcome = "fork", "publisher equivocates: two signed headers for one seq");
                    }
                    Placement::Gap { expected } => {
                        report.gaps += 1;
                        tracing::warn!(peer = %peer.country, publisher = %v.publisher, seq, expected, outcome = "gap");
                        return Ok(Fetched::Stopped);
                    }
                    Placement::Backdated { previous } => {
                        report.reject(Rejection {
                            reason: RejectReason::Invalid("created_before_previous"),
                            detail: format!(
                                "{} seq {seq}: created before the entry it follows ({})",
                                v.publisher,
                                crate::domain::date::format_timestamp(previous)
                            ),
                        });
                        tracing::warn!(peer = %peer.country, publisher = %v.publisher, seq, outcome = "rejected", reason = "created before the entry it follows");
                        return Ok(Fetched::Stopped);
                    }
                    Placement::BrokenChain => {
                        report.reject(Rejection {
                            reason: RejectReason::BrokenChain,
                            detail: format!("{} seq {seq}: prev does not match the held feed", v.publisher),
                        });
                        tracing::warn!(peer = %peer.country, publisher = %v.publisher, seq, outcome = "rejected", reason = "broken chain");
                        return Ok(Fetched::BrokenAt(seq));
                    }
                }
            }
            Err(AcceptError::Invalid(e)) => {
                tracing::warn!(peer = %peer.country, %publisher, seq = expected, outcome = "rejected", reason = %e);
                report.reject(Rejection {
                    reason: RejectReason::Invalid(e.label()),
                    detail: format!("{publisher} seq {expected}: {e}"),
                });
                return Ok(Fetched::Stopped);
            }
            Err(AcceptError::Local(e)) => return Err(e.into()),
        }
        expected += 1;
    }
    call(feeds, |f| f.flush()).await?;
    Ok(if expected > to {
        Fetched::Complete
    } else {
        Fetched::Stopped
    })
}

/// Tells `peer` about our heads so it pulls at once.
pub async fn announce(
    feeds: &Arc<dyn Feeds>,
    client: &mut ExchangeClient<Channel>,
    peer: Country,
) -> Result<(), SyncError> {
    let heads = call(feeds, |f| f.heads())
        .await?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_counted_not_kept() {
        let mut sync = PeerSync::default();
        for i in 0..10_000 {
            sync.reject(Rejection {
                reason: RejectReason::UnknownPublisher,
                detail: format!("head for unknown publisher {}", quoted(&format!("Z{i:0>40}"))),
            });
        }
        assert_eq!(sync.rejected.len(), MAX_REJECTIONS_KEPT);
        assert_eq!(sync.rejected_total(), 10_000);
        assert!(
            sync.rejected.iter().all(|r| r.detail.len() < 64),
            "{:?}",
            sync.rejected[0]
        );
    }
}
