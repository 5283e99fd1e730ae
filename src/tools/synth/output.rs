//! CSV output for the generator: one buffered writer per file that formats events straight into
//! a reused row, so writing a record allocates nothing once the buffers have grown. Must never
//! decide *what* is written (that is the model's job), only how it is spelled.

use std::fmt::Write as _;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use csv::ByteRecord;

use super::model::Event;
use super::SynthError;
use crate::domain::model::Country;
use crate::domain::record::Reason;

pub(super) struct CsvFile {
    path: PathBuf,
    csv: csv::Writer<BufWriter<File>>,
    row: ByteRecord,
    scratch: String,
    rows: u64,
}

impl CsvFile {
    /// Creates (or truncates) the file and writes the header.
    pub(super) fn create(path: &Path, header: &[&str]) -> Result<CsvFile, SynthError> {
        let file = File::create(path).map_err(|source| write_error(path, source))?;
        let mut csv = csv::WriterBuilder::new().from_writer(BufWriter::with_capacity(1 << 16, file));
        csv.write_record(header).map_err(|e| write_error(path, e.into()))?;
        Ok(CsvFile {
            path: path.to_path_buf(),
            csv,
            row: ByteRecord::with_capacity(128, header.len()),
            scratch: String::with_capacity(32),
            rows: 0,
        })
    }

    /// Writes one record in `COLUMNS` order, numbering it `<CODE>-<9 digits>` in file order.
    pub(super) fn write_event(&mut self, reporter: Country, event: &Event) -> Result<(), SynthError> {
        self.row.clear();
        // `write!` into a String cannot fail; the results are ignored for that reason only.
        self.scratch.clear();
        let _ = write!(self.scratch, "{reporter}-{:09}", self.rows + 1);
        self.row.push_field(self.scratch.as_bytes());
        self.scratch.clear();
        // A leading letter and 16 hex digits: plainly synthetic, never shaped like a real
        // identity number.
        let _ = write!(self.scratch, "P{:016x}", event.person);
        self.row.push_field(self.scratch.as_bytes());
        self.row.push_field(event.event_type.as_str().as_bytes());
        self.scratch.clear();
        let _ = write!(self.scratch, "{}", super::model::day_of(event.day));
        self.row.push_field(self.scratch.as_bytes());
        self.row.push_field(&event.citizenship.bytes());
        push_country(&mut self.row, event.country_of_birth);
        push_country(&mut self.row, event.partner_country);
        self.row.push_field(event.sex.as_str().as_bytes());
        self.push_number(event.birth_year.map(i64::from));
        // Empty means unknown (SPEC §1), and is what most registers send.
        let reason = match event.reason {
            Reason::Unknown => "",
            known => known.as_str(),
        };
        self.row.push_field(reason.as_bytes());
        self.push_number(event.duration_months.map(i64::from));
        self.write_row()
    }

    /// Writes one row of plain text fields.
    pub(super) fn write_fields(&mut self, fields: &[&str]) -> Result<(), SynthError> {
        self.row.clear();
        for field in fields {
            self.row.push_field(field.as_bytes());
        }
        self.write_row()
    }

    /// Flushes everything to disk and returns the number of rows written (header excluded).
    pub(super) fn finish(mut self) -> Result<u64, SynthError> {
        self.csv.flush().map_err(|source| write_error(&self.path, source))?;
        Ok(self.rows)
    }

    fn push_number(&mut self, value: Option<i64>) {
        self.scratch.clear();
        if let Some(value) = value {
            let _ = write!(self.scratch, "{value}");
        }
        self.row.push_field(self.scratch.as_bytes());
    }

    fn write_row(&mut self) -> Result<(), SynthError> {
        self.csv
            .write_byte_record(&self.row)
            .map_err(|e| write_error(&self.path, e.into()))?;
        self.rows += 1;
        Ok(())
    }
}

fn push_country(row: &mut ByteRecord, country: Option<Country>) {
    match country {
        Some(country) => row.push_field(&country.bytes()),
        None => row.push_field(b""),
    }
}

fn write_error(path: &Path, source: std::io::Error) -> SynthError {
    SynthError::Write {
        path: path.to_path_buf(),
        source,
    }
}
