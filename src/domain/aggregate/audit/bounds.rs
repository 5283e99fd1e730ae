//! What any linear reasoning learns about one key's confidential figures (SPEC §10): the
//! smallest and largest count each can have given every other figure of the year, as a linear
//! program over the twelve months would find, with every count at least 0 and every `C` figure
//! at least 1.
//!
//! The periods of one year form a laminar family (any two nested or disjoint), so the figures
//! form a tree: the year (or the whole year unpublished), its published quarters, their
//! published months, and months no figure covers alone. On a tree of sums with interval bounds
//! the linear program's answers are exact by two passes: bottom up, the range a period's count
//! can take given what is published inside it (a sum of intervals is an interval); top down,
//! that range cut by what its parent's range leaves once its siblings take theirs. A laminar
//! family's incidence matrix is totally unimodular, so these integer bounds are the linear
//! program's, and every value between them is reachable: the count of possible values is
//! `hi - lo + 1`.

use std::collections::BTreeMap;

use super::Fact;

/// All twelve months.
const YEAR: u16 = 0x0fff;

/// A range of counts; `hi` is `None` where nothing bounds it above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub lo: i64,
    pub hi: Option<i64>,
}

impl Range {
    fn cut(self, lo: i64, hi: Option<i64>) -> Range {
        Range {
            lo: self.lo.max(lo),
            hi: match (self.hi, hi) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        }
    }

    fn empty(self) -> bool {
        self.hi.is_some_and(|hi| hi < self.lo)
    }

    /// How many counts the range holds (`None`: unbounded).
    pub fn values(self) -> Option<i64> {
        self.hi.map(|hi| hi - self.lo + 1)
    }
}

/// The range of every published period of one key (month masks), given all of them; `None`
/// when the figures contradict each other (they were published at different times, between
/// which records changed): a linear program over them has no solution.
pub(super) fn ranges(figures: &BTreeMap<u16, Fact>) -> Option<BTreeMap<u16, Range>> {
    let mut nodes: Vec<u16> = figures.keys().copied().collect();
    if !figures.contains_key(&YEAR) {
        nodes.push(YEAR);
    }
    // Smallest first: every period's children come before it.
    nodes.sort_by_key(|m| (m.count_ones(), *m));
    let parent = |m: u16| {
        nodes
            .iter()
            .copied()
            .filter(|&p| p != m && m & !p == 0)
            .min_by_key(|p| p.count_ones())
    };
    let parents: BTreeMap<u16, u16> = nodes.iter().filter_map(|&m| parent(m).map(|p| (m, p))).collect();
    let children = |p: u16| parents.iter().filter(move |(_, q)| **q == p).map(|(c, _)| *c);
    // Months of a period that no published child covers: each any count from 0 up.
    let free = |p: u16| p & !children(p).fold(0, |u, c| u | c) != 0;

    let mut inner: BTreeMap<u16, Range> = BTreeMap::new();
    for &m in &nodes {
        let mut lo = 0;
        let mut hi = (!free(m)).then_some(0);
        for c in children(m) {
            let r = inner[&c];
            lo += r.lo;
            hi = hi.zip(r.hi).map(|(a, b)| a + b);
        }
        let own = match figures.get(&m) {
            Some(Fact::Exact(v)) => Range { lo: *v, hi: Some(*v) },
            Some(Fact::Confidential) => Range { lo: 1, hi: None },
            None => Range { lo: 0, hi: None },
        };
        let r = Range { lo, hi }.cut(own.lo, own.hi);
        if r.empty() {
            return None;
        }
        inner.insert(m, r);
    }

    let mut out: BTreeMap<u16, Range> = BTreeMap::new();
    out.insert(YEAR, inner[&YEAR]);
    for &p in nodes.iter().rev() {
        let whole = out[&p];
        let kids: Vec<u16> = children(p).collect();
        for &c in &kids {
            let (mut others_lo, mut others_hi) = (0, (!free(p)).then_some(0));
            for &s in kids.iter().filter(|&&s| s != c) {
                others_lo += inner[&s].lo;
                others_hi = others_hi.zip(inner[&s].hi).map(|(a, b)| a + b);
            }
            let lo = match others_hi {
                Some(h) => whole.lo - h,
                None => i64::MIN,
            };
            let r = inner[&c].cut(lo, whole.hi.map(|h| h - others_lo));
            if r.empty() {
                return None;
            }
            out.insert(c, r);
        }
    }
    out.retain(|m, _| figures.contains_key(m));
    Some(out)
}

/// The first confidential figure that could be a count in (0, k) and that the figures narrow
/// to fewer than `k` possible counts: its mask and range.
pub(super) fn narrowed(k: i64, figures: &BTreeMap<u16, Fact>) -> Option<(u16, Range)> {
    let ranges = ranges(figures)?;
    figures
        .iter()
        .filter(|(_, f)| **f == Fact::Confidential)
        .map(|(m, _)| (*m, ranges[m]))
        .find(|(_, r)| r.lo < k && r.values().is_some_and(|n| n < k))
}
