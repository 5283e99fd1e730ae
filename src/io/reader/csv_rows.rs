//! CSV rows: checks the header, then turns each CSV record into a [`RawRow`] with its physical
//! line number. Never validates field values (the caller does) and never holds more than one
//! record in memory.
//!
//! Why the parser runs with `\n` as its only terminator: the csv crate reports a record's
//! position as where the previous one ended, which is wrong after blank lines and under CRLF.
//! With `\n` alone every terminator is consumed with its record, so the first line of a record
//! is the line count after it minus the newlines inside it (and its own terminator, if any);
//! the `\r` of CRLF is left on the last field and stripped here.

use std::fs::File;
use std::io::{self, Read};

use csv::ByteRecord;

use super::{RawRow, ReadError, MAX_RECORD_BYTES};
use crate::domain::record::validate::RawRecord;
use crate::domain::record::COLUMNS;

/// Large reads keep the parser fed on multi-GB files.
const BUFFER_BYTES: usize = 64 * 1024;

/// A reader that counts bytes pulled from the file (progress), notices end of file (line
/// arithmetic) and refuses to pull more than [`MAX_RECORD_BYTES`] past the current record's
/// start (memory bound).
struct CountingRead {
    inner: File,
    pulled: u64,
    at_eof: bool,
    record_start: u64,
    overflowed: bool,
}

impl Read for CountingRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pulled.saturating_sub(self.record_start) > MAX_RECORD_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("record too long"));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_eof = true;
        }
        self.pulled += n as u64;
        Ok(n)
    }
}

pub(super) struct CsvRows {
    file: String,
    csv: csv::Reader<CountingRead>,
    /// Reused for every record, so reading allocates only the fields it returns.
    record: ByteRecord,
    /// For each CSV column, its index in [`COLUMNS`].
    columns: Vec<usize>,
}

impl CsvRows {
    pub(super) fn open(file: &str, handle: File) -> Result<CsvRows, ReadError> {
        let counting = CountingRead {
            inner: handle,
            pulled: 0,
            at_eof: false,
            record_start: 0,
            overflowed: false,
        };
        let csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER_BYTES)
            .from_reader(counting);
        let mut rows = CsvRows {
            file: file.to_string(),
            csv,
            record: ByteRecord::new(),
            columns: Vec::new(),
        };
        let header_message = |message: String| ReadError::Header {
            file: file.to_string(),
            message,
        };
        match rows.read_record() {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(header_message(format!(
                    "the file is empty; expected a header row naming the columns {}",
                    COLUMNS.join(", ")
                )))
            }
            Err(error) => return Err(error),
        }
        rows.columns = header_columns(&rows.record).map_err(header_message)?;
        Ok(rows)
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.csv.get_ref().pulled
    }

    /// Reads the next non-blank record into `self.record`; returns its first line.
    fn read_record(&mut self) -> Result<Option<u64>, ReadError> {
        loop {
            let line_before = self.csv.position().line();
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(_) if self.csv.get_ref().overflowed => {
                    return Err(ReadError::RecordTooLong {
                        file: self.file.clone(),
                        line: line_before,
                        limit: MAX_RECORD_BYTES,
                    });
                }
                Err(error) => return Err(ReadError::io(&self.file, io::Error::from(error))),
            }
            let end = self.csv.position();
            let (end_line, end_byte) = (end.line(), end.byte());
            let counting = self.csv.get_mut();
            counting.record_start = end_byte;
            let terminated = u64::from(!counting.at_eof);
            let inner_newlines = self.record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
            // A line holding only "\r" (a blank line in a CRLF file) is blank too.
            if self.record.len() == 1 && field_bytes(&self.record, 0).is_empty() {
                continue;
            }
            return Ok(Some(end_line.saturating_sub(inner_newlines + terminated).max(1)));
        }
    }

    pub(super) fn next_row(&mut self) -> Option<Result<RawRow, ReadError>> {
        let line = match self.read_record() {
            Ok(Some(line)) => line,
            Ok(None) => return None,
            Err(error) => return Some(Err(error)),
        };
        let mut raw = RawRecord::default();
        let mut problem = None;
        for (column, &index) in self.columns.iter().enumerate().take(self.record.len()) {
            let bytes = field_bytes(&self.record, column);
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text.to_string(),
                Err(_) => {
                    problem.get_or_insert((Some(COLUMNS[index]), "not valid UTF-8".to_string()));
                    String::from_utf8_lossy(bytes).into_owned()
                }
            };
            if let Some(slot) = raw.field_at_mut(index) {
                *slot = text;
            }
        }
        if self.record.len() != self.columns.len() {
            let message = format!(
                "expected {} fields as in the header, found {}",
                self.columns.len(),
                self.record.len()
            );
            problem = Some((None, message));
        }
        Some(Ok(RawRow { line, raw, problem }))
    }
}

/// Field `index` of `record`, without the `\r` a CRLF line leaves on the last field.
fn field_bytes(record: &ByteRecord, index: usize) -> &[u8] {
    let bytes = record.get(index).unwrap_or_default();
    if index + 1 == record.len() {
        bytes.strip_suffix(b"\r").unwrap_or(bytes)
    } else {
        bytes
    }
}

/// Maps header columns to [`COLUMNS`] indexes, or says everything wrong with the header.
fn header_columns(header: &ByteRecord) -> Result<Vec<usize>, String> {
    let mut columns = Vec::with_capacity(header.len());
    let mut seen = [false; COLUMNS.len()];
    let mut problems = Vec::new();
    let mut unknown = Vec::new();
    for column in 0..header.len() {
        let Ok(name) = std::str::from_utf8(field_bytes(header, column)) else {
            problems.push(format!("column {} is not valid UTF-8", column + 1));
            continue;
        };
        match COLUMNS.iter().position(|c| *c == name) {
            Some(index) if seen[index] => problems.push(format!("duplicate column {name:?}")),
            Some(index) => {
                seen[index] = true;
                columns.push(index);
            }
            None => unknown.push(format!("{name:?}")),
        }
    }
    if !unknown.is_empty() {
        let plural = if unknown.len() == 1 { "" } else { "s" };
        problems.push(format!("unknown column{plural} {}", unknown.join(", ")));
    }
    let missing: Vec<&str> = COLUMNS
        .iter()
        .zip(seen)
        .filter(|(_, seen)| !seen)
        .map(|(c, _)| *c)
        .collect();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 { "" } else { "s" };
        problems.push(format!("missing column{plural} {}", missing.join(", ")));
    }
    if problems.is_empty() {
        Ok(columns)
    } else {
        Err(format!(
            "{} (expected the columns {})",
            problems.join("; "),
            COLUMNS.join(", ")
        ))
    }
}
