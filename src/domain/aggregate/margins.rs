//! Margins (SPEC §3): the totals a dataset publishes beside its breakdown cells, so a reader
//! gets the headline figure exactly instead of a sum that leaves out every confidential cell.
//!
//! Each cube is made of tables: for `flows` one per direction and partner, for `asylum` and
//! `permits` one each. A table's margin is its total, a cell whose breakdown dimensions all hold
//! the SDMX total code `_T` (`IN,FRA,_T,_T,_T`; `_T,_T,_T`; `_T,_T`). It is tallied like any
//! cell (count and the sum of its records' cell keys), so disclosure control treats it as one:
//! under `threshold` a total below k is `C`, under `cell-key` it gets the noise of its own cell
//! key.
//!
//! The totals over each single breakdown dimension (SPEC §3) hold `_T` in that one dimension
//! (`IN,FRA,_T,F,Y20-24`: every citizenship; `IN,FRA,SYR,_T,Y20-24`; `IN,FRA,SYR,F,_T`), and
//! the totals over two of them `_T` in both (`IN,FRA,_T,F,_T`: women of every citizenship and
//! age), so a reader finds each breakdown on its own too: the subtotals, every combination short
//! of the table's total. Under `cell-key` and `none` they are cells like the others, each
//! perturbed through its own cell key. Under `threshold` they are not published: a subtotal of
//! several small cells can be narrowed to fewer than k values by a linear program even where
//! each cell cannot (even published as `C` wherever one of its cells is), and the audit's flow
//! model holds a table with its total, not the three-way tables with all their margins (the
//! property test in `audit/coupled_tests.rs` shows the case). The view reads each table's total.

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

/// Whether `key` is a subtotal: `_T` in some breakdown dimensions but not all (the table's
/// total).
pub fn is_subtotal(cube: Cube, key: &[String]) -> bool {
    let breakdown = key.get(table_dimensions(cube)..).unwrap_or_default();
    let totals = breakdown.iter().filter(|v| *v == TOTAL).count();
    totals > 0 && totals < breakdown.len()
}

/// The subtotal keys `key` (a cell) adds to: `_T` in each combination of its breakdown
/// dimensions short of all of them.
fn subtotals_of(cube: Cube, key: &[String]) -> impl Iterator<Item = Vec<String>> + '_ {
    let first = table_dimensions(cube).min(key.len());
    let n = key.len() - first;
    let all = (1u32 << n) - 1;
    (1..all).map(move |mask| {
        key.iter()
            .enumerate()
            .map(|(d, v)| {
                if d >= first && mask & 1 << (d - first) != 0 {
                    TOTAL.to_string()
                } else {
                    v.clone()
                }
            })
            .collect()
    })
}

/// The subtotals of `tallies`' cells (margins in `tallies` are not added up again).
pub fn subtotals(cube: Cube, tallies: &BTreeMap<Vec<String>, Tally>) -> BTreeMap<Vec<String>, Tally> {
    let mut out: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
    for (key, tally) in tallies.iter().filter(|(key, _)| !is_margin(key)) {
        for subtotal in subtotals_of(cube, key) {
            out.entry(subtotal).or_default().add(*tally);
        }
    }
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

    fn flows_tallies() -> BTreeMap<Vec<String>, Tally> {
        [
            ("IN,FRA,SYR,F,Y20-24", 3, 100),
            ("IN,FRA,SYR,M,Y20-24", 12, 50),
            ("IN,FRA,DEU,F,Y20-24", 7, 9),
            ("IN,FRA,DEU,F,Y25-29", 9, 1),
            ("IN,FRA,_T,_T,_T", 31, 160),
        ]
        .into_iter()
        .map(|(k, count, key_sum)| (key(k), Tally { count, key_sum }))
        .collect()
    }

    #[test]
    fn subtotals_add_up_their_cells_over_each_dimension_and_each_pair_of_them() {
        let totals = subtotals(Cube::Flows, &flows_tallies());
        // Over citizenship: F,Y20-24 holds 3 + 7; over sex: SYR,Y20-24 holds 3 + 12; over age:
        // DEU,F holds 7 + 9. The table's total is not added up again.
        assert_eq!(
            totals[&key("IN,FRA,_T,F,Y20-24")],
            Tally {
                count: 10,
                key_sum: 109
            }
        );
        assert_eq!(
            totals[&key("IN,FRA,SYR,_T,Y20-24")],
            Tally {
                count: 15,
                key_sum: 150
            }
        );
        assert_eq!(totals[&key("IN,FRA,DEU,F,_T")].count, 16);
        // By one dimension alone: women 3 + 7 + 9, Y20-24 3 + 12 + 7, SYR 3 + 12.
        assert_eq!(totals[&key("IN,FRA,_T,F,_T")].count, 19);
        assert_eq!(totals[&key("IN,FRA,_T,_T,Y20-24")].count, 22);
        assert_eq!(totals[&key("IN,FRA,SYR,_T,_T")].count, 15);
        assert!(!totals.contains_key(&key("IN,FRA,_T,_T,_T")));
        // One `_T`: 3 + 3 + 3 keys; two: 2 citizenships, 2 sexes, 2 ages.
        assert_eq!(totals.len(), 9 + 6, "{totals:?}");
        assert!(totals.keys().all(|k| is_subtotal(Cube::Flows, k)));
        assert!(!is_subtotal(Cube::Flows, &key("IN,FRA,_T,_T,_T")));
        assert!(!is_subtotal(Cube::Flows, &key("IN,FRA,SYR,F,Y20-24")));
        assert!(is_subtotal(Cube::Permits, &key("_T,work")));
        assert!(!is_subtotal(Cube::Permits, &key("_T,_T")));
        let permits = subtotals(
            Cube::Permits,
            &[(key("SYR,work"), Tally { count: 5, key_sum: 1 })]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            permits.keys().cloned().collect::<Vec<_>>(),
            vec![key("SYR,_T"), key("_T,work")]
        );
    }
}
