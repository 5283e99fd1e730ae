//! Files on their way in through a running node's admin socket. The batches are staged under
//! `n:` as they arrive (pseudonymised, like any stored record), so the node never holds a whole
//! file in memory, and move into the records only once the file's end has arrived: a stream cut
//! off mid-file stores nothing of it, as on the direct path a file with an invalid row stores
//! nothing.
//!
//! A file whose end arrived is marked before it moves; the move goes in chunks, each one atomic
//! with the aggregates it changes and the removal of its staged rows. A node that stops mid-move
//! finishes it when the store is next opened; staged files without the mark are dropped then.

use std::sync::atomic::Ordering;

use super::records::{StoredRecord, RECORD_LEN};
use super::{IngestOutcome, Store, StoreError};
use crate::domain::record::Record;

/// Records moved per atomic batch, as the direct path stores them.
const CHUNK: usize = 1_000;

/// The index that marks a file whose end arrived.
pub(super) const END: u64 = u64::MAX;

pub(super) fn key(session: u64, index: u64) -> [u8; 18] {
    let mut k = [0u8; 18];
    k[..2].copy_from_slice(b"n:");
    k[2..10].copy_from_slice(&session.to_be_bytes());
    k[10..].copy_from_slice(&index.to_be_bytes());
    k
}

fn session_prefix(session: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(b"n:");
    k[2..].copy_from_slice(&session.to_be_bytes());
    k
}

/// A staged row: the event id's length (u16 BE; a validated id has at most 64 characters), the
/// event id, the stored record.
fn encode(event_id: &str, record: &StoredRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + event_id.len() + RECORD_LEN);
    v.extend_from_slice(&(event_id.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    v.extend_from_slice(event_id.as_bytes());
    v.extend_from_slice(&record.encode());
    v
}

fn decode(v: &[u8]) -> Option<(String, StoredRecord)> {
    let len = usize::from(u16::from_be_bytes(v.get(..2)?.try_into().ok()?));
    let rest = &v[2..];
    let id = rest.get(..len)?;
    let record = StoredRecord::decode(rest.get(len..)?)?;
    Some((String::from_utf8(id.to_vec()).ok()?, record))
}

impl Store {
    /// A new staging session for one file.
    pub fn begin_staging(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed)
    }

    /// Stages `records`, the rows of `session`'s file from row `first` on (validated, and
    /// pseudonymised here before they touch the disk).
    pub fn stage(&self, session: u64, first: u64, records: &[Record]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (i, r) in records.iter().enumerate() {
            batch.insert(
                key(session, first + i as u64).as_slice(),
                encode(&r.event_id, &self.to_stored(r)),
            );
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))
    }

    /// Moves `session`'s staged file into the records, in file order: its end has arrived.
    pub fn commit_staged(&self, session: u64) -> Result<IngestOutcome, StoreError> {
        self.tree.insert(key(session, END), &[]).map_err(|e| self.sled(e))?;
        self.move_staged(session)
    }

    /// Drops `session`'s staged rows: the file's end never came.
    pub fn drop_staged(&self, session: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for item in self.tree.scan_prefix(session_prefix(session)) {
            let (k, _) = item.map_err(|e| self.sled(e))?;
            batch.remove(k);
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))
    }

    fn move_staged(&self, session: u64) -> Result<IngestOutcome, StoreError> {
        let mut outcome = IngestOutcome::default();
        loop {
            let mut rows = Vec::with_capacity(CHUNK);
            let mut batch = sled::Batch::default();
            for item in self.tree.range(key(session, 0)..key(session, END)).take(CHUNK) {
                let (k, v) = item.map_err(|e| self.sled(e))?;
                rows.push(decode(&v).ok_or_else(|| self.corrupt(&k))?);
                batch.remove(k);
            }
            if rows.is_empty() {
                break;
            }
            let records: Vec<(&str, StoredRecord)> = rows.iter().map(|(id, r)| (id.as_str(), *r)).collect();
            outcome.add(self.apply(&records, batch)?);
        }
        self.tree.remove(key(session, END)).map_err(|e| self.sled(e))?;
        Ok(outcome)
    }

    /// At open: finishes moving the files whose end had arrived and drops the others.
    pub(super) fn settle_staged(&self) -> Result<(), StoreError> {
        let mut sessions = std::collections::BTreeMap::new();
        for item in self.tree.scan_prefix(b"n:") {
            let (k, _) = item.map_err(|e| self.sled(e))?;
            let session = k.get(2..10).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            let index = k.get(10..18).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
            let (Some(session), Some(index)) = (session, index) else {
                return Err(self.corrupt(&k));
            };
            *sessions.entry(session).or_insert(false) |= index == END;
        }
        let (mut moved, mut dropped) = (0, 0);
        for (session, ended) in sessions {
            if ended {
                self.move_staged(session)?;
                moved += 1;
            } else {
                self.drop_staged(session)?;
                dropped += 1;
            }
        }
        if moved + dropped > 0 {
            self.flush()?;
            tracing::info!(
                moved,
                dropped,
                "files staged through the admin socket when the node stopped: those whose end had arrived were stored, the others dropped"
            );
        }
        Ok(())
    }
}
