//! Feed chaining: where a verified entry fits in its publisher's append-only feed. Pure; the
//! store applies the decision atomically. This is the one place the chain rules live:
//!
//! - seq n+1 is accepted only when its `prev` is the digest of header n (seq 1: no prev);
//! - an identical entry at a known seq is a replay (a no-op);
//! - a different header at a known seq is a fork: evidence is kept, the publisher is marked
//!   equivocating, nothing is resolved silently;
//! - a seq beyond head + 1 is a gap: held back until the missing range is fetched;
//! - seq n+1 may not claim a `created_at` earlier than header n's (SPEC §10): a feed's time
//!   only moves forward, so an entry signed later with an old key cannot pass as old.

use super::codec::EntryHeader;

/// The latest entry of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub digest: [u8; 32],
}

/// What to do with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The next entry: append it.
    Append,
    /// Already held, byte-identical header: nothing to do.
    Replay,
    /// A different header for a seq already held: equivocation evidence.
    Fork { held: [u8; 32] },
    /// A seq beyond head + 1: the entries in between are missing.
    Gap { expected: u64 },
    /// The next seq, but `prev` names another history than the one held.
    BrokenChain,
    /// The next seq and chained, but created before the entry it follows (Unix seconds).
    Backdated { previous: i64 },
}

/// Places `header` (with `digest`) against the feed's `head`, the `created_at` of the head's
/// header, and the digest held at the header's seq, if any.
pub fn place(
    head: Option<Head>,
    head_created_at: Option<i64>,
    held_at_seq: Option<[u8; 32]>,
    header: &EntryHeader,
    digest: [u8; 32],
) -> Placement {
    let head_seq = head.map_or(0, |h| h.seq);
    if header.seq <= head_seq {
        return match held_at_seq {
            Some(held) if held == digest => Placement::Replay,
            Some(held) => Placement::Fork { held },
            // A held seq must have a digest; a store missing it is treated as a fork candidate
            // of nothing, i.e. a gap to refetch.
            None => Placement::Gap { expected: header.seq },
        };
    }
    if header.seq > head_seq + 1 {
        return Placement::Gap { expected: head_seq + 1 };
    }
    if header.prev != head.map(|h| h.digest) {
        return Placement::BrokenChain;
    }
    match head_created_at {
        Some(previous) if header.created_at < previous => Placement::Backdated { previous },
        _ => Placement::Append,
    }
}
