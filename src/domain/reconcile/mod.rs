//! The common view (SPEC §8): a pure function from the set of accepted datasets to mirror rows,
//! pair totals and side-by-side tables, with a digest that every node computing the view from the
//! same datasets agrees on. This module never does I/O, never looks at arrival order or the clock,
//! and never invents a figure: a total only sums published cells and says what it left out.
//!
//! - [`compute`] picks the latest revision of every (publisher, cube, period), then builds
//!   - `flows` mirror rows and pair totals (`flows.rs`), with notes where the two sides of a pair
//!     used different definitions or disclosure methods;
//!   - `asylum` and `permits` side by side per publisher (`side_by_side.rs`).
//! - [`View::digest`] is SHA-256 of the canonical encoding documented in [`digest`].
//! - [`render()`] prints a filtered view as a table, CSV, JSON or SDMX-CSV.
//! - [`fidelity`] scores every rule against synthetic truth.
//!
//! Reading a side: a publisher with no dataset for the cube and period is `Missing`, and so is a
//! side its dataset declares unreported (SPEC §2: not reported is not zero); a publisher that
//! published the dataset but no cell for a key it reports reported zero there (SPEC §3: zero
//! cells are not published), so that side reads `Value(0)`.

mod delimited;
pub mod digest;
pub mod estimate;
pub mod fidelity;
mod flows;
mod json;
mod kept;
mod lines;
mod render;
mod rows;
mod side_by_side;
mod table;

#[cfg(test)]
pub(crate) mod test_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::domain::consortium::{Consortium, Definition, Disclosure, EstimateMethod, Reconcile, Rule};
use crate::domain::dataset::{AcceptedDataset, Code, Unreported};
use crate::domain::model::Country;
use crate::domain::model::{Cube, Period};

pub use estimate::{Estimate, Fitted};
pub use fidelity::{estimate_fidelity, pair_total_mape, read_truth};
pub use kept::{Change, Kept};
pub use lines::{flow_lines, side_by_side_rows, FlowLine, LineSide, ViewFilter};
pub use render::{render, render_to, Format};
pub use rows::Rows;

/// What one side reported for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reported {
    /// A published figure; zero when the publisher's dataset has no cell for the key.
    Value(u64),
    /// Withheld by disclosure control (0 < count < k).
    Confidential,
    /// The publisher has no dataset for this cube and period.
    Missing,
}

impl Reported {
    /// The figure, if one was published.
    pub fn value(self) -> Option<u64> {
        match self {
            Reported::Value(v) => Some(v),
            Reported::Confidential | Reported::Missing => None,
        }
    }

    /// The status column: empty for a value, `C` confidential, `M` missing.
    pub fn status(self) -> &'static str {
        match self {
            Reported::Value(_) => "",
            Reported::Confidential => "C",
            Reported::Missing => "M",
        }
    }
}

/// Which accepted dataset a figure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Source {
    pub publisher: Country,
    pub seq: u64,
    /// SHA-256 of the signed entry header.
    pub digest: [u8; 32],
}

impl Source {
    fn of(accepted: &AcceptedDataset) -> Source {
        Source {
            publisher: accepted.publisher,
            seq: accepted.seq,
            digest: accepted.digest,
        }
    }
}

/// One side of a mirror row: the figure and the dataset it came from (none when missing).
/// Every row of a dataset shares one `Source`, so a view of half a million rows holds a pointer
/// per side rather than a copy of the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    pub reported: Reported,
    pub source: Option<Arc<Source>>,
}

/// A mirror pair: moves from `origin` to `destination` in `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PairKey {
    pub origin: Country,
    pub destination: Country,
    pub period: Period,
}

/// One `flows` row key: the pair and the breakdown. Inline codes, not strings: the key is
/// `Copy` and a view holds no heap allocation per row key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MirrorKey {
    pub pair: PairKey,
    pub citizenship: Code,
    pub sex: Code,
    pub age_band: Code,
}

/// One `flows` row: what the sender (origin's OUT) and the receiver (destination's IN) reported.
#[derive(Debug, Clone, PartialEq)]
pub struct MirrorRow {
    pub sender: Side,
    pub receiver: Side,
    /// The figure the view's rule produced; none when neither side published a usable value.
    pub reconciled: Option<u64>,
    /// (receiver − sender) / max(receiver, sender), when both are values and the max is positive.
    pub asymmetry: Option<f64>,
    /// |asymmetry| exceeds the consortium's threshold.
    pub flag: bool,
}

impl MirrorRow {
    /// Why there is no reconciled figure: empty when there is one, `C` when a confidential side
    /// kept it back, otherwise `M`.
    pub fn reconciled_status(&self) -> &'static str {
        reconciled_status(self.reconciled, self.sender.reported, self.receiver.reported)
    }
}

/// One side of a pair total: the total the side published, or (from datasets without margins)
/// the sum of its published cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideTotal {
    /// The sum of published values; `Confidential` when the side published no positive figure
    /// for the pair but withheld some cells; `Missing` when the side published no dataset.
    pub reported: Reported,
    /// Confidential cells the sum leaves out.
    pub withheld: u64,
    pub source: Option<Source>,
    /// The figure is the total the side published (a margin, SPEC §3), not a sum of its cells.
    pub published: bool,
}

impl SideTotal {
    /// The total leaves out confidential cells, so the true figure is larger.
    pub fn incomplete(&self) -> bool {
        self.withheld > 0
    }
}

/// The totals of one mirror pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairTotal {
    pub sender: SideTotal,
    pub receiver: SideTotal,
    /// Sum of the rows' reconciled figures; none when no row has one.
    pub reconciled: Option<u64>,
    /// Rows without a reconciled figure, left out of `reconciled`.
    pub reconciled_withheld: u64,
    /// Asymmetry of the two side totals, as for rows.
    pub asymmetry: Option<f64>,
    pub flag: bool,
    /// The modelled estimate and its 95% interval (SPEC §15), when the consortium asks for
    /// them and a side published the pair.
    pub estimate: Option<Estimate>,
}

impl PairTotal {
    /// As [`MirrorRow::reconciled_status`], for the total.
    pub fn reconciled_status(&self) -> &'static str {
        reconciled_status(self.reconciled, self.sender.reported, self.receiver.reported)
    }
}

/// One `asylum` or `permits` row key: cube, period and the cell's dimension values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SideBySideKey {
    pub cube: Cube,
    pub period: Period,
    /// In `Cube::dimensions()` order.
    pub dimensions: Vec<String>,
}

/// One publisher's figure in a side-by-side row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideBySideEntry {
    pub reported: Reported,
    pub source: Source,
}

/// A remark on the view: on a pair (different definitions or disclosure, a missing side) or on
/// the input as a whole (a cell that could not be read).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Note {
    pub pair: Option<PairKey>,
    pub text: String,
}

/// The common view. Every collection is ordered by its key, so equal inputs give equal views.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The consortium version the view was computed under (SPEC §11); part of its digest.
    pub consortium: ConsortiumRef,
    pub rule: Rule,
    pub asymmetry_flag: f64,
    /// The latest revision used for every (publisher, cube, period).
    pub inputs: BTreeMap<(Country, Cube, Period), Source>,
    pub pairs: BTreeMap<PairKey, PairTotal>,
    pub rows: Rows,
    /// One entry per publisher that published the row's cube and period.
    pub side_by_side: BTreeMap<SideBySideKey, BTreeMap<Country, SideBySideEntry>>,
    pub notes: BTreeSet<Note>,
    /// Each member's registers as the estimates fitted them (SPEC §15); empty without
    /// estimates. Derived from the pairs and the consortium, so not encoded in the digest
    /// beyond the estimates it produces.
    pub measurement: Vec<Fitted>,
}

/// A consortium version by number and document digest. `compute` leaves it zero (no version);
/// the node sets the version in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsortiumRef {
    pub version: u64,
    pub digest: [u8; 32],
}

/// What the view keeps of a dataset once its cells are read: where it came from and how it was
/// made (for the notes on pairs whose sides differ).
#[derive(Debug, Clone, PartialEq)]
struct Meta {
    source: Source,
    definition: Definition,
    disclosure: Disclosure,
    /// What a `flows` dataset does not report (SPEC §2).
    unreported: Unreported,
}

impl Meta {
    fn of(accepted: &AcceptedDataset) -> Meta {
        let d = &accepted.dataset;
        Meta {
            source: Source::of(accepted),
            definition: d.definition,
            disclosure: d.disclosure,
            unreported: d.unreported.clone(),
        }
    }
}

/// The current dataset of every (publisher, cube, period), as metadata.
type Latest = BTreeMap<(Country, Cube, Period), Meta>;

/// Builds the common view from the accepted datasets. The result depends only on the set of
/// datasets, never on their order in the slice.
pub fn compute(accepted: &[AcceptedDataset], settings: &Reconcile) -> View {
    compute_current(latest_revisions(accepted).into_values(), settings)
}

/// Builds the common view from the current revision of each (publisher, cube, period), read one
/// at a time: each dataset may be dropped as soon as the next is asked for, so a caller that
/// loads them from storage holds one decoded dataset, never all of them. A second dataset for a
/// (publisher, cube, period) already read is ignored (callers pass the latest revisions only).
/// The result depends only on the set of datasets, never on their order.
pub fn compute_current<D: std::borrow::Borrow<AcceptedDataset>>(
    current: impl IntoIterator<Item = D>,
    settings: &Reconcile,
) -> View {
    let mut meetings = flows::Meetings::new();
    let (latest, side_cells, mut notes) =
        read_current(current, |accepted, notes| flows::read(&mut meetings, accepted, notes));
    let with_totals = flows::with_totals(&meetings);
    let (rows, pairs) = flows::mirror(meetings, &latest, settings, &with_totals, &mut notes);
    let side_by_side = side_by_side::merge(side_cells, &latest);
    View {
        consortium: ConsortiumRef::default(),
        rule: settings.rule,
        asymmetry_flag: settings.asymmetry_flag,
        inputs: latest.iter().map(|(key, meta)| (*key, meta.source)).collect(),
        pairs,
        rows,
        side_by_side,
        notes,
        measurement: Vec::new(),
    }
}

/// Reads the current datasets one at a time, each (publisher, cube, period) once (the first
/// given for it): its metadata into the `Latest` returned, an `asylum` or `permits` dataset's
/// cells into the side-by-side cells returned, a `flows` dataset handed to `flows`; notes on
/// cells that cannot be placed are returned too.
fn read_current<D: std::borrow::Borrow<AcceptedDataset>>(
    current: impl IntoIterator<Item = D>,
    mut flows: impl FnMut(&AcceptedDataset, &mut BTreeSet<Note>),
) -> (Latest, side_by_side::Cells, BTreeSet<Note>) {
    let mut latest = Latest::new();
    let mut notes = BTreeSet::new();
    let mut side_cells = side_by_side::Cells::new();
    for accepted in current {
        let accepted = accepted.borrow();
        let d = &accepted.dataset;
        let key = (accepted.publisher, d.cube, d.period);
        if latest.contains_key(&key) {
            continue;
        }
        latest.insert(key, Meta::of(accepted));
        match d.cube {
            Cube::Flows => flows(accepted, &mut notes),
            Cube::Asylum | Cube::Permits => side_by_side::read(&mut side_cells, accepted, &mut notes),
        }
    }
    (latest, side_cells, notes)
}

/// Completes a computed view under the consortium version in force: records the version (part
/// of the digest) and adds the modelled estimates that version's document asks for (SPEC §15),
/// with a note saying which parameters they used. Every node, and every verifier of a
/// certified view, finishes a view here.
pub fn under(view: &mut View, version: ConsortiumRef, consortium: &Consortium) {
    view.consortium = version;
    view.measurement = estimate::apply(&mut view.pairs, &consortium.estimates, &consortium.members);
    if consortium.estimates.method != EstimateMethod::None {
        let reference: Vec<String> = consortium.estimates.reference.iter().map(Country::to_string).collect();
        view.notes.insert(Note {
            pair: None,
            text: format!(
                "estimates: {} with the measurement classes of consortium version {} (reference members: {})",
                consortium.estimates.method.as_str(),
                version.version,
                if reference.is_empty() {
                    "none, priors only".to_string()
                } else {
                    reference.join(", ")
                }
            ),
        });
    }
}

/// For each (publisher, cube, period) the highest `seq`. Two entries with the same seq cannot
/// both be accepted unless a fork slipped through; then the smaller digest wins, so every node
/// still picks the same one.
fn latest_revisions(accepted: &[AcceptedDataset]) -> BTreeMap<(Country, Cube, Period), &AcceptedDataset> {
    let mut latest: BTreeMap<(Country, Cube, Period), &AcceptedDataset> = BTreeMap::new();
    for candidate in accepted {
        let key = (candidate.publisher, candidate.dataset.cube, candidate.dataset.period);
        let newer = match latest.get(&key) {
            None => true,
            Some(held) => {
                (candidate.seq, std::cmp::Reverse(candidate.digest)) > (held.seq, std::cmp::Reverse(held.digest))
            }
        };
        if newer {
            latest.insert(key, candidate);
        }
    }
    latest
}

/// The figure `rule` makes of the two sides; none when neither side published a value, and none
/// when one side is confidential and the other reads zero: a confidential cell counts at least one
/// move, so the zero cannot stand in for it.
pub fn reconcile_figure(rule: Rule, sender: Reported, receiver: Reported) -> Option<u64> {
    use Reported::{Confidential, Value};
    if matches!((sender, receiver), (Confidential, Value(0)) | (Value(0), Confidential)) {
        return None;
    }
    let (s, r) = (sender.value(), receiver.value());
    match rule {
        Rule::Receiving => r.or(s),
        Rule::Sending => s.or(r),
        Rule::Max => s.max(r),
        Rule::Mean => match (s, r) {
            // Half up is ceil((a + b) / 2); in u128 the sum cannot overflow, and the mean of two
            // u64 values fits in u64, so the conversion never fails.
            (Some(a), Some(b)) => u64::try_from((u128::from(a) + u128::from(b)).div_ceil(2)).ok(),
            (one, other) => one.or(other),
        },
    }
}

/// (receiver − sender) / max(receiver, sender), when both are values and the max is positive.
pub fn asymmetry(sender: Reported, receiver: Reported) -> Option<f64> {
    let (s, r) = (sender.value()?, receiver.value()?);
    let max = s.max(r);
    (max > 0).then(|| (r as f64 - s as f64) / max as f64)
}

/// Whether an asymmetry is past the consortium's threshold.
fn flagged(asymmetry: Option<f64>, threshold: f64) -> bool {
    asymmetry.is_some_and(|a| a.abs() > threshold)
}

fn reconciled_status(reconciled: Option<u64>, sender: Reported, receiver: Reported) -> &'static str {
    match reconciled {
        Some(_) => "",
        None if sender == Reported::Confidential || receiver == Reported::Confidential => "C",
        None => "M",
    }
}

/// Lower-case hex, the crate's one encoder.
pub(crate) use crate::domain::hex::encode as hex;

#[cfg(test)]
mod tests;
