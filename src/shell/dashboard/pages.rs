//! What each dashboard page shows, read from the node's view and status: plain data for the
//! templates, computed on the server so the page gets aggregates first and rows only on
//! demand (a pair's breakdown, one page of side-by-side rows).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::matrix::{self, Choice, PairFigures, Shown};
use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::{PairKey, Reported, View};

/// Side-by-side rows per page.
pub const ROWS_PER_PAGE: usize = 500;
/// Shades of the matrix's colour scale (cividis: readable with every common colour-vision
/// deficiency, and in grey).
const SHADES: u64 = 8;

/// A figure as the dashboard prints it: the number, or `C` (confidential: never a zero) or `M`
/// (missing).
pub fn figure(reported: Option<u64>, status: &str) -> String {
    match reported {
        Some(v) if status.is_empty() => v.to_string(),
        _ if status.is_empty() => "M".to_string(),
        _ => status.to_string(),
    }
}

fn side(reported: Reported) -> String {
    figure(reported.value(), reported.status())
}

fn percent(asymmetry: Option<f64>) -> String {
    asymmetry.map(|a| format!("{:+.1}%", a * 100.0)).unwrap_or_default()
}

/// One matrix cell: a pair in the selected period.
#[derive(Serialize)]
pub struct Cell {
    pub text: String,
    pub shade: Option<u64>,
    pub flag: bool,
    /// The numbers behind the cell, for the hover title.
    pub title: String,
}

/// An origin and its cells: (destination, the pair's cell; none where no pair exists).
pub type MatrixRow = (String, Vec<(String, Option<Cell>)>);

/// One sender-vs-receiver line.
#[derive(Serialize)]
pub struct PairLine {
    pub origin: String,
    pub destination: String,
    pub sender: String,
    pub receiver: String,
    pub reconciled: String,
    pub asymmetry: String,
    pub flag: bool,
    /// The modelled estimate with its 95% interval (SPEC §15), empty without one.
    pub estimate: String,
}

/// The chosen pair's figures as a picture (SPEC §15): both reports, the rule's figure and the
/// estimate with its interval on one scale, each as a percentage of the width.
#[derive(Serialize)]
pub struct Picture {
    /// The scale's right end, in persons.
    pub max: u64,
    /// (label, figure, position %) of each published figure: sender, receiver, rule.
    pub marks: Vec<(String, u64, f64)>,
    /// The estimate's (lower %, value %, upper %) and its text.
    pub estimate: Option<(f64, f64, f64)>,
    pub estimate_text: String,
}

impl Picture {
    fn of(total: &crate::domain::reconcile::PairTotal) -> Option<Picture> {
        let figures = [
            ("sender", total.sender.reported.value()),
            ("receiver", total.receiver.reported.value()),
            ("rule", total.reconciled),
        ];
        let top = figures
            .iter()
            .filter_map(|(_, v)| *v)
            .chain(total.estimate.map(|e| e.upper))
            .max()?;
        // A little room on the right, and a scale of at least one person.
        let max = (top + top / 10).max(1);
        let at = |v: u64| (1000.0 * v as f64 / max as f64).round() / 10.0;
        Some(Picture {
            max,
            marks: figures
                .iter()
                .filter_map(|(label, v)| v.map(|v| (label.to_string(), v, at(v))))
                .collect(),
            estimate: total.estimate.map(|e| (at(e.lower), at(e.value), at(e.upper))),
            estimate_text: total
                .estimate
                .map(|e| format!("{} [{}, {}]", e.value, e.lower, e.upper))
                .unwrap_or_default(),
        })
    }
}

/// One line of a breakdown: a value of citizenship, sex or age band, summed over the rest.
#[derive(Serialize)]
pub struct BreakdownLine {
    pub value: String,
    pub sender: String,
    pub receiver: String,
    pub reconciled: String,
}

/// One month of a pair's series.
#[derive(Serialize, Clone)]
pub struct SeriesPoint {
    pub period: String,
    pub sender: Option<u64>,
    pub receiver: Option<u64>,
    pub reconciled: Option<u64>,
    pub sender_text: String,
    pub receiver_text: String,
    pub reconciled_text: String,
}

/// The flows page.
#[derive(Serialize)]
pub struct Flows {
    pub periods: Vec<String>,
    pub period: Option<String>,
    pub members: Vec<String>,
    pub origin: Option<String>,
    pub destination: Option<String>,
    pub origins: Vec<String>,
    pub destinations: Vec<String>,
    /// Rows of the matrix, one per origin, one cell per destination.
    pub matrix: Vec<MatrixRow>,
    pub pairs: Vec<PairLine>,
    pub series: Vec<SeriesPoint>,
    pub breakdowns: Vec<(String, Vec<BreakdownLine>)>,
    /// The view's notes on the chosen pair and period (a side not reported, different
    /// definitions or disclosure methods).
    pub notes: Vec<String>,
    /// The chosen pair's figures and estimate as a picture.
    pub picture: Option<Picture>,
    /// Whether the view carries estimates (the consortium asks for them).
    pub estimates: bool,
    /// Whether the matrix shows the estimates rather than the rule's figures.
    pub matrix_estimates: bool,
    pub max: u64,
    /// The matrix's order (`code`, `size`, `asymmetry`) and the members listed, comma-separated.
    pub sort: String,
    pub listed: String,
    /// How many members the matrix shows of how many, and whether it kept the largest.
    pub shown_members: usize,
    pub all_members: usize,
    pub capped: bool,
}

/// A breakdown sum: the published values, and how many cells were withheld.
#[derive(Default, Clone, Copy)]
struct Sum {
    value: u64,
    values: u64,
    confidential: u64,
}

impl Sum {
    fn add(&mut self, r: Option<u64>, status: &str) {
        match r {
            Some(v) => {
                self.value = self.value.saturating_add(v);
                self.values += 1;
            }
            None if status == "C" => self.confidential += 1,
            None => {}
        }
    }

    /// As pair totals read in `accord demo`: `N+C` when confidential cells are left out of the
    /// sum, `C` when nothing positive was published but some cells were withheld (never 0).
    fn text(self) -> String {
        match (self.values, self.value, self.confidential) {
            (0, _, 0) => "M".to_string(),
            (_, 0, c) if c > 0 => "C".to_string(),
            (_, v, 0) => v.to_string(),
            (_, v, _) => format!("{v}+C"),
        }
    }
}

/// The default period: the latest year with pairs, else the latest period of any kind.
fn default_period(periods: &BTreeSet<Period>) -> Option<Period> {
    periods
        .iter()
        .filter(|p| matches!(p, Period::Year(_)))
        .max_by_key(|p| year_of(**p))
        .or_else(|| periods.iter().max_by_key(|p| (year_of(**p), **p)))
        .copied()
}

fn year_of(p: Period) -> i32 {
    match p {
        Period::Year(y) | Period::Quarter(y, _) | Period::Month(y, _) => y,
    }
}

impl Flows {
    /// The page for `period`, `origin` and `destination` (each optional); the matrix shows the
    /// modelled estimates when `estimates` is set and the view has them, else the rule's figures.
    pub fn build(
        view: &View,
        period: Option<Period>,
        origin: Option<Country>,
        destination: Option<Country>,
        estimates: bool,
        choice: &Choice,
    ) -> Flows {
        let has_estimates = view.pairs.values().any(|t| t.estimate.is_some());
        let show_estimates = estimates && has_estimates;
        let periods: BTreeSet<Period> = view.pairs.keys().map(|k| k.period).collect();
        let period = period.or_else(|| default_period(&periods));
        // The matrix is the mirror matrix: members that publish flows, on both axes. Pairs
        // with a partner outside the consortium (one side only) are in the pair table.
        let members: BTreeSet<Country> = view
            .inputs
            .keys()
            .filter(|(_, cube, _)| *cube == Cube::Flows)
            .map(|(publisher, _, _)| *publisher)
            .collect();
        let in_period: Vec<(&PairKey, &crate::domain::reconcile::PairTotal)> =
            view.pairs.iter().filter(|(k, _)| Some(k.period) == period).collect();
        // The figure the matrix shows for a pair: the estimate, or the rule's figure.
        let shown_figure = |t: &crate::domain::reconcile::PairTotal| {
            if show_estimates {
                t.estimate.map(|e| e.value)
            } else {
                t.reconciled
            }
        };
        let max = in_period.iter().filter_map(|(_, t)| shown_figure(t)).max().unwrap_or(0);
        let shade = |v: u64| {
            if max == 0 {
                0
            } else {
                // In u128: a published figure may be as large as u64 allows.
                (u128::from(v) * u128::from(SHADES - 1))
                    .div_ceil(u128::from(max))
                    .min(u128::from(SHADES - 1)) as u64
            }
        };
        let by_pair: BTreeMap<(Country, Country), &crate::domain::reconcile::PairTotal> =
            in_period.iter().map(|(k, t)| ((k.origin, k.destination), *t)).collect();
        let shown = |c: &Country, chosen: Option<Country>| chosen.is_none_or(|x| x == *c);
        // The matrix's members and their order: those listed, or the largest past a limit.
        let figures: PairFigures = by_pair
            .iter()
            .filter(|((o, d), _)| members.contains(o) && members.contains(d))
            .map(|(pair, t)| (*pair, (shown_figure(t), t.asymmetry)))
            .collect();
        let Shown { order, capped } = matrix::shown(&members, &figures, choice);
        let in_matrix: BTreeSet<Country> = order.iter().copied().collect();
        let matrix = order
            .iter()
            .filter(|o| shown(o, origin))
            .map(|o| {
                let cells = order
                    .iter()
                    .filter(|d| shown(d, destination))
                    .map(|d| {
                        let cell = by_pair.get(&(*o, *d)).map(|t| Cell {
                            text: if show_estimates {
                                t.estimate.map_or("-".to_string(), |e| e.value.to_string())
                            } else {
                                figure(t.reconciled, t.reconciled_status())
                            },
                            shade: shown_figure(t).map(shade),
                            flag: t.flag,
                            title: format!(
                                "{o} to {d}: sender {}, receiver {}, reconciled {}{}{}",
                                side(t.sender.reported),
                                side(t.receiver.reported),
                                figure(t.reconciled, t.reconciled_status()),
                                match t.asymmetry {
                                    Some(a) => format!(", asymmetry {}", percent(Some(a))),
                                    None => String::new(),
                                },
                                match t.estimate {
                                    Some(e) => format!(", estimate {} [{}, {}]", e.value, e.lower, e.upper),
                                    None => String::new(),
                                }
                            ),
                        });
                        (d.to_string(), cell)
                    })
                    .collect();
                (o.to_string(), cells)
            })
            .collect();
        // With members listed, the pair table keeps the pairs among them.
        let listed = |c: &Country| choice.members.is_empty() || in_matrix.contains(c);
        let pairs = in_period
            .iter()
            .filter(|(k, _)| shown(&k.origin, origin) && shown(&k.destination, destination))
            .filter(|(k, _)| listed(&k.origin) && listed(&k.destination))
            .map(|(k, t)| PairLine {
                origin: k.origin.to_string(),
                destination: k.destination.to_string(),
                sender: side(t.sender.reported),
                receiver: side(t.receiver.reported),
                reconciled: figure(t.reconciled, t.reconciled_status()),
                asymmetry: percent(t.asymmetry),
                flag: t.flag,
                estimate: t
                    .estimate
                    .map(|e| format!("{} [{}, {}]", e.value, e.lower, e.upper))
                    .unwrap_or_default(),
            })
            .collect();
        let picture = match (origin, destination, period) {
            (Some(origin), Some(destination), Some(period)) => view
                .pairs
                .get(&PairKey {
                    origin,
                    destination,
                    period,
                })
                .and_then(Picture::of),
            _ => None,
        };
        let (series, breakdowns) = match (origin, destination, period) {
            (Some(o), Some(d), Some(p)) => (series(view, o, d, year_of(p)), breakdowns(view, o, d, p)),
            _ => (Vec::new(), Vec::new()),
        };
        let notes = match (origin, destination, period) {
            (Some(origin), Some(destination), Some(period)) => {
                let pair = Some(PairKey {
                    origin,
                    destination,
                    period,
                });
                view.notes
                    .iter()
                    .filter(|n| n.pair == pair)
                    .map(|n| n.text.clone())
                    .collect()
            }
            _ => Vec::new(),
        };
        Flows {
            periods: periods.iter().map(ToString::to_string).collect(),
            period: period.map(|p| p.to_string()),
            members: members.iter().map(ToString::to_string).collect(),
            origin: origin.map(|c| c.to_string()),
            destination: destination.map(|c| c.to_string()),
            origins: order
                .iter()
                .filter(|o| shown(o, origin))
                .map(ToString::to_string)
                .collect(),
            destinations: order
                .iter()
                .filter(|d| shown(d, destination))
                .map(ToString::to_string)
                .collect(),
            matrix,
            pairs,
            series,
            breakdowns,
            notes,
            picture,
            estimates: has_estimates,
            matrix_estimates: show_estimates,
            max,
            sort: choice.sort.as_str().to_string(),
            listed: choice
                .members
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            shown_members: order.len(),
            all_members: members.len(),
            capped,
        }
    }
}

/// The months of `year` for one pair, as published.
fn series(view: &View, origin: Country, destination: Country, year: i32) -> Vec<SeriesPoint> {
    (1..=12u8)
        .filter_map(|m| {
            let key = PairKey {
                origin,
                destination,
                period: Period::Month(year, m),
            };
            view.pairs.get(&key).map(|t| SeriesPoint {
                period: key.period.to_string(),
                sender: t.sender.reported.value(),
                receiver: t.receiver.reported.value(),
                reconciled: t.reconciled,
                sender_text: side(t.sender.reported),
                receiver_text: side(t.receiver.reported),
                reconciled_text: figure(t.reconciled, t.reconciled_status()),
            })
        })
        .collect()
}

/// The pair's rows in `period`, summed by citizenship, by sex and by age band: read only when
/// a pair is chosen, so the page never carries every row.
fn breakdowns(view: &View, origin: Country, destination: Country, period: Period) -> Vec<(String, Vec<BreakdownLine>)> {
    let pair = PairKey {
        origin,
        destination,
        period,
    };
    let mut sums: [BTreeMap<String, [Sum; 3]>; 3] = Default::default();
    // The smallest key of the pair: its rows follow in key order.
    let first = crate::domain::dataset::Code::new("").map(|empty| crate::domain::reconcile::MirrorKey {
        pair,
        citizenship: empty,
        sex: empty,
        age_band: empty,
    });
    if let Some(first) = first {
        for (k, row) in view.rows.range_from(&first).take_while(|(k, _)| k.pair == pair) {
            let values = [k.citizenship.as_str(), k.sex.as_str(), k.age_band.as_str()];
            for (i, v) in values.iter().enumerate() {
                let s = sums[i].entry(v.to_string()).or_default();
                s[0].add(row.sender.reported.value(), row.sender.reported.status());
                s[1].add(row.receiver.reported.value(), row.receiver.reported.status());
                s[2].add(row.reconciled, row.reconciled_status());
            }
        }
    }
    ["citizenship", "sex", "age band"]
        .iter()
        .zip(sums)
        .map(|(name, sums)| {
            let lines = sums
                .into_iter()
                .map(|(value, [s, r, c])| BreakdownLine {
                    value,
                    sender: s.text(),
                    receiver: r.text(),
                    reconciled: c.text(),
                })
                .collect();
            (name.to_string(), lines)
        })
        .collect()
}

/// One side-by-side page (asylum or permits): dimensions, then one column per publisher.
#[derive(Serialize)]
pub struct SideBySide {
    pub cube: String,
    pub periods: Vec<String>,
    pub period: Option<String>,
    pub dimensions: Vec<String>,
    pub publishers: Vec<String>,
    pub rows: Vec<(Vec<String>, Vec<String>)>,
    pub total_rows: usize,
    pub page: usize,
    pub pages: usize,
}

impl SideBySide {
    pub fn build(view: &View, cube: Cube, period: Option<Period>, page: usize) -> SideBySide {
        let periods: BTreeSet<Period> = view
            .side_by_side
            .keys()
            .filter(|k| k.cube == cube)
            .map(|k| k.period)
            .collect();
        let period = period.or_else(|| default_period(&periods));
        let selected: Vec<_> = view
            .side_by_side
            .iter()
            .filter(|(k, _)| k.cube == cube && Some(k.period) == period)
            .collect();
        let publishers: BTreeSet<Country> = selected.iter().flat_map(|(_, e)| e.keys().copied()).collect();
        let pages = selected.len().div_ceil(ROWS_PER_PAGE).max(1);
        let page = page.min(pages - 1);
        let rows = selected
            .iter()
            .skip(page * ROWS_PER_PAGE)
            .take(ROWS_PER_PAGE)
            .map(|(k, entries)| {
                let figures = publishers
                    .iter()
                    .map(|p| entries.get(p).map(|e| side(e.reported)).unwrap_or_else(|| "M".into()))
                    .collect();
                (k.dimensions.clone(), figures)
            })
            .collect();
        SideBySide {
            cube: cube.to_string(),
            periods: periods.iter().map(ToString::to_string).collect(),
            period: period.map(|p| p.to_string()),
            dimensions: cube.dimensions().iter().map(|d| d.to_string()).collect(),
            publishers: publishers.iter().map(ToString::to_string).collect(),
            rows,
            total_rows: selected.len(),
            page,
            pages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confidential_figure_reads_c_and_a_missing_one_m_never_zero() {
        assert_eq!(figure(Some(0), ""), "0");
        assert_eq!(figure(None, "C"), "C");
        assert_eq!(figure(None, ""), "M");
        assert_eq!(side(Reported::Confidential), "C");
        assert_eq!(side(Reported::Missing), "M");
        assert_eq!(side(Reported::Value(12)), "12");
    }

    #[test]
    fn a_breakdown_sum_says_what_it_leaves_out() {
        let sum = |cells: &[(Option<u64>, &str)]| {
            let mut s = Sum::default();
            for (v, status) in cells {
                s.add(*v, status);
            }
            s.text()
        };
        assert_eq!(sum(&[]), "M");
        assert_eq!(sum(&[(None, "C"), (None, "C")]), "C");
        assert_eq!(
            sum(&[(Some(0), ""), (None, "C")]),
            "C",
            "zero published, some withheld: not 0"
        );
        assert_eq!(sum(&[(Some(0), ""), (Some(0), "")]), "0");
        assert_eq!(sum(&[(Some(7), ""), (None, "C")]), "7+C");
        assert_eq!(sum(&[(Some(7), ""), (Some(5), ""), (None, "M")]), "12");
    }

    #[test]
    fn the_default_period_is_the_latest_year() {
        let periods: BTreeSet<Period> = [
            Period::Year(2024),
            Period::Month(2025, 3),
            Period::Year(2025),
            Period::Quarter(2025, 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(default_period(&periods), Some(Period::Year(2025)));
        let months: BTreeSet<Period> = [Period::Month(2025, 3), Period::Month(2025, 11)].into_iter().collect();
        assert_eq!(default_period(&months), Some(Period::Month(2025, 11)));
        assert_eq!(default_period(&BTreeSet::new()), None);
    }
}
