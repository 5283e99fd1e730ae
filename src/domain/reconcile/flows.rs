//! `flows` mirror rows and pair totals: every OUT cell of the origin and every IN cell of the
//! destination meet on one key. Never reads a cell it cannot place (it leaves a note instead) and
//! never counts a confidential cell in a total.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::domain::aggregate::margins::{self, TOTAL};
use crate::domain::consortium::{Definition, Disclosure, Reconcile};
use crate::domain::dataset::{AcceptedDataset, Code, Unreported};
use crate::domain::model::Country;
use crate::domain::model::{CellValue, Cube, Period};

use super::{
    asymmetry, flagged, reconcile_figure, Latest, Meta, MirrorKey, MirrorRow, Note, PairKey, PairTotal, Reported, Rows,
    Side, SideTotal, Source,
};

/// The cells found for one key: (sender's OUT cell, receiver's IN cell).
type Meeting = (Option<CellValue>, Option<CellValue>);

/// Cells read so far, each with its row key and the side it reports. A flat list (sorted once
/// every dataset is read) costs about half of a map keyed by row, which matters at the peak of
/// building a large view.
pub(super) type Meetings = Vec<(MirrorKey, Direction, CellValue)>;

/// Places one `flows` dataset's cells on their rows, noting cells it cannot place.
pub(super) fn read(meetings: &mut Meetings, accepted: &AcceptedDataset, notes: &mut BTreeSet<Note>) {
    let (publisher, period) = (accepted.publisher, accepted.dataset.period);
    meetings.reserve(accepted.dataset.cells.len());
    for cell in &accepted.dataset.cells {
        // Of the margins, the view reads each table's total (every breakdown `_T`); the
        // subtotals are not rows.
        if margins::is_subtotal(Cube::Flows, &cell.key) {
            continue;
        }
        match place(publisher, period, &cell.key) {
            Ok((key, direction)) => meetings.push((key, direction, cell.value)),
            Err(reason) => {
                notes.insert(Note {
                    pair: None,
                    text: format!(
                        "{publisher} flows {period} (seq {}): cell {:?} left out: {reason}",
                        accepted.seq, cell.key
                    ),
                });
            }
        }
    }
}

/// Turns the cells met into mirror rows and pair totals, adding notes on pairs whose two sides
/// cannot be compared like for like.
pub(super) fn mirror(
    meetings: Meetings,
    latest: &Latest,
    settings: &Reconcile,
    with_totals: &BTreeSet<(Country, Period)>,
    notes: &mut BTreeSet<Note>,
) -> (Rows, BTreeMap<PairKey, PairTotal>) {
    // One shared source per flows dataset; every row of that dataset points at it.
    let sources: Sources = latest
        .iter()
        .filter(|((_, cube, _), _)| *cube == Cube::Flows)
        .map(|(&(publisher, _, period), meta)| ((publisher, period), (Arc::new(meta.source), &meta.unreported)))
        .collect();
    // The cells come out of `meet` in key order, so the rows are pushed in order. The vector
    // is reserved for a row per cell: pages never written are never resident.
    let mut sorted = Vec::with_capacity(meetings.len());
    let mut published: BTreeMap<PairKey, Meeting> = BTreeMap::new();
    sorted.extend(meet(meetings).filter_map(|(key, (out_cell, in_cell))| {
        if key.citizenship.as_str() == TOTAL {
            published.insert(key.pair, (out_cell, in_cell));
            return None;
        }
        let sender = side(&sources, key.pair, Direction::Out, out_cell);
        let receiver = side(&sources, key.pair, Direction::In, in_cell);
        let asym = asymmetry(sender.reported, receiver.reported);
        let row = MirrorRow {
            reconciled: reconcile_figure(settings.rule, sender.reported, receiver.reported),
            sender,
            receiver,
            asymmetry: asym,
            flag: flagged(asym, settings.asymmetry_flag),
        };
        Some((key, row))
    }));
    let rows = Rows::from_sorted(sorted);

    let pairs = totals(&rows, &published, &sources, settings, with_totals);
    for pair in pairs.keys() {
        pair_notes(latest, *pair, notes);
    }
    (rows, pairs)
}

/// The flows datasets (publisher, period) that publish totals (SPEC §3): those with a table
/// total among their cells. Each names at least one pair.
pub(super) fn with_totals<'a>(
    cells: impl IntoIterator<Item = &'a (MirrorKey, Direction, CellValue)>,
) -> BTreeSet<(Country, Period)> {
    cells
        .into_iter()
        .filter(|(key, _, _)| key.citizenship.as_str() == TOTAL)
        .map(|(key, direction, _)| (publisher_of(key.pair, *direction), key.pair.period))
        .collect()
}

/// The publisher of a side of a pair: the origin reports OUT, the destination IN.
pub(super) fn publisher_of(pair: PairKey, direction: Direction) -> Country {
    match direction {
        Direction::Out => pair.origin,
        Direction::In => pair.destination,
    }
}

/// Sorts cells by row key, then side: the order `meet` reads them in.
pub(super) fn sort(cells: &mut Meetings) {
    cells.sort_unstable_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
}

/// The cells of each row key, in key order: (sender's OUT cell, receiver's IN cell).
fn meet(mut cells: Meetings) -> impl Iterator<Item = (MirrorKey, Meeting)> {
    sort(&mut cells);
    let mut cells = cells.into_iter().peekable();
    std::iter::from_fn(move || {
        let (key, direction, value) = cells.next()?;
        let mut meeting: Meeting = (None, None);
        let mut put = |direction: Direction, value: CellValue| match direction {
            Direction::Out => meeting.0 = Some(value),
            Direction::In => meeting.1 = Some(value),
        };
        put(direction, value);
        // One dataset per (publisher, cube, period) is read, so a key has at most one cell a side.
        while let Some((_, direction, value)) = cells.next_if(|(next, _, _)| *next == key) {
            put(direction, value);
        }
        Some((key, meeting))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Direction {
    In,
    Out,
}

/// Where a publisher's flows cell belongs: its row key and which side it reports.
fn place(publisher: Country, period: Period, key: &[String]) -> Result<(MirrorKey, Direction), String> {
    let [direction, partner, citizenship, sex, age_band] = key else {
        return Err(format!("expected 5 dimensions, found {}", key.len()));
    };
    let partner = Country::parse(partner).ok_or_else(|| format!("unknown partner {partner:?}"))?;
    if partner == publisher {
        return Err("partner is the publisher itself".to_string());
    }
    let (direction, origin, destination) = match direction.as_str() {
        "OUT" => (Direction::Out, publisher, partner),
        "IN" => (Direction::In, partner, publisher),
        other => return Err(format!("unknown direction {other:?}")),
    };
    let code = |value: &str| Code::new(value).ok_or_else(|| format!("dimension value {value:?} is not a code"));
    let key = MirrorKey {
        pair: PairKey {
            origin,
            destination,
            period,
        },
        citizenship: code(citizenship)?,
        sex: code(sex)?,
        age_band: code(age_band)?,
    };
    Ok((key, direction))
}

/// The flows dataset of each (publisher, period): its shared source and what it does not report.
type Sources<'a> = BTreeMap<(Country, Period), (Arc<Source>, &'a Unreported)>;

/// The dataset of one side of `pair` (the origin's OUT or the destination's IN), if its
/// publisher has one, and whether it reports that side (SPEC §2: one that does not names the
/// side missing, and stays its provenance).
fn dataset_of<'s>(sources: &'s Sources<'_>, pair: PairKey, direction: Direction) -> Option<(&'s Arc<Source>, bool)> {
    let (publisher, partner, code) = match direction {
        Direction::Out => (pair.origin, pair.destination, "OUT"),
        Direction::In => (pair.destination, pair.origin, "IN"),
    };
    let (source, unreported) = sources.get(&(publisher, pair.period))?;
    Some((source, !unreported.covers(code, partner)))
}

/// One side of a row: missing without a dataset or outside what it reports, zero for an absent
/// cell in a published one.
fn side(sources: &Sources<'_>, pair: PairKey, direction: Direction, cell: Option<CellValue>) -> Side {
    match dataset_of(sources, pair, direction) {
        None => Side {
            reported: Reported::Missing,
            source: None,
        },
        Some((source, false)) => Side {
            reported: Reported::Missing,
            source: Some(Arc::clone(source)),
        },
        Some((source, true)) => Side {
            reported: match cell {
                Some(CellValue::Value(v)) => Reported::Value(v),
                Some(CellValue::Confidential) => Reported::Confidential,
                None => Reported::Value(0),
            },
            source: Some(Arc::clone(source)),
        },
    }
}

/// Running sum of one side of a pair.
#[derive(Default)]
struct Tally {
    sum: u64,
    /// Positive figures summed.
    values: u64,
    withheld: u64,
    missing: bool,
    source: Option<Source>,
}

impl Tally {
    fn add(&mut self, side: &Side) {
        self.source = side.source.as_deref().copied();
        match side.reported {
            // Zeros are mostly cells the side never published (read as zero); they say nothing
            // about the pair, so only positive figures count as something to sum.
            Reported::Value(v) => {
                self.sum = self.sum.saturating_add(v);
                self.values += u64::from(v > 0);
            }
            Reported::Confidential => self.withheld += 1,
            Reported::Missing => self.missing = true,
        }
    }

    fn total(&self) -> SideTotal {
        let reported = if self.missing {
            Reported::Missing
        } else if self.values == 0 && self.withheld > 0 {
            // Nothing positive was published to sum: showing 0 would read as "no moves".
            Reported::Confidential
        } else {
            Reported::Value(self.sum)
        };
        SideTotal {
            reported,
            withheld: self.withheld,
            source: self.source,
            published: false,
        }
    }
}

/// The pair totals. A side whose dataset publishes margins (SPEC §3) reports its published
/// total (none for the pair: 0); a side from before margins, the sum of its published cells,
/// which leaves out the confidential ones. With published totals on every side present, the
/// reconciled total is the rule applied to them; otherwise it is the sum of the rows'. Rows
/// arrive grouped by pair because the pair leads the key.
fn totals(
    rows: &Rows,
    published: &BTreeMap<PairKey, Meeting>,
    sources: &Sources<'_>,
    settings: &Reconcile,
    with_totals: &BTreeSet<(Country, Period)>,
) -> BTreeMap<PairKey, PairTotal> {
    let mut tallies: BTreeMap<PairKey, (Tally, Tally, Option<u64>, u64)> = BTreeMap::new();
    for (key, row) in rows {
        let (sender, receiver, reconciled, withheld) = tallies.entry(key.pair).or_default();
        sender.add(&row.sender);
        receiver.add(&row.receiver);
        match row.reconciled {
            Some(v) => *reconciled = Some(reconciled.unwrap_or(0).saturating_add(v)),
            None => *withheld += 1,
        }
    }
    for pair in published.keys() {
        tallies.entry(*pair).or_default();
    }
    let side_total = |pair: PairKey, direction: Direction, cell: Option<CellValue>, summed: &Tally| {
        let publisher = publisher_of(pair, direction);
        let period = pair.period;
        let source = match dataset_of(sources, pair, direction) {
            Some((source, true)) => source,
            declared => {
                return SideTotal {
                    reported: Reported::Missing,
                    withheld: 0,
                    source: declared.map(|(source, _)| **source),
                    published: false,
                }
            }
        };
        if !with_totals.contains(&(publisher, period)) {
            return summed.total();
        }
        SideTotal {
            reported: match cell {
                Some(CellValue::Value(v)) => Reported::Value(v),
                Some(CellValue::Confidential) => Reported::Confidential,
                None => Reported::Value(0),
            },
            withheld: 0,
            source: Some(**source),
            published: true,
        }
    };
    tallies
        .into_iter()
        .map(|(pair, (sender, receiver, reconciled, reconciled_withheld))| {
            let (out_cell, in_cell) = published.get(&pair).copied().unwrap_or((None, None));
            let sender = side_total(pair, Direction::Out, out_cell, &sender);
            let receiver = side_total(pair, Direction::In, in_cell, &receiver);
            let present = [sender, receiver]
                .into_iter()
                .filter(|s| s.reported != Reported::Missing);
            let (reconciled, reconciled_withheld) =
                if present.clone().count() > 0 && present.clone().all(|s| s.published) {
                    let figure = reconcile_figure(settings.rule, sender.reported, receiver.reported);
                    (figure, u64::from(figure.is_none()))
                } else {
                    (reconciled, reconciled_withheld)
                };
            let asym = asymmetry(sender.reported, receiver.reported);
            let total = PairTotal {
                sender,
                receiver,
                reconciled,
                reconciled_withheld,
                asymmetry: asym,
                flag: flagged(asym, settings.asymmetry_flag),
                estimate: None,
            };
            (pair, total)
        })
        .collect()
}

/// Notes on what makes a pair's two sides differ beyond the figures themselves.
fn pair_notes(latest: &Latest, pair: PairKey, notes: &mut BTreeSet<Note>) {
    let sender = latest.get(&(pair.origin, Cube::Flows, pair.period));
    let receiver = latest.get(&(pair.destination, Cube::Flows, pair.period));
    let mut add = |text: String| {
        notes.insert(Note { pair: Some(pair), text });
    };
    for (present, absent, role) in [
        (receiver, pair.origin, "sender"),
        (sender, pair.destination, "receiver"),
    ] {
        if present.is_some() && latest.get(&(absent, Cube::Flows, pair.period)).is_none() {
            add(format!(
                "{absent} published no flows for {}: {role} side missing",
                pair.period
            ));
        }
    }
    for (meta, direction, partner, role) in [
        (sender, "OUT", pair.destination, "sender"),
        (receiver, "IN", pair.origin, "receiver"),
    ] {
        if let Some(meta) = meta.filter(|meta| meta.unreported.covers(direction, partner)) {
            let what = if direction == "OUT" {
                "emigration to"
            } else {
                "immigration from"
            };
            add(format!(
                "{} does not report {what} {partner} in {}: {role} side missing (not zero)",
                meta.source.publisher, pair.period
            ));
        }
    }
    for meta in [sender, receiver].into_iter().flatten() {
        if let Disclosure::CellKey { .. } = meta.disclosure {
            add(format!(
                "{} figures are perturbed (cell-key method): cells need not add up to the perturbed totals",
                meta.source.publisher
            ));
        }
    }
    let (Some(sender), Some(receiver)) = (sender, receiver) else {
        return;
    };
    if let Some(text) = definition_difference(sender, receiver) {
        add(text);
    }
    if let Some(text) = disclosure_difference(sender, receiver) {
        add(text);
    }
}

fn definition_difference(sender: &Meta, receiver: &Meta) -> Option<String> {
    let (a, b): (Definition, Definition) = (sender.definition, receiver.definition);
    let mut parts = Vec::new();
    if a.min_duration_months != b.min_duration_months {
        parts.push(format!(
            "min_duration {} vs {} months",
            a.min_duration_months, b.min_duration_months
        ));
    }
    if a.unknown_duration != b.unknown_duration {
        parts.push(format!(
            "unknown durations {} vs {}",
            a.unknown_duration.as_str(),
            b.unknown_duration.as_str()
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "{} and {} use different definitions: {}",
            sender.source.publisher,
            receiver.source.publisher,
            parts.join("; ")
        )
    })
}

fn disclosure_difference(sender: &Meta, receiver: &Meta) -> Option<String> {
    let (a, b) = (sender.disclosure, receiver.disclosure);
    if a == b {
        return None;
    }
    let what = if a.method() == b.method() {
        "disclosure parameters"
    } else {
        "disclosure methods"
    };
    Some(format!(
        "{} and {} use different {what}: {} vs {}",
        sender.source.publisher,
        receiver.source.publisher,
        describe(a),
        describe(b)
    ))
}

fn describe(disclosure: Disclosure) -> String {
    match disclosure {
        Disclosure::Threshold { k } => format!("threshold (k={k})"),
        Disclosure::CellKey {
            max_noise,
            variance,
            small_count,
        } => {
            format!("cell-key (max_noise {max_noise}, variance {variance}, small_count {small_count})")
        }
        Disclosure::None => "none".to_string(),
    }
}
