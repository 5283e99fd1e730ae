//! The view kept between computations, so that a new revision of one dataset recomputes only
//! the pairs it touches (SPEC §17): a `flows` row and a pair total depend on the two datasets of
//! their pair alone, so a change to (P, flows, T) changes exactly the pairs of period T with P
//! at one end, and the rest of the view carries over. A refresh gives the very view
//! [`compute_current`](super::compute_current) gives from the same datasets: the property test
//! `a_refreshed_view_is_the_view_computed_afresh` holds it to that. A change it does not follow
//! (an `asylum` or `permits` dataset, other settings) is refused, and the caller computes the
//! view afresh.
//!
//! What is kept, besides the view: each `flows` dataset's cells placed on their rows (about 50
//! bytes a cell), so a refresh reads the other side of each touched pair without decoding its
//! dataset again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::flows::{self, Direction, Meetings};
use super::{side_by_side, Latest, Meta, Note, PairKey, Rows, Source, View};
use crate::domain::consortium::Reconcile;
use crate::domain::dataset::AcceptedDataset;
use crate::domain::model::{Country, Cube, Period};

/// One `flows` dataset as the view read it.
struct Placed {
    /// Its cells on their row keys, sorted by (key, side).
    cells: Meetings,
    /// Cells it could not place.
    notes: Vec<Note>,
    /// It publishes totals (SPEC §3).
    totals: bool,
}

/// A view and what it was computed from.
pub struct Kept {
    settings: Reconcile,
    latest: Latest,
    placed: BTreeMap<(Country, Period), Placed>,
    view: Arc<View>,
}

/// A (publisher, cube, period) whose current revision changed, and whether the view has one
/// for it now (`false`: it left the view).
pub type Change = ((Country, Cube, Period), bool);

impl Kept {
    /// Computes the view afresh from the current revision of each (publisher, cube, period),
    /// as [`compute_current`](super::compute_current) does, keeping what a refresh needs.
    pub fn compute<D: std::borrow::Borrow<AcceptedDataset>>(
        current: impl IntoIterator<Item = D>,
        settings: &Reconcile,
    ) -> Kept {
        let mut placed = BTreeMap::new();
        let (latest, side_cells, mut notes) = super::read_current(current, |accepted, _| {
            placed.insert((accepted.publisher, accepted.dataset.period), Placed::read(accepted));
        });
        let mut meetings = Meetings::with_capacity(placed.values().map(|p| p.cells.len()).sum());
        for p in placed.values() {
            meetings.extend_from_slice(&p.cells);
            notes.extend(p.notes.iter().cloned());
        }
        let with_totals = flows::with_totals(&meetings);
        let (rows, pairs) = flows::mirror(meetings, &latest, settings, &with_totals, &mut notes);
        let side_by_side = side_by_side::merge(side_cells, &latest);
        let view = View {
            consortium: Default::default(),
            rule: settings.rule,
            asymmetry_flag: settings.asymmetry_flag,
            inputs: inputs(&latest),
            pairs,
            rows,
            side_by_side,
            notes,
            measurement: Vec::new(),
        };
        Kept {
            settings: *settings,
            latest,
            placed,
            view: Arc::new(view),
        }
    }

    /// The view as last computed or refreshed (or as [`Kept::keep`] put it).
    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    /// Finishes the view computed (the consortium version, the estimates) in place.
    pub fn finish(&mut self, finish: impl FnOnce(&mut View)) {
        finish(Arc::make_mut(&mut self.view));
    }

    /// Keeps `view` as the view of the datasets held: the caller finished the computed view
    /// (the consortium version, the estimates) and keeps only that one.
    pub fn keep(&mut self, view: Arc<View>) {
        self.view = view;
    }

    /// The view after `changes`, each new dataset read with `load` when its turn comes (so a
    /// refresh holds one decoded dataset at a time, however many changed), or `None` when a
    /// change is not a `flows` dataset or `settings` are not those the view was computed with
    /// (then nothing changed here): the view is to be computed afresh. Only the pairs of a
    /// changed dataset's period with its publisher at one end are computed; the finishing
    /// (consortium version, estimates) is the caller's, as after [`Kept::compute`].
    ///
    /// When `load` fails, or reads a dataset of another (publisher, cube, period), what is kept
    /// is left half changed: the caller drops it (an error, or `None`) and computes afresh.
    pub fn refresh<E>(
        &mut self,
        changes: &[Change],
        settings: &Reconcile,
        mut load: impl FnMut((Country, Cube, Period)) -> Result<AcceptedDataset, E>,
    ) -> Result<Option<View>, E> {
        if *settings != self.settings || changes.iter().any(|((_, cube, _), _)| *cube != Cube::Flows) {
            return Ok(None);
        }
        let old = &self.view;
        let mut notes = old.notes.clone();
        let mut touched: BTreeSet<(Country, Period)> = BTreeSet::new();
        let mut affected: BTreeSet<PairKey> = BTreeSet::new();
        for &(key, present) in changes {
            let (publisher, _, period) = key;
            if let Some(replaced) = self.placed.remove(&(publisher, period)) {
                for note in &replaced.notes {
                    notes.remove(note);
                }
                affected.extend(replaced.cells.iter().map(|(key, _, _)| key.pair));
            }
            self.latest.remove(&key);
            if present {
                let accepted = load(key)?;
                if (accepted.publisher, accepted.dataset.cube, accepted.dataset.period) != key {
                    return Ok(None);
                }
                self.latest.insert(key, Meta::of(&accepted));
                let placed = Placed::read(&accepted);
                notes.extend(placed.notes.iter().cloned());
                affected.extend(placed.cells.iter().map(|(key, _, _)| key.pair));
                self.placed.insert((publisher, period), placed);
            }
            touched.insert((publisher, period));
        }
        // Pairs that others' datasets of the period have with a changed publisher: every pair
        // comes from cells (a row, or a published total), so these are all the pairs left.
        for &(publisher, period) in &touched {
            for (&(other, _), placed) in self.placed.iter().filter(|((_, p), _)| *p == period) {
                for pair in [
                    PairKey {
                        origin: other,
                        destination: publisher,
                        period,
                    },
                    PairKey {
                        origin: publisher,
                        destination: other,
                        period,
                    },
                ] {
                    if !placed.of_pair(pair).is_empty() {
                        affected.insert(pair);
                    }
                }
            }
        }

        // The cells of the touched pairs, from both sides' datasets.
        let mut meetings = Meetings::new();
        for pair in &affected {
            for (publisher, direction) in [(pair.origin, Direction::Out), (pair.destination, Direction::In)] {
                if let Some(placed) = self.placed.get(&(publisher, pair.period)) {
                    meetings.extend(
                        placed
                            .of_pair(*pair)
                            .iter()
                            .filter(|(_, d, _)| *d == direction)
                            .cloned(),
                    );
                }
            }
        }
        let with_totals: BTreeSet<(Country, Period)> = self
            .placed
            .iter()
            .filter(|(_, p)| p.totals)
            .map(|(key, _)| *key)
            .collect();
        let mut pair_notes = BTreeSet::new();
        let (rows, pairs) = flows::mirror(meetings, &self.latest, settings, &with_totals, &mut pair_notes);

        notes.retain(|n| n.pair.is_none_or(|p| !affected.contains(&p)));
        notes.extend(pair_notes);
        let mut all_pairs = old.pairs.clone();
        all_pairs.retain(|p, _| !affected.contains(p));
        all_pairs.extend(pairs);
        Ok(Some(View {
            consortium: old.consortium,
            rule: old.rule,
            asymmetry_flag: old.asymmetry_flag,
            inputs: inputs(&self.latest),
            pairs: all_pairs,
            rows: Rows::merged(&old.rows, |key| affected.contains(&key.pair), rows),
            side_by_side: old.side_by_side.clone(),
            notes,
            measurement: old.measurement.clone(),
        }))
    }
}

impl Placed {
    fn read(accepted: &AcceptedDataset) -> Placed {
        let mut cells = Meetings::new();
        let mut notes = BTreeSet::new();
        flows::read(&mut cells, accepted, &mut notes);
        flows::sort(&mut cells);
        cells.shrink_to_fit();
        Placed {
            totals: !flows::with_totals(&cells).is_empty(),
            cells,
            notes: notes.into_iter().collect(),
        }
    }

    /// The cells of one pair (the pair leads the row key, so they are contiguous).
    fn of_pair(&self, pair: PairKey) -> &[(super::MirrorKey, Direction, crate::domain::model::CellValue)] {
        let start = self.cells.partition_point(|(key, _, _)| key.pair < pair);
        let end = start + self.cells[start..].partition_point(|(key, _, _)| key.pair == pair);
        &self.cells[start..end]
    }
}

fn inputs(latest: &Latest) -> BTreeMap<(Country, Cube, Period), Source> {
    latest.iter().map(|(key, meta)| (*key, meta.source)).collect()
}

#[cfg(test)]
#[path = "kept_tests.rs"]
mod tests;
