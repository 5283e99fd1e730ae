//! Streaming readers for record files (SPEC §1): CSV with a header row, or JSON Lines, chosen by
//! extension. A [`RecordReader`] yields one [`Row`] per record, valid or rejected with an error
//! naming file, line and field (`fra.csv:1042: citizenship: unknown country code "FRX"`), and
//! also writes rows back out ([`RejectedWriter`], [`CsvRecordWriter`]). Memory stays flat
//! however large the file: it never loads a file, and never buffers more than one record of at
//! most [`MAX_RECORD_BYTES`]. It never stores, pseudonymises or logs records.
//!
//! Row errors versus fatal errors: anything confined to one record is a row error ([`Row::Invalid`])
//! and reading goes on: a field rule, a wrong number of CSV fields, invalid UTF-8 in a field, a
//! JSON line that does not parse, an unknown or duplicate JSON key, an over-long JSON line. Fatal
//! errors ([`ReadError`]) end the iteration: I/O failures, a bad CSV header, and a CSV record
//! longer than [`MAX_RECORD_BYTES`] (almost always an unclosed quote that swallowed the rest of
//! the file; CSV cannot resynchronise after it).
//!
//! Line numbers are physical lines, 1-based (the CSV header is line 1), counting blank lines and
//! the newlines inside quoted fields; a record spanning lines is reported at its first line.

mod csv_rows;
mod jsonl_rows;
mod writers;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs::File;
use std::path::Path;

use crate::domain::record::validate::{validate_fields, RawRecord, ValidationContext};
use crate::domain::record::Record;
use csv_rows::CsvRows;
use jsonl_rows::JsonlRows;

#[cfg(test)]
pub(crate) use writers::rejected_path;
pub use writers::{CsvRecordWriter, RejectedWriter};

/// The longest record (CSV) or line (JSON Lines) read, in bytes. A real record is a few hundred
/// bytes; the cap keeps memory flat when a file is broken.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// The two input formats of SPEC §1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    Csv,
    JsonLines,
}

impl RecordFormat {
    /// `.csv` is CSV; `.jsonl` and `.ndjson` are JSON Lines (case-insensitive).
    pub fn from_path(path: &Path) -> Result<RecordFormat, ReadError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => Ok(RecordFormat::Csv),
            Some("jsonl" | "ndjson") => Ok(RecordFormat::JsonLines),
            _ => Err(ReadError::UnsupportedFormat {
                file: path.display().to_string(),
            }),
        }
    }
}

/// A problem that stops reading (or writing) a file altogether.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file name's extension is not one of the accepted ones.
    #[error("{file}: unsupported file type (expected a .csv, .jsonl or .ndjson file)")]
    UnsupportedFormat { file: String },
    /// Opening, reading or writing the file failed.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The CSV header row is absent, not UTF-8, or does not name exactly the SPEC columns.
    #[error("{file}:1: header: {message}")]
    Header { file: String, message: String },
    /// A CSV record grew past [`MAX_RECORD_BYTES`]; the parser cannot find the next record.
    #[error(
        "{file}:{line}: record longer than {limit} bytes (an unclosed quote?); the rest of the file cannot be read"
    )]
    RecordTooLong { file: String, line: u64, limit: u64 },
}

impl ReadError {
    fn io(file: &str, source: std::io::Error) -> ReadError {
        ReadError::Io {
            file: file.to_string(),
            source,
        }
    }
}

/// Why one record was rejected. Displays as `fra.csv:1042: citizenship: unknown country code
/// "FRX"`, or `fra.csv:7: expected 11 fields …` when no single field is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The file as the user named it.
    pub file: String,
    /// Physical line (1-based) where the record starts.
    pub line: u64,
    /// The field at fault, when there is one.
    pub field: Option<&'static str>,
    pub message: String,
}

impl RecordError {
    /// The error without its `file:line:` prefix, as the `reason` column of a rejected file.
    /// The message may quote a field of any length: it is cut to an excerpt.
    pub fn reason(&self) -> String {
        let message = crate::domain::excerpt::excerpt(&self.message);
        match self.field {
            Some(field) => format!("{field}: {message}"),
            None => message.into_owned(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason())
    }
}

impl std::error::Error for RecordError {}

/// One record read from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Valid(Record),
    /// Boxed: rejected rows are rare and four times the size of a record.
    Invalid(Box<Rejected>),
}

/// A rejected record: where it was, what was read of it, and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    /// As much of the record as could be read (empty fields for what could not).
    pub raw: RawRecord,
    pub error: RecordError,
}

/// What a format reader hands back before validation.
struct RawRow {
    line: u64,
    raw: RawRecord,
    /// A problem found while reading (before the field rules run).
    problem: Option<(Option<&'static str>, String)>,
}

enum Source {
    Csv(CsvRows),
    JsonLines(JsonlRows),
}

/// Reads and validates the records of one file, one at a time.
pub struct RecordReader {
    file: String,
    ctx: ValidationContext,
    total_bytes: u64,
    source: Source,
    /// Set after a fatal error, so the iterator ends instead of reading a broken stream on.
    failed: bool,
}

impl RecordReader {
    /// Opens `path` in the format its extension names; for CSV, reads and checks the header now.
    pub fn open(path: &Path, ctx: ValidationContext) -> Result<RecordReader, ReadError> {
        let file = path.display().to_string();
        let format = RecordFormat::from_path(path)?;
        let handle = File::open(path).map_err(|e| ReadError::io(&file, e))?;
        let total_bytes = handle.metadata().map_err(|e| ReadError::io(&file, e))?.len();
        let source = match format {
            RecordFormat::Csv => Source::Csv(CsvRows::open(&file, handle)?),
            RecordFormat::JsonLines => Source::JsonLines(JsonlRows::new(&file, handle)),
        };
        Ok(RecordReader {
            file,
            ctx,
            total_bytes,
            source,
            failed: false,
        })
    }

    /// Bytes of the file read so far (for progress); equals [`RecordReader::total_bytes`] at the
    /// end. For CSV this runs up to one buffer ahead of the rows returned.
    pub fn bytes_read(&self) -> u64 {
        match &self.source {
            Source::Csv(rows) => rows.bytes_read(),
            Source::JsonLines(rows) => rows.bytes_read(),
        }
    }

    /// The file's size when it was opened.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The file as the user named it, as it appears in error messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn judge(&self, row: RawRow) -> Row {
        let problem = match row.problem {
            Some(problem) => problem,
            None => match validate_fields(&row.raw, &self.ctx) {
                Ok(record) => return Row::Valid(record),
                Err(error) => (Some(error.field), error.message),
            },
        };
        let (field, message) = problem;
        let error = RecordError {
            file: self.file.clone(),
            line: row.line,
            field,
            message,
        };
        Row::Invalid(Box::new(Rejected {
            line: row.line,
            raw: row.raw,
            error,
        }))
    }
}

impl Iterator for RecordReader {
    type Item = Result<Row, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = match &mut self.source {
            Source::Csv(rows) => rows.next_row(),
            Source::JsonLines(rows) => rows.next_row(),
        };
        match next? {
            Ok(row) => Some(Ok(self.judge(row))),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}
