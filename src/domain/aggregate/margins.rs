//! Margins (SPEC §3): the totals a dataset publishes beside its breakdown cells, so a reader
//! gets the headline figure exactly instead of a sum that leaves out every confidential cell.
//!
//! Each cube is made of tables: for `flows` one per direction and partner, for `asylum` and
//! `permits` one each. A table's margin is its total, a cell whose breakdown dimensions all hold
//! the SDMX total code `_T` (`IN,FRA,_T,_T,_T`; `_T,_T,_T`; `_T,_T`). It is tallied like any
//! cell (count and the sum of its records' cell keys), so disclosure control treats it as one:
//! under `threshold` a total below k is `C`, under `cell-key` it gets the noise of its own cell
//! key. The totals over a single breakdown dimension (SPEC §3) are not published yet.

use std::collections::BTreeMap;

use crate::domain::aggregate::Tally;
use crate::domain::model::Cube;

/// The SDMX code for "all values" of a dimension.
pub const TOTAL: &str = "_T";

/// How many leading dimensions name a cube's table (`flows`: direction and partner).
pub fn table_dimensions(cube: Cube) -> usize {
    match cube {
        Cube::Flows => 2,
        Cube::Asylum | Cube::Permits => 0,
    }
}

/// The total cell's key of the table `key` belongs to.
pub fn total_of(cube: Cube, key: &[String]) -> Vec<String> {
    let table = table_dimensions(cube).min(key.len());
    key[..table]
        .iter()
        .cloned()
        .chain(std::iter::repeat_n(TOTAL.to_string(), cube.dimensions().len() - table))
        .collect()
}

/// Whether `key` is a margin (holds `_T` in some breakdown dimension).
pub fn is_margin(key: &[String]) -> bool {
    key.iter().any(|v| v == TOTAL)
}

/// `tallies` (one period's breakdown cells) with each table's total added.
pub fn with_totals(cube: Cube, tallies: BTreeMap<Vec<String>, Tally>) -> BTreeMap<Vec<String>, Tally> {
    let mut totals: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    for (key, tally) in &tallies {
        if !is_margin(key) {
            totals.entry(total_of(cube, key)).or_default().add(*tally);
        }
    }
    let mut out = tallies;
    out.extend(totals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> Vec<String> {
        text.split(',').map(str::to_string).collect()
    }

    #[test]
    fn each_table_gets_its_total_with_its_records_keys() {
        let tallies: BTreeMap<Vec<String>, Tally> = [
            ("IN,FRA,SYR,F,Y20-24", 3, 100),
            ("IN,FRA,DEU,M,UNK", 40, 9_000),
            ("OUT,FRA,SYR,F,Y20-24", 2, 7),
            ("IN,ITA,ITA,F,Y0-4", 1, 255),
        ]
        .into_iter()
        .map(|(k, count, key_sum)| (key(k), Tally { count, key_sum }))
        .collect();
        let out = with_totals(Cube::Flows, tallies);
        assert_eq!(out.len(), 7);
        assert_eq!(
            out[&key("IN,FRA,_T,_T,_T")],
            Tally {
                count: 43,
                key_sum: 9_100
            }
        );
        assert_eq!(out[&key("OUT,FRA,_T,_T,_T")], Tally { count: 2, key_sum: 7 });
        assert_eq!(out[&key("IN,ITA,_T,_T,_T")], Tally { count: 1, key_sum: 255 });
        let permits = with_totals(
            Cube::Permits,
            [(key("SYR,work"), Tally { count: 5, key_sum: 1 })]
                .into_iter()
                .collect(),
        );
        assert_eq!(permits[&key("_T,_T")].count, 5);
        assert!(is_margin(&key("_T,_T")) && !is_margin(&key("SYR,work")));
    }
}
