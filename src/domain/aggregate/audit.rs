//! Disclosure across publications (SPEC §10): under `threshold`, a new publication is checked
//! against everything this node already published of the same cube and year, so that no count
//! in (0, k) follows exactly by subtraction, and no linear reasoning over the latest figures
//! (a linear program with every `C` figure at least 1: `bounds`) narrows one to fewer than k
//! possible values. Pure: the node hands in its own feed's history.
//!
//! What an analyst can subtract. Zero cells are not published, so an absent cell is a published
//! 0. For one cell key, every exact figure (a value or an absent 0) of a period is the sum of that
//! key's months over the period, and the periods of one year (the year, its quarters, its
//! months) form a laminar family: any two are nested or disjoint. The span of a laminar family
//! is spanned by the disjoint "blocks" `D(S)` = `S` minus its largest published sub-periods, so
//! the sums an analyst can derive exactly are the unions of blocks, and the smallest positive
//! one is the smallest positive block: checking every block's value `v(S) − Σ v(children)`
//! checks every subtraction. Different keys share no months, so sums across keys (a pair's
//! total) derive nothing smaller than their parts. Revisions are checked against every earlier
//! figure of the same period and key: a change of 1 to k−1 people is a disclosure; so is such a
//! change in any sum derivable both after an earlier entry and now (`change_since`: Year − Q2
//! published early and again after both were revised). Two further
//! things are refused because they pin a confidential cell: a block whose confidential parts
//! can take only one value given the block's total (a year of 12 whose 12 months are all `C`
//! are 1 each).
//!
//! The remedy is secondary suppression of the new figure (flag `C`): one cell per key at most,
//! which is as few as can be, since what was published stays published. Where that does not
//! restore safety, the publication is refused, naming the cell and the earlier entries.

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::model::{Cell, CellValue, Period};

mod bounds;
mod coupled;

pub use coupled::Months;

/// One earlier entry of this node's feed for the same cube and year. Entries with the same
/// payload may share one slice of cells; the audit then reads it once.
#[derive(Debug, Clone, Copy)]
pub struct Earlier<'a> {
    pub seq: u64,
    pub period: Period,
    pub cells: &'a [Cell],
}

/// A publication that passed the audit: its cells (with secondary suppression applied) and the
/// keys that were suppressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    pub cells: Vec<Cell>,
    pub suppressed: Vec<Vec<String>>,
}

/// A publication the audit cannot make safe by suppressing its own cells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cell {key} of {period}: {reason} (with entries seq {entries})", key = .key.join(","), entries = seqs(.entries))]
pub struct Refusal {
    pub key: Vec<String>,
    pub period: Period,
    pub reason: String,
    pub entries: Vec<u64>,
}

fn seqs(entries: &[u64]) -> String {
    entries.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// What one publication says of one key for its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fact {
    /// A published value, or 0 for an absent cell.
    Exact(i64),
    /// Flag `C`: 0 < count < k.
    Confidential,
}

/// The months of a period, as bits 0..12.
fn mask(period: Period) -> u16 {
    period.months().fold(0, |m, month| m | 1 << (month - 1))
}

/// One publication's cells by key.
type Figures<'a> = BTreeMap<&'a [String], CellValue>;

fn fact(cells: &Figures<'_>, key: &[String]) -> Fact {
    match cells.get(key) {
        None => Fact::Exact(0),
        Some(CellValue::Value(v)) => Fact::Exact(*v as i64),
        Some(CellValue::Confidential) => Fact::Confidential,
    }
}

/// Checks `cells`, to be published for `period`, against `earlier` (the node's entries of the
/// same cube and year, in feed order) under threshold `k`: each key on its own over the periods
/// and revisions, then each table with its total (`coupled`), given `truth`, the records'
/// monthly counts of the year.
pub fn audit(
    k: u32,
    earlier: &[Earlier<'_>],
    period: Period,
    cells: Vec<Cell>,
    truth: &Months,
) -> Result<Audited, Refusal> {
    let k = i64::from(k);
    let year = period.year();
    let earlier: Vec<&Earlier<'_>> = earlier.iter().filter(|e| e.period.year() == year).collect();
    // Each distinct list of cells is read into figures once: entries that share their cells
    // (republications, see `Earlier`) share the figures too.
    let mut maps: Vec<Figures<'_>> = Vec::new();
    let mut index: BTreeMap<(*const Cell, usize), usize> = BTreeMap::new();
    let which: Vec<usize> = earlier
        .iter()
        .map(|e| {
            *index.entry((e.cells.as_ptr(), e.cells.len())).or_insert_with(|| {
                maps.push(e.cells.iter().map(|c| (c.key.as_slice(), c.value)).collect());
                maps.len() - 1
            })
        })
        .collect();
    let earlier: Vec<(u64, u16, &Figures<'_>)> = earlier
        .iter()
        .zip(which)
        .map(|(e, i)| (e.seq, mask(e.period), &maps[i]))
        .collect();
    let new: Figures<'_> = cells.iter().map(|c| (c.key.as_slice(), c.value)).collect();
    let keys: BTreeSet<&[String]> = earlier
        .iter()
        .flat_map(|(_, _, cells)| cells.keys().copied())
        .chain(new.keys().copied())
        .collect();
    let this = mask(period);
    let mut suppressed = Vec::new();
    // The figures this period shows now, from its latest earlier entry.
    let previous = earlier.iter().rev().find(|(_, m, _)| *m == this).map(|(_, _, f)| f);
    for key in keys {
        if previous.is_some_and(|previous| fact(previous, key) == fact(&new, key)) {
            // The same figure again: the analyst's facts about this key stay what they were.
            continue;
        }
        // The latest figure of every period, as an analyst holding the feed sees it now, and as
        // it saw it after each earlier entry.
        let mut latest: BTreeMap<u16, (Fact, u64)> = BTreeMap::new();
        let mut revisions = Vec::new();
        let mut snapshots = Vec::new();
        let mut history = Vec::new();
        for (seq, m, cells) in &earlier {
            let f = fact(cells, key);
            latest.insert(*m, (f, *seq));
            history.push((*m, f, *seq));
            if *m == this {
                revisions.push((f, *seq));
            }
            snapshots.push((blocks_of(&latest), *seq));
        }
        let proposed = fact(&new, key);
        let changed_by = |v: i64| {
            revisions.iter().find_map(|(f, seq)| match f {
                Fact::Exact(u) if v != *u && (v - u).abs() < k => Some((v - u, *seq)),
                _ => None,
            })
        };
        let mut problem = match proposed {
            Fact::Exact(v) => changed_by(v).map(|(d, seq)| {
                (
                    format!("would differ by {} from the figure in entry seq {seq}", d.abs()),
                    vec![seq],
                )
            }),
            Fact::Confidential => None,
        };
        if problem.is_none() {
            latest.insert(this, (proposed, 0));
            problem = exposure(k, &latest)
                .or_else(|| narrowing(k, &history, &latest))
                .or_else(|| change_since(k, &snapshots, &latest));
        }
        let Some((reason, entries)) = problem else {
            continue;
        };
        if let Fact::Exact(v) = proposed {
            if v > 0 {
                // Suppressed, the new figure adds only a bound; the rest was safe before.
                latest.insert(this, (Fact::Confidential, 0));
                if exposure(k, &latest).is_none()
                    && narrowing(k, &history, &latest).is_none()
                    && change_since(k, &snapshots, &latest).is_none()
                {
                    suppressed.push(key.to_vec());
                    continue;
                }
            }
        }
        return Err(Refusal {
            key: key.to_vec(),
            period,
            reason,
            entries: entries.into_iter().filter(|s| *s != 0).collect(),
        });
    }
    let cells = suppress(cells, &suppressed);
    // Each table with its total, over every period and revision.
    let seqs: BTreeSet<u64> = earlier.iter().map(|(seq, _, _)| *seq).collect();
    let figures: Figures<'_> = cells.iter().map(|c| (c.key.as_slice(), c.value)).collect();
    let more = coupled::protect(k, &earlier, this, &figures, truth).map_err(|n| Refusal {
        key: n.key,
        period,
        reason: format!(
            "with its table's totals, the confidential figure of {} can only be {}..={} ({} value(s), fewer than k = {k}) whatever this publication suppresses",
            months_named(n.months),
            n.lo,
            n.hi,
            n.hi - n.lo + 1
        ),
        entries: seqs.into_iter().collect(),
    })?;
    drop(figures);
    suppressed.extend(more);
    suppressed.sort();
    suppressed.dedup();
    let cells = suppress(cells, &suppressed);
    Ok(Audited { cells, suppressed })
}

/// `cells` with the keys in `suppressed` (sorted) flagged `C`.
fn suppress(cells: Vec<Cell>, suppressed: &[Vec<String>]) -> Vec<Cell> {
    cells
        .into_iter()
        .map(|c| {
            if suppressed.binary_search(&c.key).is_ok() {
                Cell {
                    key: c.key,
                    value: CellValue::Confidential,
                }
            } else {
                c
            }
        })
        .collect()
}

/// A confidential figure of one key that any linear reasoning narrows to fewer than `k`
/// possible counts while it could be one in (0, k) (`bounds`): why, and the entries involved.
/// The figures reasoned over are the latest of every period (`latest`, which holds the figure
/// under audit). When those contradict each other (some were published before records changed),
/// a linear program over them has no solution, and an analyst would drop the stale ones: then
/// every run of recent entries (`history`, the key's figures in feed order, from each entry to
/// the newest) with the figure under audit is checked, which holds every set of figures
/// published between two changes of the records.
fn narrowing(k: i64, history: &[(u16, Fact, u64)], latest: &BTreeMap<u16, (Fact, u64)>) -> Option<(String, Vec<u64>)> {
    let check = |latest: &BTreeMap<u16, (Fact, u64)>| {
        let figures: BTreeMap<u16, Fact> = latest.iter().map(|(m, (f, _))| (*m, *f)).collect();
        let ranges = bounds::ranges(&figures);
        let found = ranges.as_ref().and_then(|_| bounds::narrowed(k, &figures));
        (ranges.is_some(), found)
    };
    let explain = |latest: &BTreeMap<u16, (Fact, u64)>, (m, range): (u16, bounds::Range)| {
        let hi = range.hi.unwrap_or(range.lo);
        (
            format!(
                "with the other published figures, the confidential figure of {} can only be {}..={} ({} value(s), fewer than k = {k})",
                months_named(m),
                range.lo,
                hi,
                hi - range.lo + 1
            ),
            latest.values().map(|(_, seq)| *seq).collect::<BTreeSet<u64>>().into_iter().collect(),
        )
    };
    match check(latest) {
        (true, found) => found.map(|f| explain(latest, f)),
        (false, _) => {
            let audited = latest.iter().find(|(_, (_, seq))| *seq == 0).map(|(m, v)| (*m, *v));
            (0..history.len()).find_map(|start| {
                let mut recent: BTreeMap<u16, (Fact, u64)> =
                    history[start..].iter().map(|(m, f, seq)| (*m, (*f, *seq))).collect();
                recent.extend(audited);
                check(&recent).1.map(|f| explain(&recent, f))
            })
        }
    }
}

/// A period's months as a reader names them: the year, a quarter, a month.
fn months_named(m: u16) -> String {
    match m {
        0x0fff => "the year".to_string(),
        _ if m.count_ones() == 3 && m.trailing_zeros() % 3 == 0 && m >> m.trailing_zeros() == 0b111 => {
            format!("Q{}", m.trailing_zeros() / 3 + 1)
        }
        _ if m.count_ones() == 1 => format!("month {}", m.trailing_zeros() + 1),
        _ => format!("months {m:012b}"),
    }
}

/// The first exact disclosure in one key's figures (period mask → latest fact and its seq,
/// 0 for the publication under audit): why, and the entries involved.
///
/// Each published period `S` gives a block `D(S)` with value `v(S) − Σ v(children)`. When the
/// figures were published at different times (a period revised, another not), a block can be
/// negative, and an empty block can have a nonzero value: a dependency among the figures whose
/// value is a change between two times. Then unions of blocks, plus or minus dependencies, are
/// what an analyst can form, and every such sum is checked.
fn exposure(k: i64, latest: &BTreeMap<u16, (Fact, u64)>) -> Option<(String, Vec<u64>)> {
    let exact: Vec<(u16, i64, u64)> = latest
        .iter()
        .filter_map(|(m, (f, seq))| match f {
            Fact::Exact(v) => Some((*m, *v, *seq)),
            Fact::Confidential => None,
        })
        .collect();
    let confidential: Vec<u16> = latest
        .iter()
        .filter(|(_, (f, _))| *f == Fact::Confidential)
        .map(|(m, _)| *m)
        .collect();
    let inside = |inner: u16, outer: u16| inner != outer && inner & !outer == 0;
    let mut blocks = Vec::new();
    let mut dependencies = Vec::new();
    let mut all_entries = Vec::new();
    for &(s, v, seq) in &exact {
        // The largest published periods strictly inside `s`.
        let children: Vec<&(u16, i64, u64)> = exact
            .iter()
            .filter(|(c, _, _)| inside(*c, s))
            .filter(|(c, _, _)| !exact.iter().any(|(u, _, _)| inside(*c, *u) && inside(*u, s)))
            .collect();
        let block = children.iter().fold(s, |b, (c, _, _)| b & !c);
        let d = v - children.iter().map(|(_, cv, _)| cv).sum::<i64>();
        let mut entries: Vec<u64> = std::iter::once(seq).chain(children.iter().map(|c| c.2)).collect();
        entries.sort_unstable();
        entries.dedup();
        all_entries.extend_from_slice(&entries);
        if d != 0 && d.abs() < k {
            let what = if block == 0 {
                format!("the figures would show a change of {} people", d.abs())
            } else {
                format!("{d} would follow by subtraction")
            };
            return Some((what, entries));
        }
        if block != 0 && d > 0 {
            if let Some(pinned) = pinned(k, d, block, &confidential) {
                return Some((
                    format!("a confidential cell would be exactly {pinned} given the others"),
                    entries,
                ));
            }
        }
        match (block, d) {
            (_, 0) => {}
            (0, d) => dependencies.push(d),
            (_, d) => blocks.push(d),
        }
    }
    if dependencies.is_empty() && blocks.iter().all(|d| *d > 0) {
        // Consistent figures: the smallest positive union is the smallest block, checked above.
        return None;
    }
    all_entries.sort_unstable();
    all_entries.dedup();
    let found = small_combination(k, &blocks, &dependencies)?;
    let what = if found == 0 {
        "too many overlapping figures to audit".to_string()
    } else {
        format!("{found} would follow from a combination of the figures")
    };
    Some((what, all_entries))
}

/// The blocks of one snapshot of a key's figures: `(months, value)` for each published exact
/// period `S`, its months not in a published sub-period, and `v(S) − Σ v(children)`. Every
/// union of blocks is a sum the analyst could derive from that snapshot.
fn blocks_of(latest: &BTreeMap<u16, (Fact, u64)>) -> Vec<(u16, i64)> {
    let exact: Vec<(u16, i64)> = latest
        .iter()
        .filter_map(|(m, (f, _))| match f {
            Fact::Exact(v) => Some((*m, *v)),
            Fact::Confidential => None,
        })
        .collect();
    let inside = |inner: u16, outer: u16| inner != outer && inner & !outer == 0;
    exact
        .iter()
        .filter_map(|&(s, v)| {
            let children: Vec<&(u16, i64)> = exact
                .iter()
                .filter(|(c, _)| inside(*c, s))
                .filter(|(c, _)| !exact.iter().any(|(u, _)| inside(*c, *u) && inside(*u, s)))
                .collect();
            let block = children.iter().fold(s, |b, (c, _)| b & !c);
            let d = v - children.iter().map(|(_, cv)| cv).sum::<i64>();
            (block != 0).then_some((block, d))
        })
        .collect()
}

/// A change between an earlier snapshot and now that discloses: the months derivable in both
/// are the unions of the pieces where the two snapshots' blocks overlap and cover the same
/// months (a Year and its Q2 published early, the Year, Q1 and Q2 later: Year − Q2 is derivable
/// at both times, and its change may be 1 person even when no period changed by less than k).
/// Any subset of those pieces' changes with 0 < |sum| < k is a disclosure.
fn change_since(
    k: i64,
    snapshots: &[(Vec<(u16, i64)>, u64)],
    latest: &BTreeMap<u16, (Fact, u64)>,
) -> Option<(String, Vec<u64>)> {
    let now = blocks_of(latest);
    for (then, seq) in snapshots {
        // Pieces: groups of blocks (of either snapshot) joined by overlapping months.
        let mut pieces: Vec<(u16, u16, i64)> = Vec::new(); // (months then, months now, change)
        let mut used_now = vec![false; now.len()];
        let mut used_then = vec![false; then.len()];
        for start in 0..then.len() {
            if used_then[start] {
                continue;
            }
            used_then[start] = true;
            let (mut m_then, mut m_now, mut change) = (then[start].0, 0u16, -then[start].1);
            loop {
                let mut grew = false;
                for (i, (m, v)) in now.iter().enumerate() {
                    if !used_now[i] && m & m_then != 0 {
                        used_now[i] = true;
                        m_now |= m;
                        change += v;
                        grew = true;
                    }
                }
                for (i, (m, v)) in then.iter().enumerate() {
                    if !used_then[i] && m & m_now != 0 {
                        used_then[i] = true;
                        m_then |= m;
                        change -= v;
                        grew = true;
                    }
                }
                if !grew {
                    break;
                }
            }
            if m_then == m_now {
                pieces.push((m_then, m_now, change));
            }
        }
        let changes: Vec<i64> = pieces.iter().map(|p| p.2).filter(|c| *c != 0).collect();
        if let Some(found) = small_combination(k, &changes, &[]) {
            let what = if found == 0 {
                "too many overlapping figures to audit".to_string()
            } else {
                format!(
                    "the figures since entry seq {seq} would show a change of {} people",
                    found.abs()
                )
            };
            return Some((what, vec![*seq]));
        }
    }
    None
}

/// Sums an analyst can form: any subset of `blocks`, plus or minus any of `dependencies`. The
/// first with 0 < |sum| < k, if any. Past a bound on the sums tracked, the answer is yes (0):
/// a figure that cannot be audited is not published.
fn small_combination(k: i64, blocks: &[i64], dependencies: &[i64]) -> Option<i64> {
    const MAX_SUMS: usize = 1 << 16;
    let mut sums: BTreeSet<i64> = BTreeSet::from([0]);
    let steps = blocks
        .iter()
        .map(|b| vec![*b])
        .chain(dependencies.iter().map(|d| vec![*d, -*d]));
    for step in steps {
        let next: Vec<i64> = sums.iter().flat_map(|s| step.iter().map(move |x| s + x)).collect();
        sums.extend(next);
        if let Some(small) = sums.iter().find(|s| **s != 0 && s.abs() < k) {
            return Some(*small);
        }
        if sums.len() > MAX_SUMS {
            return Some(0);
        }
    }
    None
}

/// Whether the confidential periods inside `block` (each 1..k−1) can take only one value given
/// that the block's months sum to `total`: the value, if so.
fn pinned(k: i64, total: i64, block: u16, confidential: &[u16]) -> Option<i64> {
    let parts: Vec<u16> = confidential
        .iter()
        .copied()
        .filter(|c| c & !block == 0)
        .filter(|c| !confidential.iter().any(|u| u != c && c & !u == 0 && u & !block == 0))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let covered = parts.iter().fold(0, |m, p| m | p);
    let open = block & !covered != 0;
    let n = parts.len() as i64;
    let low = if open { 1 } else { (total - (n - 1) * (k - 1)).max(1) };
    let high = (total - (n - 1)).min(k - 1);
    (low == high).then_some(low)
}

#[cfg(test)]
mod tests;
