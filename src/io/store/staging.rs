//! Files on their way in through a running node's admin socket. The batches are appended to a
//! staging file in `<data_dir>/staging/` as they arrive (pseudonymised, like any stored record:
//! the raw person id never reaches the disk), so the node never holds a whole file in memory,
//! and the file moves into the records only once its end has arrived: a stream cut off mid-file
//! stores nothing of it, as on the direct path a file with an invalid row stores nothing.
//!
//! A staging file is `<session>.part` while it grows and is renamed `<session>.ready` (after an
//! fsync) once its end has arrived; the move then applies it in chunks, each one atomic with the
//! aggregates it changes, exactly as the direct path stores batches. Applying a whole file again
//! gives the same records (each event ends as the file's last row for it), so a node stopped
//! mid-move applies the `.ready` file again at the next open, before anything else can be
//! ingested; `.part` files are dropped then. A move that fails while the node runs drops its file.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::records::{StoredRecord, RECORD_LEN};
use super::{host, IngestOutcome, Store, StoreError};
use crate::domain::record::Record;

/// Records applied per atomic batch, as the direct path stores them.
const CHUNK: usize = 1_000;

/// Grows while the file arrives.
const PART: &str = "part";
/// The file's end has arrived: to be moved into the records.
const READY: &str = "ready";

/// One staged row: the event id's length (u16 BE; a validated id has at most 64 characters),
/// the event id, the stored record.
fn encode(out: &mut Vec<u8>, event_id: &str, record: &StoredRecord) {
    out.extend_from_slice(&(event_id.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&event_id.as_bytes()[..event_id.len().min(usize::from(u16::MAX))]);
    out.extend_from_slice(&record.encode());
}

/// The next row of a staging file; `None` at its end, an error on a damaged row.
fn next_row(input: &mut impl Read, path: &Path) -> Result<Option<(String, StoredRecord)>, StoreError> {
    let damaged = || StoreError::Corrupt {
        path: path.to_path_buf(),
        key: "a staged row".into(),
    };
    let mut len = [0u8; 2];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(staging_error(path, e)),
    }
    let mut row = vec![0u8; usize::from(u16::from_be_bytes(len)) + RECORD_LEN];
    input.read_exact(&mut row).map_err(|_| damaged())?;
    let (id, record) = row.split_at(row.len() - RECORD_LEN);
    let id = String::from_utf8(id.to_vec()).map_err(|_| damaged())?;
    Ok(Some((id, StoredRecord::decode(record).ok_or_else(damaged)?)))
}

fn staging_error(path: &Path, e: std::io::Error) -> StoreError {
    super::classify_io(path.to_path_buf(), e)
}

impl Store {
    fn staging_dir(&self) -> PathBuf {
        self.path.with_file_name("staging")
    }

    fn staging_file(&self, session: u64, state: &str) -> PathBuf {
        self.staging_dir().join(format!("{session}.{state}"))
    }

    /// A new staging session for one file.
    pub fn begin_staging(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends `records`, the next rows of `session`'s file (validated, and pseudonymised here
    /// before they touch the disk).
    pub fn stage(&self, session: u64, records: &[Record]) -> Result<(), StoreError> {
        let dir = self.staging_dir();
        host::private_dir(&dir).map_err(|e| staging_error(&dir, e))?;
        let path = self.staging_file(session, PART);
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| staging_error(&path, e))?;
        let mut rows = Vec::with_capacity(records.len() * (RECORD_LEN + 24));
        for r in records {
            encode(&mut rows, &r.event_id, &self.to_stored(r));
        }
        let mut out = BufWriter::new(file);
        out.write_all(&rows)
            .and_then(|()| out.flush())
            .map_err(|e| staging_error(&path, e))
    }

    /// Moves `session`'s staged file into the records, in file order: its end has arrived.
    pub fn commit_staged(&self, session: u64) -> Result<IngestOutcome, StoreError> {
        let part = self.staging_file(session, PART);
        let ready = self.staging_file(session, READY);
        if !part.exists() {
            // An empty file: no batch was staged.
            return Ok(IngestOutcome::default());
        }
        File::open(&part)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&part, &ready))
            .and_then(|()| File::open(self.staging_dir()).and_then(|d| d.sync_all()))
            .map_err(|e| staging_error(&part, e))?;
        let moved = self.move_staged(&ready);
        if moved.is_err() {
            // A move that failed while the node runs (a full disk) is not resumed at the next
            // open: the operator may have ingested newer rows for the same events meanwhile, which
            // the old file would overwrite. What was applied stays, as on the direct path, and
            // the error says to run the command again.
            let _ = std::fs::remove_file(&ready);
        }
        moved
    }

    /// Drops `session`'s staged rows: the file's end never came.
    pub fn drop_staged(&self, session: u64) -> Result<(), StoreError> {
        let part = self.staging_file(session, PART);
        match std::fs::remove_file(&part) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(staging_error(&part, e)),
            _ => Ok(()),
        }
    }

    /// Applies a `.ready` file in chunks, makes it durable, then removes the file.
    fn move_staged(&self, ready: &Path) -> Result<IngestOutcome, StoreError> {
        let mut input = BufReader::new(File::open(ready).map_err(|e| staging_error(ready, e))?);
        let mut outcome = IngestOutcome::default();
        loop {
            let mut rows = Vec::with_capacity(CHUNK);
            while rows.len() < CHUNK {
                match next_row(&mut input, ready)? {
                    Some(row) => rows.push(row),
                    None => break,
                }
            }
            if rows.is_empty() {
                break;
            }
            let records: Vec<(&str, StoredRecord)> = rows.iter().map(|(id, r)| (id.as_str(), *r)).collect();
            outcome.add(self.apply(&records, sled::Batch::default())?);
        }
        self.flush()?;
        std::fs::remove_file(ready).map_err(|e| staging_error(ready, e))?;
        Ok(outcome)
    }

    /// At open: applies the files whose end had arrived and drops the others.
    pub(super) fn settle_staged(&self) -> Result<(), StoreError> {
        let dir = self.staging_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(staging_error(&dir, e)),
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(|e| staging_error(&dir, e))?;
        files.sort();
        let (mut moved, mut dropped) = (0, 0);
        for path in files {
            match path.extension().and_then(|e| e.to_str()) {
                Some(READY) => {
                    self.move_staged(&path)?;
                    moved += 1;
                }
                Some(PART) => {
                    std::fs::remove_file(&path).map_err(|e| staging_error(&path, e))?;
                    dropped += 1;
                }
                _ => {}
            }
        }
        if moved + dropped > 0 {
            tracing::info!(
                moved,
                dropped,
                "files staged through the admin socket when the node stopped: those whose end had arrived were stored, the others dropped"
            );
        }
        Ok(())
    }
}
