//! Node-to-node exchange (SPEC §5): the `accord.v1.Exchange` gRPC service a node serves to its
//! peers ([`server`]) and the anti-entropy client that pulls from them ([`sync`], driven per
//! peer by [`syncer`]). Transport
//! only: what a node holds and how it accepts an entry come through the [`Feeds`] trait it is
//! given, so this module never sees the node, its store's writes or its view. Generated
//! protobuf types stay here and in `dataset`'s codec; everything else sees domain types.
//!
//! Trust: the caller's member code comes from its TLS certificate (`tls::peer_member`), never
//! from a message; every entry received is verified against its publisher's keys by
//! [`Feeds::accept`] before anything is stored. Every bound is an error naming the bound.

pub mod announce;
pub mod server;
pub mod sync;
pub mod syncer;

use std::time::Duration;

use crate::domain::dataset::{Head, Placement, VerifyError};
use crate::domain::model::Country;
use crate::proto;

pub use sync::{PeerSync, RejectReason, Rejection, SyncError};
pub use syncer::Syncer;

/// Most entries one Fetch may return; clients ask in chunks of this size.
pub const MAX_FETCH_ENTRIES: u64 = 256;
/// Largest gRPC message either side accepts (a dataset payload is bounded below this).
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;
/// Largest request a peer may send: Heads, Fetch and Announce requests are small by nature
/// (an Announce of every feed in a large consortium is a few kilobytes).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Largest Heads answer this node reads from a peer: a head is about 50 bytes, so this allows
/// some 20,000 feeds, far more than any consortium has members.
pub const MAX_HEADS_BYTES: usize = 1024 * 1024;
/// Largest `Attestations` answer read: one note per member, each a few kilobytes.
pub const MAX_ATTESTATIONS_BYTES: usize = 4 * 1024 * 1024;
/// Attestations read from one answer; the rest is ignored.
pub const MAX_ATTESTATIONS: usize = 256;
/// Concurrent HTTP/2 streams per peer connection.
pub const MAX_STREAMS_PER_PEER: u32 = 16;

/// What an entry that passed verification did to its feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub publisher: Country,
    pub seq: u64,
    pub digest: [u8; 32],
    pub placement: Placement,
}

/// This node could not read or keep what the exchange asked of it (its store failed): the
/// round stops, a peer is told only that the node failed, the operator's log gets this text.
/// The exchange's own error, so that it never depends on how the node keeps its feeds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FeedsError(pub String);

/// Why [`Feeds::accept`] did not place an entry.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// The entry failed verification: the peer's fault, reported and skipped.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// This node failed: the round stops.
    #[error(transparent)]
    Local(#[from] FeedsError),
}

/// What the exchange needs from the node it serves and syncs for. Calls may block (store
/// reads and writes, signature checks): the exchange makes them off the async workers.
pub trait Feeds: Send + Sync + 'static {
    /// This node's member code.
    fn country(&self) -> Country;
    /// Whether `country` is a member of the consortium in force.
    fn is_member(&self, country: Country) -> bool;
    /// Whether `country` is not a member yet but the pending proposal with the current
    /// members' quorum adds it (SPEC §11): it may fetch feeds, headers only except governance
    /// entries, to approve that proposal.
    fn is_prospective(&self, country: Country) -> bool;
    /// Whether `publisher`'s feed is worth fetching: a member, a member-to-be, or a former
    /// member (whose entries from before its removal still verify).
    fn knows_publisher(&self, publisher: Country) -> bool;
    /// The head of `publisher`'s feed.
    fn head(&self, publisher: Country) -> Result<Option<Head>, FeedsError>;
    /// Every feed's head, by publisher.
    fn heads(&self) -> Result<Vec<(Country, Head)>, FeedsError>;
    /// 32 bytes that change whenever anything a peer could pull from this node changes (and on
    /// every restart); read before the heads, so a change in between shows next time.
    fn feeds_summary(&self) -> [u8; 32];
    /// The same for the attestations held.
    fn attestations_summary(&self) -> [u8; 32];
    /// A stored entry exactly as received.
    fn entry(&self, publisher: Country, seq: u64) -> Result<Option<proto::Entry>, FeedsError>;
    /// The entry `publisher`/`seq` whose header has `digest`: the feed's own, or the fork
    /// evidence held with that digest.
    fn entry_with_digest(
        &self,
        publisher: Country,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<Option<proto::Entry>, FeedsError>;
    /// Headers a member's attestation names that conflict with this node's feeds: the sync
    /// fetches them as fork evidence from the peer that sent the note.
    fn evidence_wanted(&self, note: &str) -> Result<Vec<(Country, u64, [u8; 32])>, FeedsError>;
    /// Seqs of `publisher`'s feed held as header only, oldest first.
    fn lacking_payload(&self, publisher: Country) -> Result<Vec<u64>, FeedsError>;
    /// Whether `member` may hold the payload of the entry with this header: it is in the
    /// entry's audience and, for a dataset, the sharing rules in force let the publisher's
    /// cube reach it (SPEC §11 agreements).
    fn may_receive(&self, header: &crate::domain::dataset::EntryHeader, member: Country) -> bool;
    /// The latest attestation of each member held (signed notes), for the `Attestations` RPC.
    fn attestations(&self) -> Result<Vec<String>, FeedsError>;
    /// The attested time of each member's latest note held, so a peer sends only newer ones.
    fn attestation_times(&self) -> Result<Vec<(Country, i64)>, FeedsError>;
    /// Checks and keeps an attestation a peer sent (only a member's, signed under its key,
    /// newer than the one held); why not, if it is refused.
    fn accept_attestation(&self, note: &str) -> Result<bool, String>;
    /// Verifies an entry against its publisher's keys and places it in its feed.
    fn accept(&self, entry: proto::Entry) -> Result<Accepted, AcceptError>;
    /// Makes everything accepted so far durable.
    fn flush(&self) -> Result<(), FeedsError>;
    /// Told after every pull from `peer`, with when it started and how long it took.
    fn pulled(&self, peer: Country, started_at: i64, took: Duration, result: &Result<PeerSync, SyncError>);
}

/// Runs blocking work of the [`Feeds`] off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // A panic in store or verification code is a bug: surface it where it happened. A
        // blocking task is only cancelled when the runtime itself shuts down, and then the
        // task awaiting it is being dropped too; that case ends the same way.
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("blocking task ended without a result: {e}"),
        },
    }
}

/// The one place this node's failures become gRPC statuses for a peer: the peer learns nothing
/// of the store, the operator's log gets the cause.
pub fn store_status(error: FeedsError) -> tonic::Status {
    tracing::error!(error = %error, "store error while serving a peer");
    tonic::Status::internal("store error")
}
