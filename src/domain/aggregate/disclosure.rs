//! Disclosure control (SPEC §3), applied to a period's tallies before anything is published.
//!
//! - `threshold`: 0 < count < k → confidential (flag `C`); zero cells are dropped.
//! - `cell-key` (ABS/ONS): every record carries a fixed random key 0–255; a cell's key is the sum
//!   of its records' keys mod 256; a perturbation table maps (count, cell key) to noise. The same
//!   cell always gets the same noise, so repeated or differenced publications reveal nothing new.
//!   The table is derived deterministically from the consortium's parameters (see
//!   [`PerturbationTable::new`]), so every member uses the same one without shipping 256-column
//!   rows in a config file.
//! - `none`: values published as they are (test consortia only; enforced by `config`).
//!
//! Never publishes a negative count.

use std::collections::BTreeMap;

use crate::domain::aggregate::Tally;
use crate::domain::consortium::Disclosure;
use crate::domain::model::{Cell, CellValue};

/// Rows above this count share one noise distribution.
const TABLE_ROWS: u64 = 20;

/// The cell-key perturbation table: for each count 1..=20 (larger counts use row 20), the noise
/// for each of the 256 cell keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerturbationTable {
    rows: Vec<[i32; 256]>,
}

impl PerturbationTable {
    /// Builds the table for maximum noise `D`, variance `V` and small count `j`.
    ///
    /// For a count `c`, the admissible noises are `n` in `[-D, D]` with `c + n >= 0`, and
    /// `n != 0` when `c < j` (small counts are never shown exact). Their probabilities are
    /// proportional to `exp(-n² / 2V)`; the 256 cell keys are split among them in order of `n`
    /// by rounding the cumulative probability to multiples of 1/256, so a key picks its noise
    /// like a uniform random draw would.
    pub fn new(max_noise: u32, variance: f64, small_count: u32) -> PerturbationTable {
        let d = i64::from(max_noise);
        let rows = (1..=TABLE_ROWS)
            .map(|c| {
                let c = c as i64;
                let noises: Vec<i64> = (-d..=d)
                    .filter(|n| c + n >= 0 && !(c < i64::from(small_count) && *n == 0))
                    .collect();
                let weights: Vec<f64> = noises
                    .iter()
                    .map(|&n| (-((n * n) as f64) / (2.0 * variance)).exp())
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut row = [0i32; 256];
                let mut start = 0usize;
                let mut cumulative = 0.0;
                for (i, (&n, w)) in noises.iter().zip(&weights).enumerate() {
                    cumulative += w / total;
                    let end = if i + 1 == noises.len() {
                        256
                    } else {
                        ((cumulative * 256.0).round() as usize).clamp(start, 256)
                    };
                    for slot in &mut row[start..end] {
                        *slot = n as i32;
                    }
                    start = end;
                }
                row
            })
            .collect();
        PerturbationTable { rows }
    }

    /// The noise for a cell of `count` records with cell key `key`.
    pub fn noise(&self, count: u64, key: u8) -> i64 {
        let row = count.clamp(1, TABLE_ROWS) as usize - 1;
        i64::from(self.rows[row][usize::from(key)])
    }
}

/// Applies `method` to the tallies of one dataset (keyed by published dimension values) and
/// returns the cells to publish, sorted by key. Negative or zero tallies are dropped.
pub fn protect(method: &Disclosure, tallies: BTreeMap<Vec<String>, Tally>) -> Vec<Cell> {
    let table = match method {
        Disclosure::CellKey {
            max_noise,
            variance,
            small_count,
        } => Some(PerturbationTable::new(*max_noise, *variance, *small_count)),
        _ => None,
    };
    tallies
        .into_iter()
        .filter(|(_, t)| t.count > 0)
        .filter_map(|(key, t)| {
            let count = t.count as u64;
            let value = match method {
                Disclosure::Threshold { k } if count < u64::from(*k) => CellValue::Confidential,
                Disclosure::Threshold { .. } | Disclosure::None => CellValue::Value(count),
                Disclosure::CellKey { .. } => {
                    let table = table.as_ref()?;
                    let cell_key = t.key_sum.rem_euclid(256) as u8;
                    let perturbed = count as i64 + table.noise(count, cell_key);
                    if perturbed <= 0 {
                        return None;
                    }
                    CellValue::Value(perturbed as u64)
                }
            };
            Some(Cell { key, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tallies(items: &[(&str, i64, i64)]) -> BTreeMap<Vec<String>, Tally> {
        items
            .iter()
            .map(|(k, c, s)| (vec![k.to_string()], Tally { count: *c, key_sum: *s }))
            .collect()
    }

    #[test]
    fn threshold_flags_small_cells_and_drops_zero() {
        let cells = protect(
            &Disclosure::Threshold { k: 5 },
            tallies(&[("a", 0, 0), ("b", 1, 3), ("c", 4, 9), ("d", 5, 1), ("e", 100, 7)]),
        );
        let got: Vec<(&str, CellValue)> = cells.iter().map(|c| (c.key[0].as_str(), c.value)).collect();
        assert_eq!(
            got,
            [
                ("b", CellValue::Confidential),
                ("c", CellValue::Confidential),
                ("d", CellValue::Value(5)),
                ("e", CellValue::Value(100))
            ]
        );
    }

    #[test]
    fn table_rows_respect_the_rules() {
        let t = PerturbationTable::new(2, 1.0, 3);
        for key in 0..=255u8 {
            for count in 1..=30u64 {
                let n = t.noise(count, key);
                assert!((-2..=2).contains(&n));
                assert!(count as i64 + n >= 0);
                if count < 3 {
                    assert_ne!(n, 0, "count {count} key {key} shown exact");
                }
            }
        }
        // Large counts: the noise is centred, and every admissible value is used.
        let used: std::collections::BTreeSet<i64> = (0..=255u8).map(|k| t.noise(50, k)).collect();
        assert_eq!(used.into_iter().collect::<Vec<_>>(), [-2, -1, 0, 1, 2]);
        let mean: f64 = (0..=255u8).map(|k| t.noise(50, k) as f64).sum::<f64>() / 256.0;
        assert!(mean.abs() < 0.05, "{mean}");
    }

    proptest! {
        #[test]
        fn threshold_never_publishes_a_value_below_k(
            counts in proptest::collection::vec((0i64..40, 0i64..10_000), 1..50),
            k in 1u32..12,
        ) {
            let t: BTreeMap<Vec<String>, Tally> = counts.iter().enumerate()
                .map(|(i, (c, s))| (vec![format!("{i:03}")], Tally { count: *c, key_sum: *s }))
                .collect();
            for cell in protect(&Disclosure::Threshold { k }, t) {
                if let CellValue::Value(v) = cell.value {
                    prop_assert!(v >= u64::from(k));
                }
            }
        }

        #[test]
        fn cell_key_is_stable_and_never_negative(
            counts in proptest::collection::vec((1i64..60, 0i64..100_000), 1..50),
        ) {
            let method = Disclosure::CellKey { max_noise: 3, variance: 2.0, small_count: 4 };
            let t: BTreeMap<Vec<String>, Tally> = counts.iter().enumerate()
                .map(|(i, (c, s))| (vec![format!("{i:03}")], Tally { count: *c, key_sum: *s }))
                .collect();
            let first = protect(&method, t.clone());
            let again = protect(&method, t.clone());
            prop_assert_eq!(&first, &again);
            for cell in &first {
                let true_count = t[&cell.key].count as u64;
                match cell.value {
                    CellValue::Value(v) => {
                        prop_assert!(v > 0);
                        prop_assert!(v.abs_diff(true_count) <= 3);
                        if true_count < 4 { prop_assert_ne!(v, true_count); }
                    }
                    CellValue::Confidential => prop_assert!(false, "cell-key never flags"),
                }
            }
        }
    }
}
