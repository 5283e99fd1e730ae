//! Witnessed times (SPEC §12): for each entry, the first attestation by a member other than its
//! publisher that names it (its seq or a later one of the same chain), kept with that note, so
//! `accord certify` can hand an auditor the signed proof that the entry existed by then.
//!
//! `v:` publisher + seq → witness member (3) + attested time (i64 BE) + the seq the note names
//! (u64 BE); `u:` member + time → the note. Each entry is witnessed once and each note kept
//! once, so what a member's attestations can add is bounded by the entries this node holds.

use super::{Store, StoreError};
use crate::domain::model::Country;

/// Who first witnessed an entry, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub by: Country,
    pub time: i64,
    /// The head seq the note names: the entry itself, or a later entry chained onto it.
    pub named_seq: u64,
    pub note: String,
}

pub(super) fn witness_key(publisher: Country, seq: u64) -> Vec<u8> {
    let mut k = b"v:".to_vec();
    k.extend_from_slice(&publisher.bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn note_key(by: Country, time: i64) -> Vec<u8> {
    let mut k = b"u:".to_vec();
    k.extend_from_slice(&by.bytes());
    k.extend_from_slice(&time.to_be_bytes());
    k
}

impl Store {
    /// Records that `note`, by `by` at `time`, names `publisher`'s entry `seq` (which this node
    /// holds with the digest the note gives): every entry of that feed up to `seq` without a
    /// witness gets this one. Returns how many entries it witnessed.
    pub fn witness(&self, publisher: Country, seq: u64, by: Country, time: i64, note: &str) -> Result<u64, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut prefix = b"v:".to_vec();
        prefix.extend_from_slice(&publisher.bytes());
        let through = match self.tree.scan_prefix(&prefix).next_back() {
            None => 0,
            Some(item) => {
                let (k, _) = item.map_err(|e| self.sled(e))?;
                let seq: [u8; 8] = k[prefix.len()..].try_into().map_err(|_| self.corrupt(&k))?;
                u64::from_be_bytes(seq)
            }
        };
        if seq <= through {
            return Ok(0);
        }
        let mut value = by.bytes().to_vec();
        value.extend_from_slice(&time.to_be_bytes());
        value.extend_from_slice(&seq.to_be_bytes());
        let mut batch = sled::Batch::default();
        for k in through + 1..=seq {
            batch.insert(witness_key(publisher, k), value.clone());
        }
        batch.insert(note_key(by, time), note.as_bytes());
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
        Ok(seq - through)
    }

    /// The first witness of `publisher`'s entry `seq`, if any member other than the publisher
    /// has attested it yet.
    pub fn witnessed(&self, publisher: Country, seq: u64) -> Result<Option<Witnessed>, StoreError> {
        let key = witness_key(publisher, seq);
        let Some(value) = self.get(&key)? else {
            return Ok(None);
        };
        if value.len() != 3 + 8 + 8 {
            return Err(self.corrupt(&key));
        }
        let by = value[..3]
            .try_into()
            .ok()
            .and_then(Country::from_bytes)
            .ok_or_else(|| self.corrupt(&key))?;
        let time = i64::from_be_bytes(value[3..11].try_into().map_err(|_| self.corrupt(&key))?);
        let named_seq = u64::from_be_bytes(value[11..].try_into().map_err(|_| self.corrupt(&key))?);
        let nkey = note_key(by, time);
        let note = self.get(&nkey)?.ok_or_else(|| self.corrupt(&nkey))?;
        Ok(Some(Witnessed {
            by,
            time,
            named_seq,
            note: String::from_utf8_lossy(&note).into_owned(),
        }))
    }
}
