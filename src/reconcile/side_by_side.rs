//! `asylum` and `permits` side by side: for each cube, period and cell key, what every publisher
//! of that cube and period reported. There is no mirror here, so nothing is reconciled and no
//! figure is combined across publishers.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Country;
use crate::model::{CellValue, Cube, Period};

use super::{Latest, Note, Reported, SideBySideEntry, SideBySideKey, Source};

type Table = BTreeMap<SideBySideKey, BTreeMap<Country, SideBySideEntry>>;

/// Merges the non-`flows` datasets. A publisher that published a cube and period but has no cell
/// for a key reported zero there.
pub(super) fn merge(latest: &Latest<'_>, notes: &mut BTreeSet<Note>) -> Table {
    // Publishers of each (cube, period), and the cells each published.
    let mut publishers: BTreeMap<(Cube, Period), BTreeMap<Country, Source>> = BTreeMap::new();
    let mut cells: BTreeMap<SideBySideKey, BTreeMap<Country, CellValue>> = BTreeMap::new();
    for (&(publisher, cube, period), accepted) in latest {
        if cube == Cube::Flows {
            continue;
        }
        publishers
            .entry((cube, period))
            .or_default()
            .insert(publisher, Source::of(accepted));
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
