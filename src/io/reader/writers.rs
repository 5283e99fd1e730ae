//! Writing records back to CSV: the rejected rows of an ingest (`<file>.rejected.csv`, SPEC §1)
//! and plain SPEC-column files (synthetic data, tests). Writes only the files it is asked for;
//! never validates or alters what it writes.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::{ReadError, Rejected};
use crate::domain::record::validate::RawRecord;
use crate::domain::record::{Record, COLUMNS};

/// Where the rejected rows of `input` go: beside it, named `<input>.rejected.csv`
/// (`fra.csv` → `fra.csv.rejected.csv`), so inputs differing only in extension do not collide.
pub fn rejected_path(input: &Path) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".rejected.csv");
    PathBuf::from(name)
}

fn write_error(file: &str, error: csv::Error) -> ReadError {
    ReadError::io(file, std::io::Error::from(error))
}

/// Writes rejected rows: the SPEC columns as read, then `line` and `error` (the SPEC columns already include a `reason`).
///
/// The file holds raw `person_id` values, as the input beside it does (an operator needs them
/// to correct the rows), so it gets no wider permissions than the input.
pub struct RejectedWriter {
    path: PathBuf,
    file: String,
    csv: csv::Writer<File>,
}

impl RejectedWriter {
    /// Creates (or replaces) `<input>.rejected.csv` and writes its header.
    pub fn create(input: &Path) -> Result<RejectedWriter, ReadError> {
        let path = rejected_path(input);
        let file = path.display().to_string();
        let handle = File::create(&path).map_err(|e| ReadError::io(&file, e))?;
        restrict_like(&path, input).map_err(|e| ReadError::io(&file, e))?;
        let mut csv = csv::Writer::from_writer(handle);
        let header = COLUMNS.iter().copied().chain(["line", "error"]);
        csv.write_record(header).map_err(|e| write_error(&file, e))?;
        Ok(RejectedWriter { path, file, csv })
    }

    pub fn write(&mut self, rejected: &Rejected) -> Result<(), ReadError> {
        let line = rejected.line.to_string();
        let reason = rejected.error.reason();
        let fields = rejected
            .raw
            .fields()
            .into_iter()
            .chain([line.as_str(), reason.as_str()]);
        self.csv.write_record(fields).map_err(|e| write_error(&self.file, e))
    }

    /// Flushes the file and returns its path.
    pub fn finish(mut self) -> Result<PathBuf, ReadError> {
        self.csv.flush().map_err(|e| ReadError::io(&self.file, e))?;
        Ok(self.path)
    }

    /// Removes the file: the ingest it belonged to stopped part way, so a list of rejected rows
    /// would not match what was stored. Best effort; a re-run writes it again.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

/// Gives `path` the owner's read and write bits plus whatever group and others may do with
/// `input`, so a copy of rows from `input` is never more exposed than `input` itself.
#[cfg(unix)]
fn restrict_like(path: &Path, input: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let input_mode = std::fs::metadata(input)?.permissions().mode();
    let mode = (input_mode & 0o066) | 0o600;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict_like(_path: &Path, _input: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Writes records as SPEC-column CSV, the form [`super::RecordReader`] reads back.
pub struct CsvRecordWriter {
    file: String,
    csv: csv::Writer<File>,
}

impl CsvRecordWriter {
    /// Creates (or replaces) `path` and writes the header.
    pub fn create(path: &Path) -> Result<CsvRecordWriter, ReadError> {
        let file = path.display().to_string();
        let handle = File::create(path).map_err(|e| ReadError::io(&file, e))?;
        let mut csv = csv::Writer::from_writer(handle);
        csv.write_record(COLUMNS).map_err(|e| write_error(&file, e))?;
        Ok(CsvRecordWriter { file, csv })
    }

    pub fn write(&mut self, record: &Record) -> Result<(), ReadError> {
        let raw = RawRecord::from_record(record);
        self.csv
            .write_record(raw.fields())
            .map_err(|e| write_error(&self.file, e))
    }

    /// Flushes everything written to the file.
    pub fn finish(mut self) -> Result<(), ReadError> {
        self.csv.flush().map_err(|e| ReadError::io(&self.file, e))
    }
}
