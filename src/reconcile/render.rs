//! Printing the common view: the output formats, each rendered by its own module from the
//! lines in [`super::lines`].

use super::lines::ViewFilter;
use super::{delimited, json, table, View};
use crate::model::Cube;

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
    match format {
        Format::Table => table::render(view, filter),
        Format::Json => json::render(view, filter),
        Format::Csv => match filter.cube {
            Some(cube @ (Cube::Asylum | Cube::Permits)) => delimited::side_by_side_csv(view, filter, cube),
            Some(Cube::Flows) | None => delimited::flows_csv(view, filter),
        },
        Format::SdmxCsv => match filter.cube {
            Some(cube @ (Cube::Asylum | Cube::Permits)) => delimited::side_by_side_sdmx(view, filter, cube),
            Some(Cube::Flows) | None => delimited::flows_sdmx(view, filter),
        },
    }
}
