//! Feeds, fork evidence and peer status in the store. Entries are kept exactly as received
//! (protobuf `Entry`), so they can be relayed unchanged; the chain decision comes from
//! `dataset::feed::place`, applied atomically with the head update.

use prost::Message;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::domain::dataset::{feed, Head, Placement, VerifiedEntry};
use crate::domain::model::Country;
use crate::proto;

pub(super) fn entry_key(publisher: Country, seq: u64) -> Vec<u8> {
    let mut k = b"f:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub(super) fn head_key(publisher: Country) -> Vec<u8> {
    let mut k = b"h:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k
}

fn fork_key(publisher: Country, seq: u64, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = b"x:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(digest);
    k
}

/// Marks an entry held without the payload its audience may let this node have later.
fn lacking_key(publisher: Country, seq: u64) -> Vec<u8> {
    let mut k = b"w:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// When this node accepted an entry with its payload (SPEC §16 vintages): milliseconds since
/// the Unix epoch, UTC. Entries stored before acceptance times were kept have none and count
/// as accepted at the epoch (before any `asOf` a client can ask).
fn accepted_key(publisher: Country, seq: u64) -> Vec<u8> {
    let mut k = b"t:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Now, in milliseconds since the Unix epoch.
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Marks a governance entry (proposal or approval), so the node reads them without reading
/// every dataset.
fn governance_key(publisher: Country, seq: u64) -> Vec<u8> {
    let mut k = b"g:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The latest attestation of a member (SPEC §12).
fn attestation_key(member: Country) -> Vec<u8> {
    let mut k = b"s:".to_vec();
    k.extend_from_slice(&member.bytes());
    k
}

fn peer_key(peer: Country) -> Vec<u8> {
    let mut k = b"p:".to_vec();
    k.extend_from_slice(&peer.bytes());
    k
}

/// Two different signed headers for one (publisher, seq).
#[derive(Debug, Clone, PartialEq)]
pub struct ForkEvidence {
    pub publisher: Country,
    pub seq: u64,
    /// Digest of the header this node holds in its feed.
    pub held: [u8; 32],
    /// Digest of the conflicting header, kept under `x:`.
    pub conflicting: [u8; 32],
    pub entry: proto::Entry,
}

/// The outcome of the last sync with a peer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    pub entries_received: u64,
}

impl Store {
    /// The head of `publisher`'s feed.
    pub fn head(&self, publisher: Country) -> Result<Option<Head>, StoreError> {
        let key = head_key(publisher);
        match self.get(&key)? {
            None => Ok(None),
            // 48 bytes: seq, digest, the head header's created_at (format 2; see `migrate`).
            Some(v) if v.len() == 48 => Ok(Some(Head {
                seq: u64::from_be_bytes(v[..8].try_into().map_err(|_| self.corrupt(&key))?),
                digest: v[8..40].try_into().map_err(|_| self.corrupt(&key))?,
            })),
            Some(_) => Err(self.corrupt(&key)),
        }
    }

    /// The `created_at` of `publisher`'s head entry, kept in the head value.
    fn head_created_at(&self, publisher: Country) -> Result<Option<i64>, StoreError> {
        let key = head_key(publisher);
        match self.get(&key)? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v
                    .get(40..48)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| self.corrupt(&key))?;
                Ok(Some(i64::from_be_bytes(bytes)))
            }
        }
    }

    /// Every feed's head, by publisher.
    pub fn heads(&self) -> Result<Vec<(Country, Head)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"h:") {
            let (k, _) = item.map_err(|e| self.sled(e))?;
            let publisher = k[2..]
                .try_into()
                .ok()
                .and_then(Country::from_bytes)
                .ok_or_else(|| self.corrupt(&k))?;
            if let Some(h) = self.head(publisher)? {
                out.push((publisher, h));
            }
        }
        Ok(out)
    }

    /// The stored entry `publisher`/`seq`, exactly as received.
    pub fn entry(&self, publisher: Country, seq: u64) -> Result<Option<proto::Entry>, StoreError> {
        let key = entry_key(publisher, seq);
        match self.get(&key)? {
            None => Ok(None),
            Some(v) => proto::Entry::decode(v.as_ref())
                .map(Some)
                .map_err(|_| self.corrupt(&key)),
        }
    }

    /// The digest of the header held at `publisher`/`seq`.
    pub fn header_digest(&self, publisher: Country, seq: u64) -> Result<Option<[u8; 32]>, StoreError> {
        Ok(self.header_facts(publisher, seq)?.map(|(digest, _)| digest))
    }

    /// The digest and `created_at` of the header held at `publisher`/`seq`. The head's come
    /// from the small head value; only an older seq reads its entry (payload and all).
    pub fn header_facts(&self, publisher: Country, seq: u64) -> Result<Option<([u8; 32], i64)>, StoreError> {
        if let (Some(head), Some(created_at)) = (self.head(publisher)?, self.head_created_at(publisher)?) {
            if head.seq == seq {
                return Ok(Some((head.digest, created_at)));
            }
            if head.seq < seq {
                return Ok(None);
            }
        }
        let Some(env) = self.entry(publisher, seq)?.and_then(|e| e.envelope) else {
            return Ok(None);
        };
        let key = entry_key(publisher, seq);
        let header = crate::domain::dataset::EntryHeader::decode(&env.payload).map_err(|_| self.corrupt(&key))?;
        Ok(Some((
            crate::domain::dataset::envelope::sha256(&env.payload),
            header.created_at,
        )))
    }

    /// The signed entry `publisher`/`seq` whose header has `digest`: the one in the feed, or
    /// the fork evidence (header only) when that is the one named. This is how a node serves
    /// the other side of a fork it found, so members that never met that side learn of it.
    pub fn entry_with_digest(
        &self,
        publisher: Country,
        seq: u64,
        digest: &[u8; 32],
    ) -> Result<Option<proto::Entry>, StoreError> {
        if self.header_digest(publisher, seq)?.as_ref() == Some(digest) {
            return self.entry(publisher, seq);
        }
        let key = fork_key(publisher, seq, digest);
        match self.get(&key)? {
            None => Ok(None),
            Some(v) => proto::Entry::decode(v.as_ref())
                .map(Some)
                .map_err(|_| self.corrupt(&key)),
        }
    }

    /// Places a verified entry in its feed and stores it accordingly, atomically with the head:
    /// appended, ignored as a replay, kept as fork evidence, or refused as a gap / broken chain.
    pub fn accept(&self, v: &VerifiedEntry) -> Result<Placement, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.place_locked(v)
    }

    /// Appends to a feed this node writes itself: reads the head, lets `sign_next` build the
    /// entry that follows it, and places that entry, all under the store's write lock. Two
    /// publishes at once therefore get consecutive seqs; neither can sign a seq the other took.
    pub fn append_next<E: From<StoreError>>(
        &self,
        publisher: Country,
        sign_next: impl FnOnce(Option<Head>) -> Result<VerifiedEntry, E>,
    ) -> Result<(VerifiedEntry, Placement), E> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let verified = sign_next(self.head(publisher)?)?;
        let placement = self.place_locked(&verified)?;
        Ok((verified, placement))
    }

    /// [`Store::accept`] with the write lock already held.
    fn place_locked(&self, v: &VerifiedEntry) -> Result<Placement, StoreError> {
        let publisher = v.header().publisher;
        let head = self.head(publisher)?;
        let held = if head.is_some_and(|h| v.header().seq <= h.seq) {
            self.header_digest(publisher, v.header().seq)?
        } else {
            None
        };
        let head_created_at = match head {
            Some(h) if v.header().seq == h.seq + 1 => self.head_created_at(publisher)?,
            _ => None,
        };
        let placement = feed::place(head, head_created_at, held, v.header(), v.digest());
        match placement {
            Placement::Append => {
                let mut batch = sled::Batch::default();
                batch.insert(entry_key(publisher, v.header().seq), v.entry().encode_to_vec());
                let mut h = v.header().seq.to_be_bytes().to_vec();
                h.extend_from_slice(&v.digest());
                h.extend_from_slice(&v.header().created_at.to_be_bytes());
                batch.insert(head_key(publisher), h);
                if v.entry().has_payload {
                    batch.insert(accepted_key(publisher, v.header().seq), &now_millis().to_be_bytes());
                } else {
                    batch.insert(lacking_key(publisher, v.header().seq), &[]);
                }
                if v.header().dataset().is_none() {
                    batch.insert(governance_key(publisher, v.header().seq), &[]);
                }
                self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
                self.changes.feeds_changed();
            }
            Placement::Fork { .. } => {
                // The first conflicting header proves the equivocation; more add nothing, so a
                // member replaying forks cannot grow the store. The evidence is the signed
                // header alone: the payload proves nothing about who signed what.
                if !self.holds_fork_evidence(publisher)? {
                    let mut evidence = v.entry().clone();
                    evidence.payload.clear();
                    evidence.has_payload = false;
                    self.tree
                        .insert(
                            fork_key(publisher, v.header().seq, &v.digest()),
                            evidence.encode_to_vec(),
                        )
                        .map_err(|e| self.sled(e))?;
                    self.changes.feeds_changed();
                }
            }
            Placement::Replay => {
                // The same header may now arrive with the payload this node lacked (it joined
                // the audience's path later): keep the fuller copy, header unchanged.
                if v.entry().has_payload {
                    if let Some(stored) = self.entry(publisher, v.header().seq)? {
                        if !stored.has_payload {
                            let mut batch = sled::Batch::default();
                            batch.insert(entry_key(publisher, v.header().seq), v.entry().encode_to_vec());
                            batch.remove(lacking_key(publisher, v.header().seq));
                            // Usable from now on: that is when this node accepted the dataset.
                            batch.insert(accepted_key(publisher, v.header().seq), &now_millis().to_be_bytes());
                            self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
                            self.changes.feeds_changed();
                        }
                    }
                }
            }
            Placement::Gap { .. } | Placement::BrokenChain | Placement::Backdated { .. } => {}
        }
        Ok(placement)
    }

    /// Sets aside `publisher`'s entries from `seq` on: a branch the consortium did not keep
    /// (SPEC §12). They leave the feed in one atomic batch, the head moves back to `seq - 1`,
    /// and the set-aside header at `seq` becomes the fork evidence (the kept branch, once
    /// fetched, is the feed). Returns how many entries left.
    pub fn set_aside(&self, publisher: Country, seq: u64, keep: &[u8; 32]) -> Result<u64, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(head) = self.head(publisher)?.filter(|h| h.seq >= seq && seq > 0) else {
            return Ok(0);
        };
        // Checked under the lock: the kept entry may have arrived since the caller looked.
        if self.header_digest(publisher, seq)?.as_ref() == Some(keep) {
            return Ok(0);
        }
        let mut batch = sled::Batch::default();
        if let Some(mut evidence) = self.entry(publisher, seq)? {
            let digest = self
                .header_digest(publisher, seq)?
                .ok_or_else(|| self.corrupt(&entry_key(publisher, seq)))?;
            // Evidence at this seq and later is about the branch set aside; evidence of a fork
            // earlier in the feed (not settled) stays.
            let mut from = b"x:".to_vec();
            from.extend_from_slice(&publisher.bytes());
            let mut end = from.clone();
            from.extend_from_slice(&seq.to_be_bytes());
            end.extend_from_slice(&[0xff; 8 + 32 + 1]);
            for item in self.tree.range(from..end) {
                batch.remove(item.map_err(|e| self.sled(e))?.0);
            }
            evidence.payload.clear();
            evidence.has_payload = false;
            batch.insert(fork_key(publisher, seq, &digest), evidence.encode_to_vec());
        }
        for k in seq..=head.seq {
            batch.remove(entry_key(publisher, k));
            batch.remove(lacking_key(publisher, k));
            batch.remove(accepted_key(publisher, k));
            batch.remove(governance_key(publisher, k));
            batch.remove(super::witness::witness_key(publisher, k));
        }
        if seq == 1 {
            batch.remove(head_key(publisher));
        } else {
            let prev = self
                .entry(publisher, seq - 1)?
                .and_then(|e| e.envelope)
                .ok_or_else(|| self.corrupt(&entry_key(publisher, seq - 1)))?;
            let header = crate::domain::dataset::EntryHeader::decode(&prev.payload)
                .map_err(|_| self.corrupt(&entry_key(publisher, seq - 1)))?;
            let mut h = (seq - 1).to_be_bytes().to_vec();
            h.extend_from_slice(&crate::domain::dataset::envelope::sha256(&prev.payload));
            h.extend_from_slice(&header.created_at.to_be_bytes());
            batch.insert(head_key(publisher), h);
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
        self.changes.feeds_changed();
        Ok(head.seq - seq + 1)
    }

    /// Whether fork evidence against `publisher` is held already.
    pub fn holds_fork_evidence(&self, publisher: Country) -> Result<bool, StoreError> {
        let mut prefix = b"x:".to_vec();
        prefix.extend_from_slice(&publisher.bytes());
        match self.tree.scan_prefix(&prefix).next() {
            Some(item) => item.map(|_| true).map_err(|e| self.sled(e)),
            None => Ok(false),
        }
    }

    /// Seqs of `publisher`'s feed held as header only, oldest first. Sync asks peers for
    /// their payloads again where the audience admits this node.
    pub fn lacking_payload(&self, publisher: Country) -> Result<Vec<u64>, StoreError> {
        let mut prefix = b"w:".to_vec();
        prefix.extend_from_slice(&publisher.bytes());
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(|e| self.sled(e))?;
            let seq: [u8; 8] = k[prefix.len()..].try_into().map_err(|_| self.corrupt(&k))?;
            out.push(u64::from_be_bytes(seq));
        }
        Ok(out)
    }

    /// All fork evidence held.
    pub fn forks(&self) -> Result<Vec<ForkEvidence>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"x:") {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            if k.len() != 2 + 3 + 8 + 32 {
                return Err(self.corrupt(&k));
            }
            let publisher = k[2..5]
                .try_into()
                .ok()
                .and_then(Country::from_bytes)
                .ok_or_else(|| self.corrupt(&k))?;
            let seq = u64::from_be_bytes(k[5..13].try_into().map_err(|_| self.corrupt(&k))?);
            let conflicting: [u8; 32] = k[13..].try_into().map_err(|_| self.corrupt(&k))?;
            let held = self.header_digest(publisher, seq)?.unwrap_or([0; 32]);
            let entry = proto::Entry::decode(v.as_ref()).map_err(|_| self.corrupt(&k))?;
            out.push(ForkEvidence {
                publisher,
                seq,
                held,
                conflicting,
                entry,
            });
        }
        Ok(out)
    }

    /// Every stored entry, in (publisher, seq) order.
    pub fn all_entries(&self) -> impl Iterator<Item = Result<proto::Entry, StoreError>> + '_ {
        self.tree.scan_prefix(b"f:").map(move |item| {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            proto::Entry::decode(v.as_ref()).map_err(|_| self.corrupt(&k))
        })
    }

    /// When this node accepted `publisher`/`seq` with its payload, in milliseconds since the
    /// Unix epoch. `None` for an entry held without its payload, and for one stored before
    /// acceptance times were kept (callers holding its payload count it as accepted at 0).
    pub fn accepted_at(&self, publisher: Country, seq: u64) -> Result<Option<i64>, StoreError> {
        let key = accepted_key(publisher, seq);
        match self.get(&key)? {
            Some(v) => {
                let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| self.corrupt(&key))?;
                Ok(Some(i64::from_be_bytes(bytes)))
            }
            None => Ok(None),
        }
    }

    /// Every acceptance time kept, distinct and in order (SPEC §16 `includeHistory`), with 0
    /// first.
    pub fn acceptance_times(&self) -> Result<Vec<i64>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        for item in self.tree.scan_prefix(b"t:") {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| self.corrupt(&k))?;
            out.insert(i64::from_be_bytes(bytes));
        }
        // Entries stored before acceptance times were kept count as accepted at 0; the view as
        // of 0 is empty when there are none, and adds no dataset to a history.
        out.insert(0);
        Ok(out.into_iter().collect())
    }

    /// A summary of the feeds a peer could pull from this node: changes with every entry
    /// placed, payload filled, fork evidence kept or branch set aside, and on every open.
    pub fn feeds_summary(&self) -> [u8; 32] {
        self.changes.feeds_summary()
    }

    /// A summary of the attestations held: changes with every one kept, and on every open.
    pub fn attestations_summary(&self) -> [u8; 32] {
        self.changes.attestations_summary()
    }

    /// Every governance entry held (proposals and approvals), in key order.
    pub fn governance_entries(&self) -> impl Iterator<Item = Result<proto::Entry, StoreError>> + '_ {
        self.tree.scan_prefix(b"g:").map(move |item| {
            let (k, _) = item.map_err(|e| self.sled(e))?;
            let publisher = k
                .get(2..5)
                .and_then(|b| b.try_into().ok())
                .and_then(Country::from_bytes);
            let seq = k.get(5..).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            match (publisher, seq) {
                (Some(publisher), Some(seq)) => self.entry(publisher, seq)?.ok_or_else(|| self.corrupt(&k)),
                _ => Err(self.corrupt(&k)),
            }
        })
    }

    /// The latest attestation held of `member` (a signed note).
    pub fn attestation(&self, member: Country) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(&attestation_key(member))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Keeps `note` as `member`'s latest attestation.
    pub fn set_attestation(&self, member: Country, note: &str) -> Result<(), StoreError> {
        self.tree
            .insert(attestation_key(member), note.as_bytes())
            .map_err(|e| self.sled(e))?;
        self.changes.attestations_changed();
        Ok(())
    }

    /// Every attestation held, by member.
    pub fn attestations(&self) -> Result<Vec<(Country, String)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"s:") {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            let member = k
                .get(2..5)
                .and_then(|b| b.try_into().ok())
                .and_then(Country::from_bytes)
                .ok_or_else(|| self.corrupt(&k))?;
            out.push((member, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
    }

    pub fn peer_status(&self, peer: Country) -> Result<PeerStatus, StoreError> {
        let key = peer_key(peer);
        Ok(self
            .get(&key)?
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }

    pub fn set_peer_status(&self, peer: Country, status: &PeerStatus) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(status).unwrap_or_default();
        self.tree.insert(peer_key(peer), bytes).map_err(|e| self.sled(e))?;
        Ok(())
    }
}
