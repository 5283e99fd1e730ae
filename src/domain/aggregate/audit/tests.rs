use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn key(name: &str) -> Vec<String> {
    vec![name.to_string()]
}

/// Every period of one year: the year, its quarters, its months.
fn periods(year: i32) -> Vec<Period> {
    std::iter::once(Period::Year(year))
        .chain((1..=4).map(|q| Period::Quarter(year, q)))
        .chain((1..=12).map(|m| Period::Month(year, m)))
        .collect()
}

/// The cells `protect` makes under threshold `k` from monthly counts per key.
fn publishable(k: u32, counts: &BTreeMap<Vec<String>, [u32; 12]>, period: Period) -> Vec<Cell> {
    counts
        .iter()
        .filter_map(|(key, months)| {
            let n: u32 = period.months().map(|m| months[usize::from(m) - 1]).sum();
            let value = match n {
                0 => return None,
                n if n < k => CellValue::Confidential,
                n => CellValue::Value(u64::from(n)),
            };
            Some(Cell {
                key: key.clone(),
                value,
            })
        })
        .collect()
}

/// One entry as the tests keep it: seq, period, cells, and the record state they came from.
type Entry = (u64, Period, Vec<Cell>, usize);

/// A node's feed as the tests keep it.
#[derive(Default)]
struct Feed {
    entries: Vec<Entry>,
}

impl Feed {
    fn publish(&mut self, k: u32, period: Period, cells: Vec<Cell>, state: usize) -> Result<Audited, Refusal> {
        let earlier: Vec<Earlier<'_>> = self
            .entries
            .iter()
            .map(|(seq, period, cells, _)| Earlier {
                seq: *seq,
                period: *period,
                cells,
            })
            .collect();
        let audited = audit(k, &earlier, period, cells, &Months::new())?;
        let seq = self.entries.len() as u64 + 1;
        self.entries.push((seq, period, audited.cells.clone(), state));
        Ok(audited)
    }
}

fn value(cells: &[Cell], key: &[String]) -> Option<CellValue> {
    cells.iter().find(|c| c.key == key).map(|c| c.value)
}

#[test]
fn overlapping_periods_the_attack_of_the_issue_is_suppressed() {
    // DEU publishes January, February, Q1 and March; one cell is 5 in January, 2 in February
    // and 0 in March, so Q1 = 7 would give February = 7 − 5 − 0 = 2.
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("SYR,F"), [5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    counts.insert(key("TUR,M"), [9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut feed = Feed::default();
    for p in [Period::Month(2025, 1), Period::Month(2025, 2)] {
        assert!(feed
            .publish(k, p, publishable(k, &counts, p), 0)
            .unwrap()
            .suppressed
            .is_empty());
    }
    let q1 = Period::Quarter(2025, 1);
    let audited = feed.publish(k, q1, publishable(k, &counts, q1), 0).unwrap();
    assert_eq!(audited.suppressed, vec![key("SYR,F")]);
    assert_eq!(value(&audited.cells, &key("SYR,F")), Some(CellValue::Confidential));
    assert_eq!(
        value(&audited.cells, &key("TUR,M")),
        Some(CellValue::Value(24)),
        "the safe cell stays"
    );
    let march = Period::Month(2025, 3);
    assert!(feed.publish(k, march, publishable(k, &counts, march), 0).is_ok());
    assert_eq!(attack(k, &feed), None);
}

#[test]
fn a_revision_that_moves_a_cell_by_fewer_than_k_is_suppressed() {
    let k = 5;
    let jan = Period::Month(2025, 1);
    let mut counts = BTreeMap::new();
    counts.insert(key("SYR,F"), [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut feed = Feed::default();
    feed.publish(k, jan, publishable(k, &counts, jan), 0).unwrap();
    // One late registration: republished, the cell would go 5 -> 6 and show that person.
    counts.get_mut(&key("SYR,F")).unwrap()[0] = 6;
    let audited = feed.publish(k, jan, publishable(k, &counts, jan), 1).unwrap();
    assert_eq!(audited.suppressed, vec![key("SYR,F")]);
    // Five more: a change of 5 shows nobody in particular.
    counts.get_mut(&key("SYR,F")).unwrap()[0] = 11;
    let audited = feed.publish(k, jan, publishable(k, &counts, jan), 2).unwrap();
    assert_eq!(value(&audited.cells, &key("SYR,F")), Some(CellValue::Value(11)));
    assert_eq!(attack(k, &feed), None);
}

#[test]
fn a_confidential_cell_pinned_by_the_others_is_refused_naming_it() {
    // A year of 12 is published; with eight months flagged C (1..4 each), each of them is 1..=5;
    // a ninth would narrow each to 1..=4, fewer than k values (and twelve would pin them at 1).
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("ERI,M"), [1; 12]);
    let mut feed = Feed::default();
    feed.publish(k, Period::Year(2025), publishable(k, &counts, Period::Year(2025)), 0)
        .unwrap();
    for m in 1..=8 {
        let p = Period::Month(2025, m);
        feed.publish(k, p, publishable(k, &counts, p), 0).unwrap();
    }
    let sep = Period::Month(2025, 9);
    let refusal = feed.publish(k, sep, publishable(k, &counts, sep), 0).unwrap_err();
    assert_eq!(refusal.key, key("ERI,M"));
    assert_eq!(
        refusal.entries,
        (1..=9).collect::<Vec<u64>>(),
        "the year's and the months' entries"
    );
    assert_eq!(
        refusal.to_string(),
        "cell ERI,M of 2025-09: with the other published figures, the confidential figure of month 1 can only be 1..=4 (4 value(s), fewer than k = 5) (with entries seq 1, 2, 3, 4, 5, 6, 7, 8, 9)"
    );
}

#[test]
fn periods_of_other_years_are_not_compared() {
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("a"), [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut feed = Feed::default();
    feed.publish(
        k,
        Period::Month(2024, 1),
        publishable(k, &counts, Period::Month(2024, 1)),
        0,
    )
    .unwrap();
    counts.get_mut(&key("a")).unwrap()[0] = 7;
    let audited = feed
        .publish(
            k,
            Period::Month(2025, 1),
            publishable(k, &counts, Period::Month(2025, 1)),
            1,
        )
        .unwrap();
    assert!(audited.suppressed.is_empty());
}

// ---------------------------------------------------------------- the attacker

/// Exact figures (period months, value) of one key in `entries`: values and absent cells (0).
fn figures(entries: &[&(u64, Period, Vec<Cell>, usize)], key: &[String]) -> Vec<(u16, f64)> {
    entries
        .iter()
        .filter_map(|(_, period, cells, _)| {
            let m = period.months().fold(0u16, |m, month| m | 1 << (month - 1));
            match value(cells, key) {
                None => Some((m, 0.0)),
                Some(CellValue::Value(v)) => Some((m, v as f64)),
                Some(CellValue::Confidential) => None,
            }
        })
        .collect()
}

/// Row-reduced figures: rows of 12 coefficients and a value, each with its pivot column.
struct Span {
    rows: Vec<([f64; 12], f64, usize)>,
}

impl Span {
    /// Gaussian elimination of the figures, with no knowledge of how periods nest.
    fn of(figures: &[(u16, f64)]) -> Span {
        let mut rows: Vec<([f64; 12], f64)> = figures
            .iter()
            .map(|(m, v)| {
                let mut r = [0.0; 12];
                for (i, c) in r.iter_mut().enumerate() {
                    if m & (1 << i) != 0 {
                        *c = 1.0;
                    }
                }
                (r, *v)
            })
            .collect();
        let mut out = Vec::new();
        for col in 0..12 {
            let Some(p) = rows.iter().position(|(r, _)| r[col].abs() > 1e-9) else {
                continue;
            };
            let (mut pivot, mut pv) = rows.swap_remove(p);
            let f = pivot[col];
            pivot.iter_mut().for_each(|x| *x /= f);
            pv /= f;
            let eliminate = |r: &mut [f64; 12], v: &mut f64| {
                let c = r[col];
                if c.abs() > 1e-12 {
                    for i in 0..12 {
                        r[i] -= c * pivot[i];
                    }
                    *v -= c * pv;
                }
            };
            for (r, v) in rows.iter_mut() {
                eliminate(r, v);
            }
            for (r, v, _) in out.iter_mut() {
                eliminate(r, v);
            }
            out.push((pivot, pv, col));
        }
        Span { rows: out }
    }

    /// The value of the months in `t`, if the figures determine it.
    fn derive(&self, t: u16) -> Option<f64> {
        let mut r = [0.0f64; 12];
        for (i, c) in r.iter_mut().enumerate() {
            if t & (1 << i) != 0 {
                *c = 1.0;
            }
        }
        let mut value = 0.0;
        for (row, v, col) in &self.rows {
            let c = r[*col];
            if c.abs() > 1e-12 {
                for i in 0..12 {
                    r[i] -= c * row[i];
                }
                value += c * v;
            }
        }
        r.iter().all(|x| x.abs() < 1e-6).then_some(value)
    }
}

/// Unions of the months that no figure tells apart (everything derivable is such a union).
fn candidate_sets(figures: &[(u16, f64)]) -> Vec<u16> {
    let mut atoms: BTreeMap<Vec<bool>, u16> = BTreeMap::new();
    for month in 0..12 {
        let signature: Vec<bool> = figures.iter().map(|(m, _)| m & (1 << month) != 0).collect();
        *atoms.entry(signature).or_default() |= 1 << month;
    }
    let atoms: Vec<u16> = atoms.into_values().collect();
    (1u32..(1 << atoms.len()))
        .map(|pick| {
            atoms
                .iter()
                .enumerate()
                .filter(|(i, _)| pick & (1 << i) != 0)
                .fold(0, |t, (_, a)| t | a)
        })
        .collect()
}

/// Everything an analyst holding the feed can subtract, with no knowledge of the audit: every
/// two figures of one period and key; every set of months whose count the figures of one record
/// state determine; and the change of such a set between two states. The first count in
/// (0, k) found, if any.
fn attack(k: u32, feed: &Feed) -> Option<String> {
    let k = f64::from(k);
    let small = |x: f64| x.abs() > 0.5 && x.abs() < k - 0.5;
    let keys: BTreeSet<&Vec<String>> = feed.entries.iter().flat_map(|e| e.2.iter().map(|c| &c.key)).collect();
    let states: BTreeSet<usize> = feed.entries.iter().map(|e| e.3).collect();
    for key in keys {
        for a in &feed.entries {
            for b in &feed.entries {
                if a.0 < b.0 && a.1 == b.1 {
                    let (fa, fb) = (figures(&[a], key), figures(&[b], key));
                    if let (Some(x), Some(y)) = (fa.first(), fb.first()) {
                        if small(y.1 - x.1) {
                            return Some(format!("{key:?} {}: seq {} vs {}: {}", a.1, a.0, b.0, y.1 - x.1));
                        }
                    }
                }
            }
        }
        let snapshot = |s: usize| -> Vec<(u16, f64)> {
            let entries: Vec<_> = feed.entries.iter().filter(|e| e.3 == s).collect();
            figures(&entries, key)
        };
        for &s in &states {
            let fs = snapshot(s);
            let span = Span::of(&fs);
            for t in candidate_sets(&fs) {
                if let Some(v) = span.derive(t) {
                    if v > 0.5 && v < k - 0.5 {
                        return Some(format!("{key:?} state {s}: months {t:012b} = {v}"));
                    }
                }
            }
            for &u in states.range(s + 1..) {
                let fu = snapshot(u);
                let both: Vec<(u16, f64)> = fs.iter().chain(&fu).copied().collect();
                let span_u = Span::of(&fu);
                for t in candidate_sets(&both) {
                    if let (Some(x), Some(y)) = (span.derive(t), span_u.derive(t)) {
                        if small(y - x) {
                            return Some(format!("{key:?} states {s}->{u}: months {t:012b}: {x} -> {y}"));
                        }
                    }
                }
            }
        }
    }
    None
}

#[test]
fn the_attacker_finds_what_an_unaudited_feed_gives_away() {
    // The attacker is only worth its passes if it catches the attacks without the audit.
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("SYR,F"), [5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let mut feed = Feed::default();
    for (seq, p) in [Period::Month(2025, 1), Period::Month(2025, 2), Period::Quarter(2025, 1)]
        .into_iter()
        .enumerate()
    {
        feed.entries.push((seq as u64 + 1, p, publishable(k, &counts, p), 0));
    }
    assert!(attack(k, &feed).unwrap().contains("= 2"), "{:?}", attack(k, &feed));
    let mut feed = Feed::default();
    feed.entries
        .push((1, Period::Year(2025), publishable(k, &counts, Period::Year(2025)), 0));
    counts.get_mut(&key("SYR,F")).unwrap()[3] = 1;
    feed.entries
        .push((2, Period::Year(2025), publishable(k, &counts, Period::Year(2025)), 1));
    assert!(attack(k, &feed).is_some());
}

/// One step of a random publication sequence: records added first (key, month, how many),
/// then a period published.
pub(super) fn step() -> impl Strategy<Value = (Option<(usize, usize, u32)>, usize)> {
    (
        prop::option::weighted(0.35, (0..3usize, 0..12usize, 1..4u32)),
        0..17usize,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    /// For random records and random publication sequences (overlapping periods in any order,
    /// revisions after late registrations), the audit never lets the attacker find a count in
    /// (0, k), and it only ever turns published values into `C`.
    #[test]
    fn no_subtraction_of_published_figures_finds_a_small_count(
        k in prop::sample::select(vec![3u32, 5]),
        initial in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![0u32, 0, 1, 2, 3, 4, 5, 6, 9]), 12), 3),
        steps in prop::collection::vec(step(), 1..9),
    ) {
        let names = ["a", "b", "c"];
        let mut counts: BTreeMap<Vec<String>, [u32; 12]> = names
            .iter()
            .zip(&initial)
            .map(|(n, months)| (key(n), months.clone().try_into().unwrap()))
            .collect();
        let all = periods(2025);
        let mut feed = Feed::default();
        let mut state = 0;
        for (added, p) in steps {
            if let Some((who, month, n)) = added {
                counts.get_mut(&key(names[who])).unwrap()[month] += n;
                state += 1;
            }
            let period = all[p];
            let proposed = publishable(k, &counts, period);
            if let Ok(audited) = feed.publish(k, period, proposed.clone(), state) {
                prop_assert_eq!(audited.cells.len(), proposed.len());
                for (a, b) in audited.cells.iter().zip(&proposed) {
                    prop_assert_eq!(&a.key, &b.key);
                    prop_assert!(a.value == b.value || a.value == CellValue::Confidential);
                    prop_assert_eq!(a.value != b.value, audited.suppressed.contains(&a.key));
                }
            }
        }
        prop_assert_eq!(attack(k, &feed), None);
    }
}

/// Found by the proptest: the Year and its Q2 published, then both revised after late
/// registrations (each by k or more), with Q1 published in between: Year − Q2 is derivable
/// before and after, and moved by 1 person. The revision of Q2 must not go out exact.
#[test]
fn a_difference_derivable_at_two_times_may_not_move_by_less_than_k() {
    let k = 3;
    let mut counts = BTreeMap::new();
    counts.insert(key("a"), [0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0]);
    let q2 = Period::Quarter(2025, 2);
    let year = Period::Year(2025);
    let mut feed = Feed::default();
    feed.publish(k, q2, publishable(k, &counts, q2), 0).unwrap();
    feed.publish(k, year, publishable(k, &counts, year), 0).unwrap();
    counts.get_mut(&key("a")).unwrap()[3] += 3;
    let q1 = Period::Quarter(2025, 1);
    feed.publish(k, q1, publishable(k, &counts, q1), 1).unwrap();
    counts.get_mut(&key("a")).unwrap()[0] += 1;
    feed.publish(k, year, publishable(k, &counts, year), 2).unwrap();
    let revised = feed.publish(k, q2, publishable(k, &counts, q2), 2);
    match revised {
        Ok(audited) => assert_eq!(
            audited.suppressed,
            vec![key("a")],
            "Q2 = 6 would show Year − Q2 going 3 → 4"
        ),
        Err(refusal) => assert!(refusal.reason.contains("change of 1"), "{refusal:?}"),
    }
    assert_eq!(attack(k, &feed), None);
}

// ------------------------------------------------------------------ the linear-programming attacker

/// The smallest and largest count of the months in `target` that a linear program finds given
/// `figures` (every month at least 0, a `C` figure at least 1, an exact one equal): the
/// relaxation an analyst would solve, with a solver that knows nothing of the audit. `None` when
/// the figures have no common solution; an unbounded maximum is `f64::INFINITY`.
fn lp_range(figures: &[(u16, Fact)], target: u16) -> Option<(f64, f64)> {
    use microlp::{ComparisonOp, Error, OptimizationDirection, Problem};
    let mut out = [0.0; 2];
    for (i, direction) in [OptimizationDirection::Minimize, OptimizationDirection::Maximize]
        .into_iter()
        .enumerate()
    {
        let mut problem = Problem::new(direction);
        let months: Vec<_> = (0..12)
            .map(|m| problem.add_var(if target & 1 << m != 0 { 1.0 } else { 0.0 }, (0.0, f64::INFINITY)))
            .collect();
        for (mask, fact) in figures {
            let terms: Vec<_> = (0..12)
                .filter(|m| mask & 1 << m != 0)
                .map(|m| (months[m], 1.0))
                .collect();
            match fact {
                Fact::Exact(v) => problem.add_constraint(terms.as_slice(), ComparisonOp::Eq, *v as f64),
                Fact::Confidential => problem.add_constraint(terms.as_slice(), ComparisonOp::Ge, 1.0),
            }
        }
        out[i] = match problem.solve() {
            Ok(solution) => solution.objective(),
            Err(Error::Unbounded) => f64::INFINITY,
            Err(Error::Infeasible) => return None,
            Err(e) => panic!("the solver failed: {e:?}"),
        };
    }
    Some((out[0], out[1]))
}

/// Every confidential figure whose true count is in (0, k) and that a linear program over what
/// the feed published narrows to fewer than k possible counts: over the figures of each record
/// state (consistent by construction), and over the latest figure of every period (when they
/// have a common solution). `truth[s]` is the monthly counts of state `s`. The first found.
fn lp_attack(k: u32, feed: &Feed, truth: &[BTreeMap<Vec<String>, [u32; 12]>]) -> Option<String> {
    let keys: BTreeSet<&Vec<String>> = feed.entries.iter().flat_map(|e| e.2.iter().map(|c| &c.key)).collect();
    let states: BTreeSet<usize> = feed.entries.iter().map(|e| e.3).collect();
    let mut views: Vec<(String, Vec<&Entry>)> = states
        .iter()
        .map(|s| {
            (
                format!("state {s}"),
                feed.entries.iter().filter(|e| e.3 == *s).collect(),
            )
        })
        .collect();
    views.push(("latest".to_string(), feed.entries.iter().collect()));
    for key in keys {
        for (name, entries) in &views {
            // The latest of each period in this view, with the state it was true in.
            let mut latest: BTreeMap<u16, (Fact, usize)> = BTreeMap::new();
            for (_, period, cells, state) in entries {
                let figures: Figures<'_> = cells.iter().map(|c| (c.key.as_slice(), c.value)).collect();
                latest.insert(mask(*period), (fact(&figures, key), *state));
            }
            let figures: Vec<(u16, Fact)> = latest.iter().map(|(m, (f, _))| (*m, *f)).collect();
            for (&m, &(f, state)) in &latest {
                if f != Fact::Confidential {
                    continue;
                }
                let Some((lo, hi)) = lp_range(&figures, m) else {
                    continue;
                };
                if hi.floor() - lo.ceil() + 1.0 >= f64::from(k) {
                    continue;
                }
                // A narrow range is a disclosure when it holds a small count these months had:
                // in the figure's own state, or (over the latest figures, which mix times) in
                // any later one.
                let count = |t: &BTreeMap<Vec<String>, [u32; 12]>| -> u32 {
                    (0..12).filter(|i| m & 1 << i != 0).map(|i| t[key][i]).sum()
                };
                let small = if name == "latest" {
                    truth[state..]
                        .iter()
                        .map(count)
                        .find(|&n| n > 0 && n < k && (lo..=hi).contains(&f64::from(n)))
                } else {
                    Some(count(&truth[state])).filter(|&n| n > 0 && n < k)
                };
                if let Some(n) = small {
                    return Some(format!(
                        "{key:?} {name}: months {m:012b} (true {n}) narrowed to {lo}..={hi}"
                    ));
                }
            }
        }
    }
    None
}

/// The issue's example: DEU's immigration from FRA for one breakdown, six months of one person
/// each (spread so every quarter holds some), published month by month, then the quarters, then
/// the year (6, over k = 5). Each quarter is at least the number of its `C` months, and those
/// lower bounds add up to the year: every month would be exactly 1. The year goes out as `C`,
/// and no linear program finds a small count.
#[test]
fn a_year_that_pins_its_confidential_months_through_the_quarters_is_suppressed() {
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("IN,FRA,FRA,M,Y20-24"), [1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0]);
    let mut feed = Feed::default();
    for p in (1..=12)
        .map(|m| Period::Month(2025, m))
        .chain((1..=4).map(|q| Period::Quarter(2025, q)))
    {
        feed.publish(k, p, publishable(k, &counts, p), 0).unwrap();
    }
    let year = Period::Year(2025);
    let proposed = publishable(k, &counts, year);
    assert_eq!(proposed[0].value, CellValue::Value(6));
    let audited = feed.publish(k, year, proposed, 0).unwrap();
    assert_eq!(audited.suppressed, vec![key("IN,FRA,FRA,M,Y20-24")]);
    assert_eq!(audited.cells[0].value, CellValue::Confidential);
    assert_eq!(lp_attack(k, &feed, &[counts]), None);
}

#[test]
fn the_lp_attacker_finds_what_subtraction_misses_without_the_audit() {
    // The same figures with the year published as 6: every month pinned at 1.
    let k = 5;
    let mut counts = BTreeMap::new();
    counts.insert(key("a"), [1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0]);
    let mut feed = Feed::default();
    for (i, p) in periods(2025).into_iter().rev().enumerate() {
        feed.entries.push((i as u64 + 1, p, publishable(k, &counts, p), 0));
    }
    let found = lp_attack(k, &feed, &[counts]).expect("the LP pins the months");
    assert!(found.contains("narrowed to 1..=1"), "{found}");
    // The subtraction attacker does not see it: this is what the interval check adds.
    assert_eq!(attack(k, &feed), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// For random records and random publication sequences (overlapping periods in any order,
    /// revisions after late registrations), no linear program over what the audited feed
    /// published narrows a count in (0, k) to fewer than k possible values.
    #[test]
    fn no_linear_program_over_published_figures_narrows_a_small_count(
        k in prop::sample::select(vec![3u32, 5]),
        initial in prop::collection::vec(prop::collection::vec(prop::sample::select(vec![0u32, 0, 1, 1, 2, 3, 4, 5, 6, 9]), 12), 3),
        steps in prop::collection::vec(step(), 1..18),
    ) {
        let names = ["a", "b", "c"];
        let mut counts: BTreeMap<Vec<String>, [u32; 12]> = names
            .iter()
            .zip(&initial)
            .map(|(n, months)| (key(n), months.clone().try_into().unwrap()))
            .collect();
        let all = periods(2025);
        let mut feed = Feed::default();
        let mut truth = vec![counts.clone()];
        for (added, p) in steps {
            if let Some((who, month, n)) = added {
                counts.get_mut(&key(names[who])).unwrap()[month] += n;
                truth.push(counts.clone());
            }
            let period = all[p];
            let _ = feed.publish(k, period, publishable(k, &counts, period), truth.len() - 1);
        }
        prop_assert_eq!(lp_attack(k, &feed, &truth), None);
    }
}
