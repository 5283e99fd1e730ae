//! `asylum` and `permits` side by side: for each cube, period and cell key, what every publisher
//! of that cube and period reported. There is no mirror here, so nothing is reconciled and no
//! figure is combined across publishers.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::model::Country;
use crate::domain::model::{CellValue, Cube, Period};

use super::{Latest, Note, Reported, SideBySideEntry, SideBySideKey, Source};
use crate::domain::dataset::AcceptedDataset;

type Table = BTreeMap<SideBySideKey, BTreeMap<Country, SideBySideEntry>>;

/// The cells read so far, by key and publisher.
pub(super) type Cells = BTreeMap<SideBySideKey, BTreeMap<Country, CellValue>>;

/// Reads one `asylum` or `permits` dataset's cells, noting cells of the wrong shape.
pub(super) fn read(cells: &mut Cells, accepted: &AcceptedDataset, notes: &mut BTreeSet<Note>) {
    let (publisher, cube, period) = (accepted.publisher, accepted.dataset.cube, accepted.dataset.period);
    let expected = cube.dimensions().len();
    for cell in &accepted.dataset.cells {
        if cell.key.len() != expected {
            notes.insert(Note {
                pair: None,
                text: format!(
                    "{publisher} {cube} {period} (seq {}): cell {:?} left out: expected {expected} dimensions, found {}",
                    accepted.seq,
                    cell.key,
                    cell.key.len()
                ),
            });
            continue;
        }
        let key = SideBySideKey {
            cube,
            period,
            dimensions: cell.key.clone(),
        };
        cells.entry(key).or_default().insert(publisher, cell.value);
    }
}

/// Puts every publisher of a key's cube and period beside each other. A publisher that
/// published a cube and period but has no cell for a key reported zero there.
pub(super) fn merge(cells: Cells, latest: &Latest) -> Table {
    // Publishers of each (cube, period).
    let mut publishers: BTreeMap<(Cube, Period), BTreeMap<Country, Source>> = BTreeMap::new();
    for (&(publisher, cube, period), meta) in latest {
        if cube != Cube::Flows {
            publishers
                .entry((cube, period))
                .or_default()
                .insert(publisher, meta.source);
        }
    }
    let mut table = Table::new();
    for (key, published) in cells {
        let Some(group) = publishers.get(&(key.cube, key.period)) else {
            continue;
        };
        let entries = group
            .iter()
            .map(|(&publisher, &source)| {
                let reported = match published.get(&publisher) {
                    Some(CellValue::Value(v)) => Reported::Value(*v),
                    Some(CellValue::Confidential) => Reported::Confidential,
                    None => Reported::Value(0),
                };
                (publisher, SideBySideEntry { reported, source })
            })
            .collect();
        table.insert(key, entries);
    }
    table
}
