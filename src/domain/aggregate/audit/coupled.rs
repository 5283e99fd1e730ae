//! What a table's total adds to an analyst's linear reasoning (SPEC §3, §10), and the secondary
//! suppression that keeps it from narrowing a small count.
//!
//! Per key, the periods of a year form a tree of sums (`bounds`). A published total ties the
//! keys of one table together: in every period, the table's cells add up to its total. The
//! figures of one table for one year are then two laminar families over the same unknowns (the
//! count of each key in each block of months): per key, its periods; per period, all keys.
//! Their constraint matrix is a network matrix, so the analyst's linear program is a flow
//! problem: each key's periods are a tree the flow runs down from a source, each block of each
//! key hands its count to the same block of the total, and the total's periods are a tree the
//! flow runs up to a sink, which returns it to the source. The blocks are the leaves: the
//! published periods without published parts, and under each period with parts the months
//! none of them covers. A figure's bounds are its arc's (exact: `[v, v]`; `C`: `[1, ∞)`; a
//! period not published: `[0, ∞)`). How far a figure can move from a feasible flow (the
//! records' counts when the figures agree with them) is how much flow can go around a cycle
//! through its arc: augmenting paths in the residual graph (searched depth first, wide ones
//! first, at most k − 1 units each way), integral because the matrix is totally unimodular, so
//! the bounds are the linear program's and every count between them is reachable. A
//! confidential figure that could be a count in (0, k) must be able to take at least k values.
//!
//! Periods under no common published period are joined only through unpublished sums, which
//! bound nothing: the program falls apart into independent parts, and only the part under the
//! largest published period holding the new publication is built and checked. When the latest
//! figures contradict each other (some were published before records changed), runs of recent
//! entries are checked instead (see [`protect`]). When a figure is too narrow, the new
//! publication suppresses more of its own figures in that table: the exact cell that alone
//! restores the range, largest first (a large cell absorbs a small one's uncertainty), else the
//! largest ones together, then its total. Suppressing only relaxes constraints, so a figure
//! that passed stays passed; but it can reconcile figures that contradicted each other, so the
//! check runs again until it suppresses nothing more. Where nothing the new publication can
//! suppress is enough, it is refused.
//!
//! A table whose new figures are those its period already shows (the earlier entry's
//! confidential cells confidential again) is republished as it was without a check: it adds
//! nothing to what an analyst holds, and tables share no unknowns, so a revision costs only the
//! tables its records changed.

use std::collections::{BTreeMap, BTreeSet};

use super::{fact, Fact, Figures};
use crate::domain::aggregate::margins::TOTAL;

/// Monthly true counts of one cube and year per key (margins included), as the records give them
/// now.
pub type Months = BTreeMap<Vec<String>, [i64; 12]>;

const YEAR: u16 = 0x0fff;
const UNBOUNDED: i64 = i64::MAX / 4;
/// Exact cells tried one at a time per narrowed figure before several together.
const CANDIDATES: usize = 8;

/// A figure too narrow whatever this publication suppresses: its key, its period's months and
/// the range the analyst finds (capped at what was searched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Narrowed {
    pub key: Vec<String>,
    pub months: u16,
    pub lo: i64,
    pub hi: i64,
}

/// Checks every table of the cube: `earlier` holds this node's entries of the cube and year in
/// feed order (seq, month mask, figures), `new` the figures to publish for `this`, `truth` the
/// records' monthly counts. Returns the keys of the new publication to suppress further.
///
/// The figures reasoned over are the latest of every period. When those contradict each other
/// (some were published before records changed), a linear program over them has no solution
/// and an analyst would drop the stale ones: then every run of recent entries (from each entry
/// to the newest) with the new figures is checked, which holds every set of figures published
/// between two changes of the records.
pub(super) fn protect(
    k: i64,
    earlier: &[(u64, u16, &Figures<'_>)],
    this: u16,
    new: &Figures<'_>,
    truth: &Months,
) -> Result<Vec<Vec<String>>, Narrowed> {
    let all_keys: BTreeSet<&[String]> = truth
        .keys()
        .map(Vec::as_slice)
        .chain(earlier.iter().flat_map(|(_, _, f)| f.keys().copied()))
        .chain(new.keys().copied())
        .collect();
    // A table's total holds `_T` in every breakdown dimension; the dimensions before name it.
    let Some(width) = all_keys.iter().find_map(|key| key.iter().position(|v| v == TOTAL)) else {
        return Ok(Vec::new());
    };
    let mut tables: BTreeMap<&[String], Vec<&[String]>> = BTreeMap::new();
    for key in all_keys {
        if key.len() > width {
            tables.entry(&key[..width]).or_default().push(key);
        }
    }
    let mut suppressed: BTreeSet<Vec<String>> = BTreeSet::new();
    // The figures this period shows now, from its latest earlier entry.
    let previous = earlier.iter().rev().find(|(_, m, _)| *m == this).map(|(_, _, f)| f);
    for keys in tables.values() {
        let Some(total) = keys.iter().copied().find(|key| key[width..].iter().all(|v| v == TOTAL)) else {
            continue;
        };
        let cells: Vec<&[String]> = keys.iter().copied().filter(|key| *key != total).collect();
        // The latest figures of every period from entry `start` on, with the new ones.
        let run = |start: usize| {
            let mut latest: BTreeMap<u16, &Figures<'_>> = BTreeMap::new();
            for (_, m, figures) in &earlier[start..] {
                latest.insert(*m, figures);
            }
            latest.insert(this, new);
            // Only the part under the largest published period holding the new one can have
            // narrowed; the rest joins it through unpublished sums, which bound nothing.
            let root = latest
                .keys()
                .copied()
                .filter(|m| m & this == this)
                .max_by_key(|m| m.count_ones());
            let root = root.unwrap_or(this);
            latest.retain(|m, _| m & !root == 0);
            latest
        };
        if let Some(again) = previous.and_then(|previous| republished(keys, previous, new)) {
            // The table as already published adds nothing to what an analyst holds, as long as
            // the latest figures of every period agree with one another: they held these very
            // figures beside all the others already. When some contradict (published before
            // records changed), the runs of recent entries are what is checked, and a run that
            // starts after the earlier entry gains this table's figures: checked as any.
            let mut with_again = suppressed.clone();
            with_again.extend(again.iter().cloned());
            if Table::new(&run(0), this, &with_again, truth, total, &cells).feasible() {
                suppressed.extend(again);
                continue;
            }
        }
        // Suppressing can reconcile figures that contradicted each other, so the check runs
        // again until it suppresses nothing more.
        loop {
            let before = suppressed.len();
            let mut table = Table::new(&run(0), this, &suppressed, truth, total, &cells);
            if table.feasible() {
                suppressed.extend(table.protect(k)?);
            } else {
                for start in 1..=earlier.len() {
                    let mut table = Table::new(&run(start), this, &suppressed, truth, total, &cells);
                    if table.feasible() {
                        suppressed.extend(table.protect(k)?);
                    }
                }
            }
            if suppressed.len() == before {
                break;
            }
        }
    }
    Ok(suppressed.into_iter().collect())
}

/// Whether the new figures of a table's `keys` show exactly what `previous` (the latest earlier
/// entry of the same period) showed once its confidential cells are confidential again: then
/// the keys to suppress for that, since publishing the same figures again adds nothing to what
/// any reasoning over the feed can find. Tables share no unknowns, so each is judged alone,
/// and a revision costs the tables whose figures changed.
fn republished(keys: &[&[String]], previous: &Figures<'_>, new: &Figures<'_>) -> Option<Vec<Vec<String>>> {
    let mut again = Vec::new();
    for &key in keys {
        match (fact(previous, key), fact(new, key)) {
            (was, now) if was == now => {}
            (Fact::Confidential, Fact::Exact(v)) if v > 0 => again.push(key.to_vec()),
            _ => return None,
        }
    }
    Some(again)
}

/// One arc of the flow network: a figure (or a month of a key handed to the total).
#[derive(Debug, Clone, Copy)]
struct Arc {
    from: usize,
    to: usize,
    lo: i64,
    hi: i64,
    flow: i64,
}

/// One table's figures as a flow network with the true counts as its flow.
struct Table<'k> {
    arcs: Vec<Arc>,
    /// Per node: (arc, forward?) for every arc at it.
    adjacent: Vec<Vec<(usize, bool)>>,
    /// The confidential figures to check (those linked to the new publication's period):
    /// (tree, period index, arc); tree 0 is the total, tree `i` the key `keys[i]`.
    figures: Vec<(usize, usize, usize)>,
    /// The arc of each tree's figure for the new publication's period, with its figure.
    new: Vec<(usize, Fact)>,
    keys: Vec<&'k [String]>,
    shape: Vec<u16>,
    /// The flow is the records' counts (the figures agree with them), not just a solution.
    truthful: bool,
    /// Per arc, its lowest and highest value over the solutions the checks have reached.
    seen: Vec<(i64, i64)>,
    /// Per node, the number of the last path search that reached it.
    marks: Vec<u64>,
    searches: u64,
}

impl<'k> Table<'k> {
    /// The network of `latest` (month mask → figures; the new publication's under `this`, with
    /// the keys in `suppressed` confidential) for the table of `total` and `cells`, with the
    /// records' counts as its flow (feasible when the figures agree with them).
    fn new(
        latest: &BTreeMap<u16, &Figures<'_>>,
        this: u16,
        suppressed: &BTreeSet<Vec<String>>,
        truth: &Months,
        total: &'k [String],
        cells: &[&'k [String]],
    ) -> Table<'k> {
        let keys: Vec<&[String]> = std::iter::once(total).chain(cells.iter().copied()).collect();
        let count = |key: &[String], mask: u16| -> i64 {
            truth
                .get(key)
                .map(|months| (0..12).filter(|m| mask & 1 << m != 0).map(|m| months[m]).sum())
                .unwrap_or(0)
        };
        let published = |mask: u16, key: &[String]| -> Option<Fact> {
            let figure = fact(latest.get(&mask)?, key);
            Some(match figure {
                Fact::Exact(v) if v > 0 && mask == this && suppressed.contains(key) => Fact::Confidential,
                figure => figure,
            })
        };
        // The tree of periods: the year, the published periods, and under each period with
        // published parts the months none of them covers, as one unpublished block. The leaves
        // (periods without parts, and those blocks) partition the year.
        let mut shape: Vec<u16> = std::iter::once(YEAR)
            .chain(latest.keys().copied().filter(|m| *m != YEAR))
            .collect();
        let parent_in = |shape: &[u16], m: u16| {
            (0..shape.len())
                .filter(|&p| shape[p] != m && m & !shape[p] == 0)
                .min_by_key(|&p| shape[p].count_ones())
        };
        let periods = shape.clone();
        for &m in &periods {
            let covered = periods
                .iter()
                .filter(|&&c| parent_in(&periods, c).is_some_and(|p| periods[p] == m))
                .fold(0u16, |u, c| u | c);
            if covered != 0 && m & !covered != 0 {
                shape.push(m & !covered);
            }
        }
        shape.sort_by_key(|m| (std::cmp::Reverse(m.count_ones()), *m));
        let parent: Vec<Option<usize>> = shape.iter().map(|&m| parent_in(&shape, m)).collect();
        let leaf: Vec<bool> = (0..shape.len()).map(|j| !parent.contains(&Some(j))).collect();
        // Periods under no common published period are joined only through unpublished sums,
        // which bound nothing: the linear program falls apart into independent parts, and only
        // the figures of the new publication's part can have narrowed.
        let linked = |m: u16| latest.keys().any(|&a| a & m == m && a & this != 0);
        let len = shape.len();
        let (source, sink) = (0, 1);
        let node = |tree: usize, j: usize| 2 + tree * len + j;
        let mut table = Table {
            arcs: Vec::new(),
            adjacent: vec![Vec::new(); 2 + keys.len() * len],
            figures: Vec::new(),
            new: Vec::new(),
            keys,
            shape: shape.clone(),
            truthful: false,
            seen: Vec::new(),
            marks: Vec::new(),
            searches: 0,
        };
        for tree in 0..table.keys.len() {
            let key = table.keys[tree];
            for j in 0..len {
                let mask = shape[j];
                let flow = count(key, mask);
                let figure = published(mask, key);
                let (lo, hi) = match figure {
                    Some(Fact::Exact(v)) => (v, v),
                    Some(Fact::Confidential) => (1, UNBOUNDED),
                    None => (0, UNBOUNDED),
                };
                let up = parent[j].map_or(if tree == 0 { sink } else { source }, |p| node(tree, p));
                // Keys' trees run down from the source, the total's up to the sink.
                let (from, to) = if tree == 0 {
                    (node(tree, j), up)
                } else {
                    (up, node(tree, j))
                };
                let arc = table.add(Arc { from, to, lo, hi, flow });
                if figure == Some(Fact::Confidential) && linked(mask) {
                    table.figures.push((tree, j, arc));
                }
                if mask == this {
                    table.new.push((arc, figure.unwrap_or(Fact::Exact(0))));
                }
                if tree > 0 && leaf[j] {
                    table.add(Arc {
                        from: node(tree, j),
                        to: node(0, j),
                        lo: 0,
                        hi: UNBOUNDED,
                        flow,
                    });
                }
            }
        }
        let year_total = table.keys.iter().skip(1).map(|key| count(key, YEAR)).sum();
        table.add(Arc {
            from: sink,
            to: source,
            lo: 0,
            hi: UNBOUNDED,
            flow: year_total,
        });
        // Searches try the arcs to smaller periods first, then the same period's (a key's block
        // to the total's), the larger ones last: cycles through nearby blocks are found before
        // a search climbs to the source, from which every key's tree is reachable.
        let size = |n: usize| if n < 2 { 13 } else { shape[(n - 2) % len].count_ones() };
        let Table { arcs, adjacent, .. } = &mut table;
        for (n, list) in adjacent.iter_mut().enumerate() {
            list.sort_by_key(|&(a, _)| size(arcs[a].from + arcs[a].to - n));
        }
        table
    }

    fn add(&mut self, arc: Arc) -> usize {
        let i = self.arcs.len();
        self.adjacent[arc.from].push((i, true));
        self.adjacent[arc.to].push((i, false));
        self.arcs.push(arc);
        i
    }

    /// Whether the figures have a common solution; if so the flow is one. The records' counts
    /// are kept when they are one; otherwise the flow starts at every arc's lower bound and the
    /// imbalance at each node is routed from a super source to a super sink.
    fn feasible(&mut self) -> bool {
        let nodes = self.adjacent.len();
        if self.is_solution() {
            self.truthful = true;
            return true;
        }
        let mut balance = vec![0i64; nodes];
        for arc in &mut self.arcs {
            arc.flow = arc.lo;
            balance[arc.to] += arc.lo;
            balance[arc.from] -= arc.lo;
        }
        let (arcs, source, sink) = (self.arcs.len(), nodes, nodes + 1);
        self.adjacent.extend([Vec::new(), Vec::new()]);
        let mut needed = 0;
        for (node, b) in balance.into_iter().enumerate() {
            let (from, to) = if b > 0 { (source, node) } else { (node, sink) };
            if b != 0 {
                needed += b.max(0);
                self.add(Arc {
                    from,
                    to,
                    lo: 0,
                    hi: b.abs(),
                    flow: 0,
                });
            }
        }
        let routed = self.push(source, sink, usize::MAX, needed, true);
        // The super source and sink leave again, and their arcs with them (added last).
        self.arcs.truncate(arcs);
        self.adjacent.truncate(nodes);
        for list in &mut self.adjacent {
            while list.last().is_some_and(|(a, _)| *a >= arcs) {
                list.pop();
            }
        }
        routed == needed
    }

    /// Checks every confidential figure that could be a count in (0, k), suppressing figures of
    /// the new publication where needed: the keys suppressed.
    ///
    /// The searches keep the flow where they moved it (every flow they reach is a solution), and
    /// each arc's lowest and highest value over those flows is remembered: a figure already seen
    /// k − 1 apart is wide without a search of its own, which spares most of them.
    fn protect(&mut self, k: i64) -> Result<Vec<Vec<String>>, Narrowed> {
        let mut suppressed = Vec::new();
        let counts: Vec<i64> = self.arcs.iter().map(|a| a.flow).collect();
        self.seen = self.arcs.iter().map(|a| (a.flow, a.flow)).collect();
        let figures = self.figures.clone();
        for (tree, j, arc) in figures {
            if self.truthful && counts[arc] >= k {
                // A figure suppressed to protect others: its true count is not small.
                continue;
            }
            let (least, most) = self.seen[arc];
            if most - least >= k - 1 {
                continue;
            }
            // Narrow: fewer than k values, the smallest of them a small count.
            let narrow = |(least, most): (i64, i64)| most - least < k - 1 && least < k;
            let (mut least, mut most) = self.range(arc, k, true);
            debug_assert!(self.is_solution(), "the searches left a flow that is not a solution");
            if !narrow((least, most)) {
                continue;
            }
            // Exact figures of the new publication that could absorb: cells largest first, then
            // the total.
            let mut candidates: Vec<(i64, usize)> = (1..self.new.len())
                .filter_map(|t| match self.new[t].1 {
                    Fact::Exact(v) if v >= k => Some((v, t)),
                    _ => None,
                })
                .collect();
            candidates.sort_by_key(|(v, t)| (std::cmp::Reverse(*v), *t));
            let mut order: Vec<usize> = candidates.iter().map(|(_, t)| *t).collect();
            if matches!(self.new[0].1, Fact::Exact(v) if v > 0) {
                order.push(0);
            }
            let mut fixed = false;
            for &t in order.iter().take(CANDIDATES) {
                let saved = self.suppress(t);
                (least, most) = self.range(arc, k, false);
                if !narrow((least, most)) {
                    suppressed.push(self.keys[t].to_vec());
                    fixed = true;
                    break;
                }
                self.arcs[self.new[t].0] = saved;
                self.new[t].1 = Fact::Exact(saved.lo);
            }
            if !fixed {
                for &t in &order {
                    self.suppress(t);
                    suppressed.push(self.keys[t].to_vec());
                    (least, most) = self.range(arc, k, false);
                    if !narrow((least, most)) {
                        fixed = true;
                        break;
                    }
                }
            }
            if !fixed {
                return Err(Narrowed {
                    key: self.keys[tree].to_vec(),
                    months: self.shape[j],
                    lo: least,
                    hi: most,
                });
            }
        }
        suppressed.sort();
        suppressed.dedup();
        Ok(suppressed)
    }

    /// Whether the flow meets every arc's bounds and is conserved at every node.
    fn is_solution(&self) -> bool {
        let mut balance = vec![0i64; self.adjacent.len()];
        for arc in &self.arcs {
            balance[arc.to] += arc.flow;
            balance[arc.from] -= arc.flow;
        }
        balance.iter().all(|b| *b == 0) && self.arcs.iter().all(|a| a.lo <= a.flow && a.flow <= a.hi)
    }

    /// Turns the new publication's figure of tree `t` confidential; returns its arc as it was.
    fn suppress(&mut self, t: usize) -> Arc {
        let (arc, _) = self.new[t];
        let saved = self.arcs[arc];
        self.arcs[arc].lo = 1;
        self.arcs[arc].hi = UNBOUNDED;
        self.new[t].1 = Fact::Confidential;
        saved
    }

    /// The smallest and largest values of the figure on `arc` over all solutions, searched no
    /// further than k − 1 apart; the flow is left where the searches took it when `keep`.
    fn range(&mut self, arc: usize, k: i64, keep: bool) -> (i64, i64) {
        let Arc { from, to, lo, flow, .. } = self.arcs[arc];
        let up = self.push(to, from, arc, k - 1, keep);
        if up >= k - 1 {
            return (flow, flow + up);
        }
        // The largest value is `flow + up`; how far below it the figure can go is its range.
        // Searched from where the flow now is: the largest value when kept, else `flow`.
        let now = if keep { flow + up } else { flow };
        let down = self.push(from, to, arc, (k - 1 - (flow + up - now)).min(now - lo), keep);
        (now - down, flow + up)
    }

    /// The flow that can go from `start` to `end` in the residual graph without `skip`, up to
    /// `cap`; sent when `keep` (each arc's lowest and highest value seen is updated), else the
    /// flow is left as it was found. With the cap, any augmenting paths do (at most `cap` of
    /// them); wide ones are tried first.
    fn push(&mut self, start: usize, end: usize, skip: usize, cap: i64, keep: bool) -> i64 {
        let mut log: Vec<(usize, i64)> = Vec::new();
        let mut pushed = 0;
        let mut wide = true;
        while pushed < cap {
            let need = cap - pushed;
            let found = match wide.then(|| self.path(start, end, skip, need)).flatten() {
                Some(path) => Some(path),
                None => {
                    // No path holds what is still needed; narrower ones may add up to it.
                    wide = false;
                    self.path(start, end, skip, 1)
                }
            };
            let Some(path) = found else {
                break;
            };
            let room = path.iter().fold(need, |room, &(a, forward)| {
                let arc = &self.arcs[a];
                room.min(if forward { arc.hi - arc.flow } else { arc.flow - arc.lo })
            });
            // The path and `skip`, which closes it into a cycle (when kept, the flow on it
            // moves too, so the flow stays a solution).
            let closing = (keep && skip < self.arcs.len()).then(|| (skip, self.arcs[skip].from == end));
            for (a, forward) in path.into_iter().chain(closing) {
                let d = if forward { room } else { -room };
                self.arcs[a].flow += d;
                if keep {
                    if let Some(seen) = self.seen.get_mut(a) {
                        let flow = self.arcs[a].flow;
                        *seen = (seen.0.min(flow), seen.1.max(flow));
                    }
                } else {
                    log.push((a, d));
                }
            }
            pushed += room;
        }
        for (a, d) in log.into_iter().rev() {
            self.arcs[a].flow -= d;
        }
        pushed
    }

    /// A path from `start` to `end` in the residual graph, avoiding `skip`, through arcs with
    /// at least `room` to spare (depth first): its arcs and their directions.
    fn path(&mut self, start: usize, end: usize, skip: usize, room: i64) -> Option<Vec<(usize, bool)>> {
        // Nodes are marked seen with the number of this search, so the marks need no clearing.
        self.searches += 1;
        let search = self.searches;
        let Table {
            arcs,
            adjacent,
            marks,
            shape,
            ..
        } = self;
        marks.resize(adjacent.len(), 0);
        marks[start] = search;
        // Goal first: at each node the arcs into `end`'s tree are tried before the others, so
        // a search from a key's figure back to that key closes the short cycle through one
        // other key (a rectangle of four figures) before it wanders through the table.
        let len = shape.len().max(1);
        let tree = |n: usize| n.checked_sub(2).map(|n| n / len);
        let goal = tree(end);
        // The nodes on the current path, each with the next of its arcs to try (two passes).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        let mut via: Vec<(usize, bool)> = Vec::new();
        while let Some((node, next)) = stack.last_mut() {
            if *node == end {
                return Some(via);
            }
            let list = &adjacent[*node];
            if *next >= 2 * list.len() {
                stack.pop();
                via.pop();
                continue;
            }
            let (pass, i) = (*next / list.len(), *next % list.len());
            *next += 1;
            let (a, forward) = list[i];
            if a == skip {
                continue;
            }
            let arc = &arcs[a];
            let (to, spare) = if forward {
                (arc.to, arc.hi - arc.flow)
            } else {
                (arc.from, arc.flow - arc.lo)
            };
            if (tree(to) == goal) != (pass == 0) {
                continue;
            }
            if spare >= room && marks[to] != search {
                marks[to] = search;
                stack.push((to, 0));
                via.push((a, forward));
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "coupled_tests.rs"]
mod tests;
