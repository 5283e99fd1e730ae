//! File ingest: read a CSV or JSON Lines file, validate every record, and hand whole batches to
//! a [`RecordSink`] (the store directly, or a running node through its admin socket).
//!
//! By default a file is validated completely before the first record is stored (two passes),
//! so a file with any invalid row stores nothing. With `skip_invalid`, valid rows are stored in
//! one pass and rejected rows go to `<file>.rejected.csv` with their reasons. Each batch is
//! atomic in the store, and re-ingesting an event replaces it, so re-running a file after a
//! crash completes it without double counting.

use std::path::{Path, PathBuf};

use crate::domain::record::validate::ValidationContext;
use crate::domain::record::Record;
use crate::io::reader::RecordReader;
use crate::io::reader::{ReadError, RecordError, RejectedWriter, Row};
use crate::io::store::{IngestOutcome, Store, StoreError};

/// Records per store batch: sled batches stay small (see STACK notes on memory).
pub const BATCH_SIZE: usize = 1000;
/// Batches between flushes: durability is acknowledged at the end of each file and at least
/// every this many batches.
const FLUSH_EVERY: usize = 100;
/// Ingest failures.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be read at all (missing, unreadable, bad header, unknown format).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file has invalid rows and nothing was stored. One line (SPEC §6): the first invalid
    /// row names file, line and field; the count and the way forward follow.
    #[error("{first}; {} in {}, nothing was stored (--skip-invalid stores the valid rows and writes the invalid ones to {}.rejected.csv)",
        rows(*.total), .first.file, .first.file)]
    Invalid { first: RecordError, total: u64 },
    /// The store refused a batch.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A running node refused or dropped the batch.
    #[error("node: {0}")]
    Node(String),
}

fn rows(n: u64) -> String {
    if n == 1 {
        "1 invalid row".into()
    } else {
        format!("{n} invalid rows")
    }
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
///
/// The store pass is a pipeline: a reader thread parses and validates rows into batches while
/// this thread stores the previous batch, so parsing hides behind sled's writes on a second core.
/// Batches reach the sink in file order, exactly as a single loop would hand them over.
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
    let reader = RecordReader::open(path, ctx)?;
    let total_bytes = reader.total_bytes();
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel::<Parsed>(PIPELINE_DEPTH);
    std::thread::scope(|scope| {
        let parser = scope.spawn(move || parse_batches(path, reader, batches_tx));
        let stored = store_batches(batches_rx, sink, progress, total_bytes);
        // A store failure drops the receiver, which stops the parser at its next batch.
        let parsed = parser.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let (Err(_), Ok((_, Some(rejected_file)))) = (&stored, &parsed) {
            // The parser got to the end before the store failed: its list no longer matches.
            let _ = std::fs::remove_file(rejected_file);
        }
        let (outcome, records) = stored?;
        let (rejected, rejected_file) = parsed?;
        progress(Progress {
            pass: "storing",
            bytes_read: total_bytes,
            total_bytes,
            records,
        });
        Ok(FileReport {
            file: path.to_path_buf(),
            outcome,
            rejected,
            rejected_file,
        })
    })
}

/// Batches parsed ahead of the store: enough to keep both threads busy, little memory.
const PIPELINE_DEPTH: usize = 2;

/// One parsed batch and how far into the file it reaches.
struct Parsed {
    records: Vec<Record>,
    bytes_read: u64,
}

/// Reader side of the pipeline: valid rows go out in batches, invalid ones (reachable only with
/// `skip_invalid`, the first pass found none otherwise) to `<file>.rejected.csv`.
fn parse_batches(
    path: &Path,
    mut reader: RecordReader,
    batches: std::sync::mpsc::SyncSender<Parsed>,
) -> Result<(u64, Option<PathBuf>), IngestError> {
    let mut rejected_writer: Option<RejectedWriter> = None;
    let mut rejected = 0u64;
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    while let Some(row) = reader.next() {
        match row? {
            Row::Valid(r) => {
                batch.push(r);
                if batch.len() == BATCH_SIZE {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_SIZE));
                    if batches
                        .send(Parsed {
                            records: full,
                            bytes_read: reader.bytes_read(),
                        })
                        .is_err()
                    {
                        // The store side stopped and reports why.
                        if let Some(w) = rejected_writer {
                            w.discard();
                        }
                        return Ok((rejected, None));
                    }
                }
            }
            Row::Invalid(r) => {
                rejected += 1;
                let writer = match &mut rejected_writer {
                    Some(w) => w,
                    None => rejected_writer.insert(RejectedWriter::create(path)?),
                };
                writer.write(&r)?;
            }
        }
    }
    if !batch.is_empty()
        && batches
            .send(Parsed {
                records: batch,
                bytes_read: reader.bytes_read(),
            })
            .is_err()
    {
        if let Some(w) = rejected_writer {
            w.discard();
        }
        return Ok((rejected, None));
    }
    let rejected_file = match rejected_writer {
        Some(w) => Some(w.finish()?),
        None => None,
    };
    Ok((rejected, rejected_file))
}

/// Store side of the pipeline: each batch is one atomic store call, with a flush every
/// [`FLUSH_EVERY`] batches and at the end.
fn store_batches(
    batches: std::sync::mpsc::Receiver<Parsed>,
    sink: &mut dyn RecordSink,
    progress: &mut dyn FnMut(Progress),
    total_bytes: u64,
) -> Result<(IngestOutcome, u64), IngestError> {
    let mut outcome = IngestOutcome::default();
    let mut records = 0u64;
    for (n, parsed) in batches.into_iter().enumerate() {
        outcome.add(sink.store(&parsed.records)?);
        records += parsed.records.len() as u64;
        if (n + 1) % FLUSH_EVERY == 0 {
            sink.flush()?;
        }
        progress(Progress {
            pass: "storing",
            bytes_read: parsed.bytes_read,
            total_bytes,
            records,
        });
    }
    sink.flush()?;
    Ok((outcome, records))
}

/// First pass: every row must be valid, or nothing is stored.
fn validate_whole_file(
    path: &Path,
    ctx: ValidationContext,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), IngestError> {
    let mut reader = RecordReader::open(path, ctx)?;
    let mut first = None;
    let mut total = 0u64;
    let mut records = 0u64;
    while let Some(row) = reader.next() {
        records += 1;
        if let Row::Invalid(r) = row? {
            total += 1;
            first.get_or_insert(r.error);
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
    if let Some(first) = first {
        return Err(IngestError::Invalid { first, total });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Country;

    /// A sink that remembers what reached it and can be told to refuse a batch.
    #[derive(Default)]
    struct Recorder {
        batches: Vec<Vec<String>>,
        flushes: usize,
        refuse_batch: Option<usize>,
    }

    impl RecordSink for Recorder {
        fn store(&mut self, batch: &[Record]) -> Result<IngestOutcome, IngestError> {
            if self.refuse_batch == Some(self.batches.len()) {
                return Err(IngestError::Node("refused".into()));
            }
            self.batches.push(batch.iter().map(|r| r.event_id.clone()).collect());
            Ok(IngestOutcome::default())
        }

        fn flush(&mut self) -> Result<(), IngestError> {
            self.flushes += 1;
            Ok(())
        }
    }

    fn csv_file(dir: &Path, rows: usize, invalid_every: Option<usize>) -> PathBuf {
        let mut text = String::from(
            "event_id,person_id,event_type,event_date,citizenship,country_of_birth,partner_country,sex,birth_year,reason,duration_months\n",
        );
        for i in 0..rows {
            let citizenship = match invalid_every {
                Some(k) if i % k == k - 1 => "FRX",
                _ => "FRA",
            };
            text.push_str(&format!(
                "E{i:06},P{i},immigration,2025-03-01,{citizenship},FRA,FRA,F,1990,work,24\n"
            ));
        }
        let path = dir.join("records.csv");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn ctx() -> ValidationContext {
        ValidationContext::for_today(Country::parse("DEU").unwrap())
    }

    #[test]
    fn batches_reach_the_sink_whole_and_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_file(dir.path(), 2 * BATCH_SIZE + 500, None);
        let mut sink = Recorder::default();
        let mut last = None;
        let report = ingest_file(&path, ctx(), false, &mut sink, &mut |p| last = Some(p)).unwrap();

        let sizes: Vec<usize> = sink.batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [BATCH_SIZE, BATCH_SIZE, 500]);
        let ids: Vec<&String> = sink.batches.iter().flatten().collect();
        let expected: Vec<String> = (0..2 * BATCH_SIZE + 500).map(|i| format!("E{i:06}")).collect();
        assert!(ids.iter().zip(&expected).all(|(a, b)| *a == b) && ids.len() == expected.len());
        assert_eq!(sink.flushes, 1);
        assert_eq!(report.rejected, 0);
        let last = last.unwrap();
        assert_eq!((last.records, last.bytes_read), (2500, last.total_bytes));
    }

    #[test]
    fn a_refused_batch_stops_the_file_and_names_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_file(dir.path(), 10 * BATCH_SIZE, None);
        let mut sink = Recorder {
            refuse_batch: Some(1),
            ..Recorder::default()
        };
        let err = ingest_file(&path, ctx(), false, &mut sink, &mut |_| {}).unwrap_err();
        assert_eq!(err.to_string(), "node: refused");
        assert_eq!(sink.batches.len(), 1, "nothing after the refused batch is stored");
    }

    #[test]
    fn a_refused_batch_leaves_no_partial_rejected_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_file(dir.path(), 10 * BATCH_SIZE, Some(100));
        let rejected = crate::io::reader::rejected_path(&path);
        // Refused early (the parser is stopped part way) and refused last (it may have finished).
        for refuse in [1, 9] {
            let mut sink = Recorder {
                refuse_batch: Some(refuse),
                ..Recorder::default()
            };
            let err = ingest_file(&path, ctx(), true, &mut sink, &mut |_| {}).unwrap_err();
            assert_eq!(err.to_string(), "node: refused");
            assert!(
                !rejected.exists(),
                "{} would not match what was stored",
                rejected.display()
            );
        }
    }

    #[test]
    fn invalid_rows_reject_the_file_in_one_line_naming_the_first_and_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_file(dir.path(), 1500, Some(100));
        let mut sink = Recorder::default();
        let err = ingest_file(&path, ctx(), false, &mut sink, &mut |_| {}).unwrap_err();
        let message = err.to_string();
        assert_eq!(message.lines().count(), 1, "{message}");
        // Row 99 (E000099) is the first invalid one; the header is line 1.
        let file = path.display();
        assert_eq!(
            message,
            format!(
                "{file}:101: citizenship: unknown country code \"FRX\"; 15 invalid rows in {file}, nothing was \
                 stored (--skip-invalid stores the valid rows and writes the invalid ones to {file}.rejected.csv)"
            )
        );
        assert!(sink.batches.is_empty() && sink.flushes == 0, "nothing reaches the sink");
    }

    #[test]
    fn skip_invalid_stores_the_valid_rows_and_writes_the_rest_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv_file(dir.path(), 1500, Some(100));
        let mut sink = Recorder::default();
        let report = ingest_file(&path, ctx(), true, &mut sink, &mut |_| {}).unwrap();
        assert_eq!(report.rejected, 15);
        assert_eq!(sink.batches.iter().map(Vec::len).sum::<usize>(), 1485);
        let rejected = std::fs::read_to_string(report.rejected_file.unwrap()).unwrap();
        assert_eq!(rejected.lines().count(), 16, "header and one line per rejected row");
        assert!(rejected.contains("E000099") && rejected.contains("FRX"));
    }
}
