//! The flattened `flows` lines every format prints from (each pair's total first, then its
//! rows), the side-by-side rows, the filter that selects them, and the text of a value. Read
//! only: nothing here recomputes a figure, so every format shows the same numbers.

use crate::domain::dataset::Code;
use crate::domain::model::{Country, Cube, Period};

use super::{Estimate, MirrorKey, PairKey, Reported, SideBySideEntry, SideBySideKey, Source, View};

/// What part of the view to print. `origin` and `destination` select `flows` pairs only;
/// `cube` and `period` apply to every cube.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ViewFilter {
    pub cube: Option<Cube>,
    pub period: Option<Period>,
    pub origin: Option<Country>,
    pub destination: Option<Country>,
}

impl ViewFilter {
    /// Whether `flows` lines are printed at all.
    pub(super) fn shows_flows(&self) -> bool {
        self.cube.is_none_or(|c| c == Cube::Flows)
    }

    pub(super) fn admits_pair(&self, pair: &PairKey) -> bool {
        self.shows_flows()
            && self.period.is_none_or(|p| p == pair.period)
            && self.origin.is_none_or(|c| c == pair.origin)
            && self.destination.is_none_or(|c| c == pair.destination)
    }

    pub(super) fn admits_side_by_side(&self, key: &SideBySideKey) -> bool {
        self.cube.is_none_or(|c| c == key.cube) && self.period.is_none_or(|p| p == key.period)
    }
}

/// One side of a printed `flows` line.
#[derive(Debug, Clone, Copy)]
pub struct LineSide<'a> {
    pub reported: Reported,
    /// Confidential cells left out of a total; none on detail rows.
    pub withheld: Option<u64>,
    pub source: Option<&'a Source>,
}

/// One printed `flows` line: a pair total (`breakdown` none) or a row.
#[derive(Debug, Clone, Copy)]
pub struct FlowLine<'a> {
    pub pair: PairKey,
    pub breakdown: Option<&'a MirrorKey>,
    pub sender: LineSide<'a>,
    pub receiver: LineSide<'a>,
    pub reconciled: Option<u64>,
    pub reconciled_status: &'static str,
    /// On a total: rows without a reconciled figure, left out of it; none on detail rows.
    pub reconciled_withheld: Option<u64>,
    pub asymmetry: Option<f64>,
    pub flag: bool,
    /// On a total: the modelled estimate (SPEC §15); none on detail rows.
    pub estimate: Option<Estimate>,
}

impl<'a> FlowLine<'a> {
    /// Citizenship, sex and age band; `_T` on a total.
    pub fn breakdown_fields(&self) -> [&'a str; 3] {
        match self.breakdown {
            Some(key) => [&key.citizenship, &key.sex, &key.age_band],
            None => ["_T", "_T", "_T"],
        }
    }
}

/// The selected `flows` lines: for each pair in order, its total and then its rows. Lazy, so
/// a renderer writing a large view holds one line at a time.
pub fn flow_lines<'a>(view: &'a View, filter: &ViewFilter) -> impl Iterator<Item = FlowLine<'a>> + 'a {
    let filter = *filter;
    view.pairs
        .iter()
        .filter(move |(pair, _)| filter.admits_pair(pair))
        .flat_map(move |(pair, total)| {
            let pair = *pair;
            let total_line = FlowLine {
                pair,
                breakdown: None,
                sender: LineSide {
                    reported: total.sender.reported,
                    withheld: withheld(total.sender.reported, total.sender.withheld),
                    source: total.sender.source.as_ref(),
                },
                receiver: LineSide {
                    reported: total.receiver.reported,
                    withheld: withheld(total.receiver.reported, total.receiver.withheld),
                    source: total.receiver.source.as_ref(),
                },
                reconciled: total.reconciled,
                reconciled_status: total.reconciled_status(),
                reconciled_withheld: Some(total.reconciled_withheld),
                asymmetry: total.asymmetry,
                flag: total.flag,
                estimate: total.estimate,
            };
            // Empty strings sort first, so this is the smallest key of the pair.
            let first = MirrorKey {
                pair,
                citizenship: Code::EMPTY,
                sex: Code::EMPTY,
                age_band: Code::EMPTY,
            };
            let rows = view
                .rows
                .range_from(&first)
                .take_while(move |(key, _)| key.pair == pair)
                .map(move |(key, row)| FlowLine {
                    pair,
                    breakdown: Some(key),
                    sender: LineSide {
                        reported: row.sender.reported,
                        withheld: None,
                        source: row.sender.source.as_deref(),
                    },
                    receiver: LineSide {
                        reported: row.receiver.reported,
                        withheld: None,
                        source: row.receiver.source.as_deref(),
                    },
                    reconciled: row.reconciled,
                    reconciled_status: row.reconciled_status(),
                    reconciled_withheld: None,
                    asymmetry: row.asymmetry,
                    flag: row.flag,
                    estimate: None,
                });
            std::iter::once(total_line).chain(rows)
        })
}

/// Confidential cells a side's total leaves out; none for a side that published nothing.
fn withheld(reported: Reported, count: u64) -> Option<u64> {
    (reported != Reported::Missing).then_some(count)
}

/// The selected side-by-side rows.
pub fn side_by_side_rows<'a>(
    view: &'a View,
    filter: &ViewFilter,
) -> impl Iterator<
    Item = (
        &'a SideBySideKey,
        &'a std::collections::BTreeMap<Country, SideBySideEntry>,
    ),
> {
    let filter = *filter;
    view.side_by_side
        .iter()
        .filter(move |(key, _)| filter.admits_side_by_side(key))
}

/// A figure, or empty unless it was published.
pub(super) fn value_text(reported: Reported) -> String {
    reported.value().map(|v| v.to_string()).unwrap_or_default()
}

/// Four decimals, empty when undefined.
pub(super) fn asymmetry_text(asymmetry: Option<f64>) -> String {
    asymmetry.map(|a| format!("{a:.4}")).unwrap_or_default()
}
