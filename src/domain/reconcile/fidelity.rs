//! How close each reconciliation rule comes to the true flows, where the truth is known (the
//! synthetic generator writes it as `truth.csv`). Reads text it is handed; never opens a file.

use std::collections::BTreeMap;

use crate::domain::consortium::Rule;
use crate::domain::model::Country;
use crate::domain::model::{Cube, Period};

use super::{reconcile_figure, View};

/// True moves per (origin, destination, period).
pub type Truth = BTreeMap<(Country, Country, Period), u64>;

/// Why `truth.csv` text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TruthError {
    /// The CSV itself is malformed (unbalanced quotes, a short row, …).
    #[error("truth.csv:{line}: {message}")]
    Csv { line: u64, message: String },
    /// The header lacks one of `origin`, `destination`, `month`, `moves`.
    #[error("truth.csv: missing column {0:?}")]
    MissingColumn(&'static str),
    /// A field does not hold what its column requires.
    #[error("truth.csv:{line}: {field}: {problem} {value:?}")]
    BadField {
        line: u64,
        field: &'static str,
        problem: &'static str,
        value: String,
    },
}

/// For every rule, the mean absolute percentage error (in percent) of the reconciled pair totals
/// against the truth, over the truth's mirror pairs with more than zero moves: pairs whose origin
/// and destination both published `flows` for the period (a pair with a non-member side has
/// only one report and no rule to compare). A mirror pair the view does not have counts as an
/// estimate of 0. The figures come from the view's pair totals where the sides published theirs
/// (margins), else from its rows, so the whole view is not recomputed per rule. Empty when no
/// pair has positive truth (nothing can be scored).
pub fn pair_total_mape(view: &View, truth: &Truth) -> Vec<(Rule, f64)> {
    let scored = scored(view, truth);
    if scored.is_empty() {
        return Vec::new();
    }
    Rule::ALL
        .into_iter()
        .map(|rule| {
            let mut totals: BTreeMap<(Country, Country, Period), u64> = BTreeMap::new();
            // Published totals (margins) where every side present has one; elsewhere the sum of
            // the rows' figures.
            let published = |total: &super::PairTotal| {
                let present = [total.sender, total.receiver]
                    .into_iter()
                    .filter(|s| s.reported != super::Reported::Missing);
                present.clone().count() > 0 && present.clone().all(|s| s.published)
            };
            for (pair, total) in &view.pairs {
                if published(total) {
                    let figure = reconcile_figure(rule, total.sender.reported, total.receiver.reported).unwrap_or(0);
                    totals.insert((pair.origin, pair.destination, pair.period), figure);
                }
            }
            for (key, row) in &view.rows {
                if view.pairs.get(&key.pair).is_some_and(published) {
                    continue;
                }
                let figure = reconcile_figure(rule, row.sender.reported, row.receiver.reported).unwrap_or(0);
                let pair = (key.pair.origin, key.pair.destination, key.pair.period);
                let total = totals.entry(pair).or_default();
                *total = total.saturating_add(figure);
            }
            let error_sum: f64 = scored
                .iter()
                .map(|(pair, moves)| {
                    let estimate = totals.get(*pair).copied().unwrap_or(0);
                    estimate.abs_diff(*moves) as f64 / *moves as f64
                })
                .sum();
            (rule, 100.0 * error_sum / scored.len() as f64)
        })
        .collect()
}

/// The truth's mirror pairs with more than zero moves whose two sides both published `flows`.
fn scored<'t>(view: &View, truth: &'t Truth) -> Vec<(&'t (Country, Country, Period), u64)> {
    truth
        .iter()
        .filter(|(_, &moves)| moves > 0)
        .filter(|((origin, destination, period), _)| {
            let published = |c: &Country| view.inputs.contains_key(&(*c, Cube::Flows, *period));
            published(origin) && published(destination)
        })
        .map(|(k, &m)| (k, m))
        .collect()
}

/// How the modelled estimates (SPEC §15) fare against the truth, over the pairs
/// [`pair_total_mape`] scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EstimateFidelity {
    pub pairs: usize,
    /// Mean absolute percentage error, in percent (a pair without an estimate counts as 0).
    pub mape: f64,
    /// Share of the pairs whose 95% interval holds the truth.
    pub covered: f64,
}

/// The estimates' error and interval coverage against the truth; none without scored pairs.
pub fn estimate_fidelity(view: &View, truth: &Truth) -> Option<EstimateFidelity> {
    let scored = scored(view, truth);
    if scored.is_empty() {
        return None;
    }
    let (mut error, mut covered) = (0.0, 0usize);
    for ((origin, destination, period), moves) in &scored {
        let estimate = view
            .pairs
            .get(&super::PairKey {
                origin: *origin,
                destination: *destination,
                period: *period,
            })
            .and_then(|t| t.estimate);
        let value = estimate.map_or(0, |e| e.value);
        error += value.abs_diff(*moves) as f64 / *moves as f64;
        covered += usize::from(estimate.is_some_and(|e| (e.lower..=e.upper).contains(moves)));
    }
    Some(EstimateFidelity {
        pairs: scored.len(),
        mape: 100.0 * error / scored.len() as f64,
        covered: covered as f64 / scored.len() as f64,
    })
}

/// Reads `truth.csv` text (header `origin,destination,month,moves`, columns in any order, month
/// `YYYY-MM`) and sums the months that fall in `period` into one figure per pair. Months outside
/// the period are skipped.
pub fn read_truth(csv_text: &str, period: Period) -> Result<Truth, TruthError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(csv_text.as_bytes());
    let csv_error = |e: csv::Error| TruthError::Csv {
        line: e.position().map(|p| p.line()).unwrap_or(0),
        message: e.to_string(),
    };
    let headers = reader.headers().map_err(csv_error)?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or(TruthError::MissingColumn(name))
    };
    let (origin_at, destination_at, month_at, moves_at) = (
        column("origin")?,
        column("destination")?,
        column("month")?,
        column("moves")?,
    );

    let mut truth = Truth::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |at: usize, name: &'static str| -> Result<&str, TruthError> {
            record.get(at).map(str::trim).ok_or(TruthError::BadField {
                line,
                field: name,
                problem: "missing",
                value: String::new(),
            })
        };
        let bad = |name: &'static str, problem: &'static str, value: &str| TruthError::BadField {
            line,
            field: name,
            problem,
            value: value.to_string(),
        };
        let origin_text = field(origin_at, "origin")?;
        let origin = Country::parse(origin_text).ok_or_else(|| bad("origin", "unknown country code", origin_text))?;
        let destination_text = field(destination_at, "destination")?;
        let destination = Country::parse(destination_text)
            .ok_or_else(|| bad("destination", "unknown country code", destination_text))?;
        let month_text = field(month_at, "month")?;
        let Some(Period::Month(year, month)) = Period::parse(month_text) else {
            return Err(bad("month", "not a YYYY-MM month", month_text));
        };
        let moves_text = field(moves_at, "moves")?;
        let moves: u64 = moves_text
            .parse()
            .map_err(|_| bad("moves", "not a non-negative integer", moves_text))?;
        if year == period.year() && period.months().contains(&month) {
            let total = truth.entry((origin, destination, period)).or_default();
            *total = total.saturating_add(moves);
        }
    }
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reconcile::compute;
    use crate::domain::reconcile::test_support::*;

    #[test]
    fn truth_is_summed_into_the_period() {
        let text = "origin,destination,month,moves\nDEU,FRA,2024-01,3\nDEU,FRA,2024-02,4\nDEU,FRA,2024-04,10\nFRA,DEU,2023-02,7\n";
        let q1 = read_truth(text, Period::Quarter(2024, 1)).unwrap();
        assert_eq!(q1, Truth::from([((deu(), fra(), Period::Quarter(2024, 1)), 7)]));
        let year = read_truth(text, Period::Year(2024)).unwrap();
        assert_eq!(year.get(&(deu(), fra(), Period::Year(2024))), Some(&17));
        assert_eq!(year.len(), 1);
        // Columns in another order are fine.
        let swapped = "moves,month,destination,origin\n5,2024-03,FRA,DEU\n";
        assert_eq!(
            read_truth(swapped, Period::Month(2024, 3))
                .unwrap()
                .values()
                .sum::<u64>(),
            5
        );
    }

    #[test]
    fn bad_truth_is_named() {
        assert_eq!(
            read_truth("origin,destination,moves\n", Period::Year(2024)),
            Err(TruthError::MissingColumn("month"))
        );
        let err = read_truth(
            "origin,destination,month,moves\nDEU,FRX,2024-01,3\n",
            Period::Year(2024),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "truth.csv:2: destination: unknown country code \"FRX\""
        );
        let err = read_truth("origin,destination,month,moves\nDEU,FRA,2024,3\n", Period::Year(2024)).unwrap_err();
        assert!(matches!(err, TruthError::BadField { field: "month", .. }), "{err}");
        let err = read_truth(
            "origin,destination,month,moves\nDEU,FRA,2024-01,-3\n",
            Period::Year(2024),
        )
        .unwrap_err();
        assert!(matches!(err, TruthError::BadField { field: "moves", .. }), "{err}");
    }

    #[test]
    fn mape_on_a_hand_example() {
        // DEU→FRA: sender 10 + 6 (two rows), receiver 8 + C.  FRA→DEU: receiver only, 20.
        let view = compute(
            &[
                flows(deu(), 1, &[out(fra(), "FRA", 10), out(fra(), "SYR", 6)]),
                flows(fra(), 1, &[inn(deu(), "FRA", 8), confidential("IN", deu(), "SYR")]),
                flows(
                    deu(),
                    2,
                    &[out(fra(), "FRA", 10), out(fra(), "SYR", 6), inn(fra(), "FRA", 20)],
                ),
            ],
            &settings(),
        );
        let y = year();
        let truth = Truth::from([
            ((deu(), fra(), y), 20),
            ((fra(), deu(), y), 25),
            ((ita(), deu(), y), 0), // not scored: zero truth
        ]);
        // Row figures per rule, DEU→FRA rows (FRA: 10 vs 8, SYR: 6 vs C); FRA→DEU: FRA's OUT is
        // an absent cell in a published dataset (0) vs 20.
        //   receiving: 8 + 6 = 14, 20  → (6/20 + 5/25) / 2 = 0.25
        //   sending:   10 + 6 = 16, 0  → (4/20 + 25/25) / 2 = 0.60
        //   max:       10 + 6 = 16, 20 → (4/20 + 5/25) / 2 = 0.20
        //   mean:      9 + 6 = 15, 10  → (5/20 + 15/25) / 2 = 0.425
        let scores = pair_total_mape(&view, &truth);
        let expected = [
            (Rule::Receiving, 25.0),
            (Rule::Sending, 60.0),
            (Rule::Max, 20.0),
            (Rule::Mean, 42.5),
        ];
        assert_eq!(scores.len(), 4);
        for ((rule, score), (want_rule, want)) in scores.iter().zip(expected) {
            assert_eq!(*rule, want_rule);
            assert!((score - want).abs() < 1e-9, "{rule:?}: {score} vs {want}");
        }
        assert!(pair_total_mape(&view, &Truth::new()).is_empty());
    }
}
