//! Printing the common view: the output formats, each rendered by its own module from the
//! lines in [`super::lines`].

use std::io::{self, Write};

use super::lines::ViewFilter;
use super::{delimited, json, table, View};
use crate::domain::model::Cube;

/// `accord view --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// `flows` rows (SPEC §8 columns), or the long side-by-side format for `asylum`/`permits`.
    Csv,
    /// One JSON object with `digest`, `rule`, `rows`, `side_by_side` and `notes`.
    Json,
    /// SDMX-CSV 2.0, one observation per reported side.
    SdmxCsv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Table, Format::Csv, Format::Json, Format::SdmxCsv];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::SdmxCsv => "sdmx-csv",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// Prints the part of `view` that `filter` selects.
///
/// - `table`: every selected cube, `flows` pairs first, then side-by-side tables and notes.
/// - `csv`: `flows` unless the filter names `asylum` or `permits` (one CSV has one header, so
///   the cubes are never mixed); without a cube filter that means `flows`.
/// - `json`: `flows` rows and side-by-side rows of the selected cubes, plus notes; its `digest` is
///   always the digest of the whole view, whatever the filter.
/// - `sdmx-csv`: like `csv`, one dataflow per output (see `delimited` for the mapping).
pub fn render(view: &View, filter: &ViewFilter, format: Format) -> String {
    let mut bytes = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = render_to(view, filter, format, &mut bytes);
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`render`] into a writer, as it is produced: CSV and SDMX-CSV a line at a time, so a view
/// far larger than memory allows as text goes out without being held whole.
pub fn render_to(view: &View, filter: &ViewFilter, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => out.write_all(table::render(view, filter).as_bytes()),
        Format::Json => out.write_all(json::render(view, filter).as_bytes()),
        Format::Csv => match filter.cube {
            Some(cube @ (Cube::Asylum | Cube::Permits)) => delimited::side_by_side_csv(view, filter, cube, out),
            Some(Cube::Flows) | None => delimited::flows_csv(view, filter, out),
        },
        Format::SdmxCsv => match filter.cube {
            Some(cube @ (Cube::Asylum | Cube::Permits)) => delimited::side_by_side_sdmx(view, filter, cube, out),
            Some(Cube::Flows) | None => delimited::flows_sdmx(view, filter, out),
        },
    }
}
