//! The node as the exchange sees it: [`Feeds`] over the store, with every entry verified before
//! it is placed and every pull recorded in the peer's status and the metrics.

use std::time::Duration;

use super::Node;
use crate::domain::dataset::Head;
use crate::domain::model::Country;
use crate::io::exchange::{AcceptError, Accepted, Feeds, FeedsError, PeerSync, SyncError};
use crate::io::store::StoreError;
use crate::node::NodeError;
use crate::proto;

/// How often quiet pulls still compare this node's attestation with its state: often enough for
/// the re-attestation every [`super::attest::REATTEST_SECS`].
pub const ATTEST_CHECK_SECS: i64 = 60;

impl Feeds for Node {
    fn country(&self) -> Country {
        self.config.country
    }

    fn is_member(&self, country: Country) -> bool {
        self.consortium().member(country).is_some()
    }

    fn knows_publisher(&self, publisher: Country) -> bool {
        self.governance().ever_member(publisher) || self.is_prospective(publisher)
    }

    fn is_prospective(&self, country: Country) -> bool {
        !self.is_member(country) && self.governance.widened().member(country).is_some()
    }

    fn head(&self, publisher: Country) -> Result<Option<Head>, FeedsError> {
        Ok(self.store.head(publisher)?)
    }

    fn heads(&self) -> Result<Vec<(Country, Head)>, FeedsError> {
        Ok(self.store.heads()?)
    }

    fn feeds_summary(&self) -> [u8; 32] {
        self.store.feeds_summary()
    }

    fn attestations_summary(&self) -> [u8; 32] {
        self.store.attestations_summary()
    }

    fn entry(&self, publisher: Country, seq: u64) -> Result<Option<proto::Entry>, FeedsError> {
        Ok(self.store.entry(publisher, seq)?)
    }

    fn entry_with_digest(
        &self,
        publisher: Country,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<Option<proto::Entry>, FeedsError> {
        Ok(self.store.entry_with_digest(publisher, seq, digest)?)
    }

    fn evidence_wanted(&self, note: &str) -> Result<Vec<(Country, u64, [u8; 32])>, FeedsError> {
        Ok(Node::evidence_wanted(self, note)?)
    }

    fn lacking_payload(&self, publisher: Country) -> Result<Vec<u64>, FeedsError> {
        Ok(self.store.lacking_payload(publisher)?)
    }

    fn may_receive(&self, header: &crate::domain::dataset::EntryHeader, member: Country) -> bool {
        self.may_hold(header, member)
    }

    fn attestations(&self) -> Result<Vec<String>, FeedsError> {
        Ok(self.store.attestations()?.into_iter().map(|(_, note)| note).collect())
    }

    fn attestation_times(&self) -> Result<Vec<(Country, i64)>, FeedsError> {
        Ok(self
            .store
            .attestations()?
            .into_iter()
            .filter_map(|(member, note)| {
                let (text, _) = crate::domain::attest::open(&note).ok()?;
                Some((member, crate::domain::attest::Attestation::parse(text).ok()?.time))
            })
            .collect())
    }

    fn accept_attestation(&self, note: &str) -> Result<bool, String> {
        self.accept_attestation(note)
    }

    fn accept(&self, entry: proto::Entry) -> Result<Accepted, AcceptError> {
        let (v, placement) = Node::accept(self, entry).map_err(|e| match e {
            NodeError::Verify(e) => AcceptError::Invalid(e),
            other => AcceptError::Local(FeedsError(other.to_string())),
        })?;
        Ok(Accepted {
            publisher: v.header().publisher,
            seq: v.header().seq,
            digest: v.digest(),
            placement,
        })
    }

    fn flush(&self) -> Result<(), FeedsError> {
        Ok(self.store.flush()?)
    }

    fn pulled(&self, peer: Country, started_at: i64, took: Duration, result: &Result<PeerSync, SyncError>) {
        self.metrics.record_round(peer, took, result);
        let mut status = match self.store.peer_status(peer) {
            Ok(s) => s,
            Err(e) => return tracing::error!(%peer, error = %e, "cannot read peer status"),
        };
        status.last_attempt = Some(started_at);
        match result {
            Ok(sync) => {
                status.last_success = Some(crate::domain::date::unix_now());
                status.last_error = sync.rejected.first().map(|r| r.detail.clone());
                status.entries_received += sync.appended;
            }
            Err(e) => status.last_error = Some(e.to_string()),
        }
        if let Err(e) = self.store.set_peer_status(peer, &status) {
            tracing::error!(%peer, error = %e, "cannot record peer status");
        }
        // After each round that may have changed what it holds, this node states it (SPEC §12).
        // A quiet pull changed nothing: comparing the attestation with the state (every head,
        // the view digest) after each of them would make a quiet round cost N heads per peer,
        // so they check only now and then, for the re-attestation every ten minutes.
        let now = crate::domain::date::unix_now();
        let quiet = matches!(result, Ok(s) if s.quiet && s.appended == 0 && s.forks == 0);
        let last = self.attest_checked.load(std::sync::atomic::Ordering::Relaxed);
        if !quiet || now - last >= ATTEST_CHECK_SECS {
            self.attest_checked.store(now, std::sync::atomic::Ordering::Relaxed);
            if let Err(e) = self.attest_if_changed(now) {
                tracing::warn!(error = %e, "cannot sign this node's attestation");
            }
        }
    }
}

/// The exchange learns only the text of a store failure (see [`FeedsError`]).
impl From<StoreError> for FeedsError {
    fn from(e: StoreError) -> FeedsError {
        FeedsError(e.to_string())
    }
}
