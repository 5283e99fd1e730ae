//! What a peer could pull from this node, summarised in 32 bytes that change whenever it does
//! (SPEC §17: a quiet sync round costs a constant): a random nonce drawn when the store opens,
//! so a restarted node never repeats a summary, and a counter per kind of change, bumped after
//! every write that changes the feeds (an entry placed, a payload filled, fork evidence, a
//! branch set aside) or the attestations held. A peer that saw the same summary at the end of
//! a complete pull has nothing new to ask for.

use std::sync::atomic::{AtomicU64, Ordering};

use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

pub(super) struct Changes {
    nonce: [u8; 16],
    feeds: AtomicU64,
    attestations: AtomicU64,
}

impl Changes {
    pub(super) fn new() -> Changes {
        let mut nonce = [0u8; 16];
        if SystemRandom::new().fill(&mut nonce).is_err() {
            // No randomness: the time still differs between two opens of one store.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nonce = now.to_be_bytes();
        }
        Changes {
            nonce,
            feeds: AtomicU64::new(0),
            attestations: AtomicU64::new(0),
        }
    }

    /// Called after a write to the feeds is applied (never before: a summary read before the
    /// write must not come with the written state).
    pub(super) fn feeds_changed(&self) {
        self.feeds.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn attestations_changed(&self) {
        self.attestations.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn feeds_summary(&self) -> [u8; 32] {
        self.summary(b"feeds", &self.feeds)
    }

    pub(super) fn attestations_summary(&self) -> [u8; 32] {
        self.summary(b"attestations", &self.attestations)
    }

    fn summary(&self, kind: &[u8], counter: &AtomicU64) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        ctx.update(kind);
        ctx.update(&self.nonce);
        ctx.update(&counter.load(Ordering::SeqCst).to_be_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Changes;

    #[test]
    fn a_summary_changes_with_its_kind_and_with_every_open() {
        let a = Changes::new();
        let (feeds, attestations) = (a.feeds_summary(), a.attestations_summary());
        assert_ne!(feeds, attestations);
        a.attestations_changed();
        assert_eq!(a.feeds_summary(), feeds);
        assert_ne!(a.attestations_summary(), attestations);
        a.feeds_changed();
        assert_ne!(a.feeds_summary(), feeds);
        // Another open of the same store starts from other summaries.
        assert_ne!(Changes::new().feeds_summary(), Changes::new().feeds_summary());
    }
}
