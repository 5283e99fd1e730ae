//! File ingest: read a CSV or JSON Lines file, validate every record, and hand whole batches to
//! a [`RecordSink`] (the store directly, or a running node through its admin socket).
//!
//! By default a file is validated completely before the first record is stored (two passes),
//! so a file with any invalid row stores nothing. With `skip_invalid`, valid rows are stored in
//! one pass and rejected rows go to `<file>.rejected.csv` with their reasons. Each batch is
//! atomic in the store, and re-ingesting an event replaces it, so re-running a file after a
//! crash completes it without double counting.

use std::path::{Path, PathBuf};

use crate::record::reader::RecordReader;
use crate::record::reader::{ReadError, RecordError, RejectedWriter, Row};
use crate::record::validate::ValidationContext;
use crate::record::Record;
use crate::store::{IngestOutcome, Store, StoreError};

/// Records per store batch: sled batches stay small (see STACK notes on memory).
pub const BATCH_SIZE: usize = 1000;
/// Batches between flushes: durability is acknowledged at the end of each file and at least
/// every this many batches.
const FLUSH_EVERY: usize = 100;
/// Invalid rows reported in full before the rest are only counted.
const ERRORS_SHOWN: usize = 10;

/// Ingest failures.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be read at all (missing, unreadable, bad header, unknown format).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file has invalid rows and nothing was stored.
    #[error("{}", invalid_message(.errors, *.total))]
    Invalid { errors: Vec<RecordError>, total: u64 },
    /// The store refused a batch.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A running node refused or dropped the batch.
    #[error("node: {0}")]
    Node(String),
}

fn invalid_message(errors: &[RecordError], total: u64) -> String {
    let mut s = errors.first().map(|e| e.to_string()).unwrap_or_default();
    for e in errors.iter().skip(1) {
        s.push('\n');
        s.push_str(&e.to_string());
    }
    let file = errors.first().map(|e| e.file.as_str()).unwrap_or("file");
    let more = total.saturating_sub(errors.len() as u64);
    if more > 0 {
        s.push_str(&format!("\n… and {more} more invalid rows"));
    }
    s.push_str(&format!(
        "\n{file}: {total} invalid rows; nothing was stored (use --skip-invalid to store the valid rows)"
    ));
    s
}

/// Where validated batches go.
pub trait RecordSink {
    fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError>;
    fn flush(&mut self) -> Result<(), IngestError>;
}

impl RecordSink for &Store {
    fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError> {
        Ok(self.ingest(batch)?)
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        Ok(Store::flush(self)?)
    }
}

/// Progress of one file, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub pass: &'static str,
    pub bytes_read: u64,
    pub total_bytes: u64,
    pub records: u64,
}

/// What ingesting one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub file: PathBuf,
    pub outcome: IngestOutcome,
    pub rejected: u64,
    pub rejected_file: Option<PathBuf>,
}

/// Ingests one file into `sink`.
pub fn ingest_file(
    path: &Path,
    ctx: ValidationContext,
    skip_invalid: bool,
    sink: &mut dyn RecordSink,
    progress: &mut dyn FnMut(Progress),
) -> Result<FileReport, IngestError> {
    if !skip_invalid {
        validate_whole_file(path, ctx.clone(), progress)?;
    }
    let mut reader = RecordReader::open(path, ctx)?;
    let mut rejected_writer = None;
    let mut rejected = 0u64;
    let mut outcome = IngestOutcome::default();
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    let mut batches = 0usize;
    let mut records = 0u64;
    let mut send =
        |batch: &mut Vec<Record>, sink: &mut dyn RecordSink, outcome: &mut IngestOutcome| -> Result<(), IngestError> {
            outcome.add(sink.store(batch)?);
            batch.clear();
            batches += 1;
            if batches % FLUSH_EVERY == 0 {
                sink.flush()?;
            }
            Ok(())
        };
    while let Some(row) = reader.next() {
        match row? {
            Row::Valid(r) => {
                batch.push(r);
                records += 1;
                if batch.len() == BATCH_SIZE {
                    send(&mut batch, sink, &mut outcome)?;
                    progress(Progress {
                        pass: "storing",
                        bytes_read: reader.bytes_read(),
                        total_bytes: reader.total_bytes(),
                        records,
                    });
                }
            }
            Row::Invalid(r) => {
                // Only reachable with skip_invalid: the first pass found none otherwise.
                rejected += 1;
                let writer = match &mut rejected_writer {
                    Some(w) => w,
                    None => rejected_writer.insert(RejectedWriter::create(path)?),
                };
                writer.write(&r)?;
            }
        }
    }
    if !batch.is_empty() {
        send(&mut batch, sink, &mut outcome)?;
    }
    sink.flush()?;
    progress(Progress {
        pass: "storing",
        bytes_read: reader.total_bytes(),
        total_bytes: reader.total_bytes(),
        records,
    });
    let rejected_file = match rejected_writer {
        Some(w) => Some(w.finish()?),
        None => None,
    };
    Ok(FileReport {
        file: path.to_path_buf(),
        outcome,
        rejected,
        rejected_file,
    })
}

/// First pass: every row must be valid, or nothing is stored.
fn validate_whole_file(
    path: &Path,
    ctx: ValidationContext,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), IngestError> {
    let mut reader = RecordReader::open(path, ctx)?;
    let mut errors = Vec::new();
    let mut total = 0u64;
    let mut records = 0u64;
    while let Some(row) = reader.next() {
        records += 1;
        if let Row::Invalid(r) = row? {
            total += 1;
            if errors.len() < ERRORS_SHOWN {
                errors.push(r.error);
            }
        }
        if records % 50_000 == 0 {
            progress(Progress {
                pass: "validating",
                bytes_read: reader.bytes_read(),
                total_bytes: reader.total_bytes(),
                records,
            });
        }
    }
    if total > 0 {
        return Err(IngestError::Invalid { errors, total });
    }
    Ok(())
}
