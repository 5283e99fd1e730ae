//! Publishing this node's own datasets: a cube for a period built from the live aggregates,
//! disclosure control, the audience the sharing rules allow, the audit against the node's own
//! earlier entries of the cube and year (SPEC §10), then signed and appended to its feed under
//! the store's write lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Node, NodeError};
use crate::domain::aggregate::audit::{self, Earlier};
use crate::domain::aggregate::disclosure;
use crate::domain::aggregate::{margins, Tally};
use crate::domain::consortium::{Consortium, Disclosure};
use crate::domain::dataset::publish::{sign_entry, EntryParams};
use crate::domain::dataset::{verify_at, Dataset, Placement, Unreported};
use crate::domain::date::unix_now;
use crate::domain::model::{Cell, CellValue, Country, Cube, Period};

/// One period's live tallies by published key.
type Tallies = BTreeMap<Vec<String>, Tally>;

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub publisher: Country,
    pub cube: Cube,
    pub period: Period,
    pub seq: u64,
    pub digest: [u8; 32],
    pub cells: usize,
    pub confidential: usize,
    /// Of the confidential cells, those flagged because an exact figure would have disclosed a
    /// small count together with earlier publications (SPEC §10).
    pub suppressed: usize,
}

/// What to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub cube: Cube,
    pub period: Period,
    /// Members allowed the payload; empty = every member the sharing rules allow.
    pub audience: Vec<Country>,
    /// `--unreported` arguments (SPEC §2: `OUT`, `IN:AUT,EST`); `flows` only.
    pub unreported: Vec<String>,
}

impl PublishRequest {
    /// `cube` for `period`, to every member, everything reported.
    pub fn new(cube: Cube, period: Period) -> PublishRequest {
        PublishRequest {
            cube,
            period,
            audience: Vec::new(),
            unreported: Vec::new(),
        }
    }

    /// The same request for `audience` only.
    pub fn to(mut self, audience: Vec<Country>) -> PublishRequest {
        self.audience = audience;
        self
    }
}

impl Node {
    /// Builds `cube` for `period` from the live aggregates, applies disclosure control, signs
    /// it as the next entry of this node's feed and stores it. The head is read, the entry
    /// signed and appended under one store lock, so concurrent publishes get consecutive seqs.
    pub fn publish(&self, request: PublishRequest) -> Result<Published, NodeError> {
        let PublishRequest {
            cube,
            period,
            audience,
            unreported: arguments,
        } = request;
        let mut unreported = Unreported::none();
        for argument in &arguments {
            if cube != Cube::Flows {
                return Err(NodeError::Request(format!(
                    "--unreported {argument}: only flows datasets have directions and partners; {cube} reports everything it publishes"
                )));
            }
            unreported
                .add_argument(argument, self.country())
                .map_err(|e| NodeError::Request(e.to_string()))?;
        }
        // The tables outside what the dataset reports are published as nothing and audited as
        // nothing: a table is one direction and partner, and the audit couples cells within a
        // table only, so leaving whole tables out leaves the audit of the rest exact.
        let reported = |key: &Vec<String>| !unreported.covers_key(key);
        let consortium = self.consortium();
        for a in &audience {
            if consortium.member(*a).is_none() {
                return Err(NodeError::Request(format!("audience: {a} is not a consortium member")));
            }
        }
        let audience = sharing_audience(&consortium, self.country(), cube, audience, unix_now())?;
        if consortium.definition != self.store.definition() {
            // Aggregates follow the definition the store was built with; publishing them under
            // another would mislabel every figure.
            return Err(NodeError::Request(format!(
                "consortium version {} defines min_duration_months {}, unknown_duration {}, but this node's aggregates follow min_duration_months {}, unknown_duration {} (the rebuild failed; see the log): not published; stop the node and run `accord check --rebuild`",
                self.governance().current().version,
                consortium.definition.min_duration_months,
                consortium.definition.unknown_duration.as_str(),
                self.store.definition().min_duration_months,
                self.store.definition().unknown_duration.as_str()
            )));
        }
        // Under `threshold` the audit needs the year's months as the records give them now; the
        // period's tallies are their sum.
        let truth = match consortium.disclosure {
            Disclosure::Threshold { .. } => {
                let (mut by_month, mut months) = self.months_of(cube, period.year())?;
                if !unreported.is_empty() {
                    months.retain(|key, _| reported(key));
                    for tallies in &mut by_month {
                        tallies.retain(|key, _| reported(key));
                    }
                }
                Some((by_month, months))
            }
            _ => None,
        };
        let tallies = match &truth {
            Some((by_month, _)) => period.months().fold(BTreeMap::new(), |mut sum, m| {
                for (key, tally) in &by_month[usize::from(m) - 1] {
                    sum.entry(key.clone()).or_insert_with(Tally::default).add(*tally);
                }
                sum
            }),
            None => {
                let mut tallies = margins::with_totals(cube, self.store.period_tallies(cube, period)?);
                tallies.retain(|key, _| reported(key));
                tallies
            }
        };
        let consortium = &*consortium;
        // The subtotals (over each single dimension, and pairs of them) under cell-key and
        // none; under threshold only each table's total (see `margins`).
        let subtotals = match consortium.disclosure {
            Disclosure::Threshold { .. } => BTreeMap::new(),
            _ => margins::subtotals(cube, &tallies),
        };
        let cells = disclosure::protect(&consortium.disclosure, tallies);
        if cells.len() + subtotals.len() > self.limits.max_cells {
            return Err(NodeError::Request(format!(
                "{cube} {period} has {} cells, over the limit max_cells ({})",
                cells.len() + subtotals.len(),
                self.limits.max_cells
            )));
        }
        let mut suppressed = 0;
        let (verified, placement) = self.store.append_next(self.country(), |head| {
            // Audited under the store's write lock: a concurrent publish of an overlapping
            // period is either in the history or waits for this one.
            let cells = match consortium.disclosure {
                Disclosure::Threshold { k } => {
                    let history = self.own_history(cube, period.year(), &reported)?;
                    let earlier: Vec<Earlier<'_>> = history
                        .iter()
                        .map(|(seq, period, cells)| Earlier {
                            seq: *seq,
                            period: *period,
                            cells,
                        })
                        .collect();
                    let months = truth.as_ref().map(|(_, months)| months).expect("threshold reads the months");
                    let audited = audit::audit(k, &earlier, period, cells, months).map_err(|refusal| {
                        NodeError::Request(format!(
                            "publish {cube} {period} refused: {refusal}; an exact figure here would disclose a count below {k} with what this node already published (cell-key protects flexible periods; see the README)"
                        ))
                    })?;
                    suppressed = audited.suppressed.len();
                    audited.cells
                }
                _ => sorted(cells, disclosure::protect(&consortium.disclosure, subtotals.clone())),
            };
            let dataset = Dataset {
                publisher: self.country(),
                cube,
                period,
                definition: consortium.definition,
                disclosure: consortium.disclosure,
                cells,
                unreported: unreported.clone(),
            };
            let entry = sign_entry(
                &dataset,
                EntryParams {
                    head,
                    created_at: unix_now(),
                    audience,
                    key: &self.signing,
                },
            );
            // Our own entry goes through the same verification as any other: what we store is
            // what every peer will accept.
            Ok::<_, NodeError>(verify_at(entry, consortium, &self.limits, unix_now())?)
        })?;
        if let Placement::Backdated { previous } = placement {
            return Err(NodeError::Request(format!(
                "this node's clock ({}) is behind its own last entry ({}): a feed's time only moves forward; correct the clock and publish again",
                crate::domain::date::format_timestamp(verified.header().created_at),
                crate::domain::date::format_timestamp(previous)
            )));
        }
        if placement != Placement::Append {
            return Err(NodeError::Request(format!("own feed refused the entry: {placement:?}")));
        }
        self.current.placed(&verified, placement);
        self.store.flush()?;
        let dataset = verified.dataset().expect("own entries carry their payload");
        let confidential = dataset
            .cells
            .iter()
            .filter(|c| c.value == CellValue::Confidential)
            .count();
        let cells = dataset.cells.len();
        Ok(Published {
            publisher: self.country(),
            cube,
            period,
            seq: verified.header().seq,
            digest: verified.digest(),
            cells,
            confidential,
            suppressed,
        })
    }

    /// The live tallies of each month of `year` (margins included), and the same as monthly
    /// counts per key: what the audit reasons with.
    fn months_of(&self, cube: Cube, year: i32) -> Result<(Vec<Tallies>, audit::Months), NodeError> {
        let by_month = (1..=12u8)
            .map(|m| {
                Ok(margins::with_totals(
                    cube,
                    self.store.period_tallies(cube, Period::Month(year, m))?,
                ))
            })
            .collect::<Result<Vec<_>, NodeError>>()?;
        let mut months = audit::Months::new();
        for (m, tallies) in by_month.iter().enumerate() {
            for (key, tally) in tallies {
                months.entry(key.clone()).or_insert([0; 12])[m] = tally.count;
            }
        }
        Ok((by_month, months))
    }

    /// This node's own entries of `cube` for periods of `year`, oldest first: what a new
    /// publication is audited against.
    /// Only the cells `keep` accepts are kept; an entry whose payload is one an earlier entry
    /// already had (a republication) shares that entry's cells, so a feed of many identical
    /// revisions is decoded and held once.
    fn own_history(&self, cube: Cube, year: i32, keep: &dyn Fn(&Vec<String>) -> bool) -> Result<History, NodeError> {
        let me = self.country();
        let Some(head) = self.store.head(me)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut decoded: BTreeMap<[u8; 32], Arc<Vec<Cell>>> = BTreeMap::new();
        for seq in 1..=head.seq {
            let Some(entry) = self.store.entry(me, seq)? else {
                continue;
            };
            let Some(header) = entry
                .envelope
                .as_ref()
                .and_then(|env| crate::domain::dataset::EntryHeader::decode(&env.payload).ok())
            else {
                continue;
            };
            let Some((entry_cube, period)) = header.dataset() else {
                continue;
            };
            if entry_cube != cube || period.year() != year || !entry.has_payload {
                continue;
            }
            let cells = match decoded.get(&header.payload_sha256) {
                Some(cells) => cells.clone(),
                None => {
                    let mut dataset = Dataset::decode(&entry.payload, self.limits.max_cells)
                        .map_err(|e| NodeError::Request(format!("own entry seq {seq} does not decode: {e}")))?;
                    dataset.cells.retain(|cell| keep(&cell.key));
                    let cells = Arc::new(dataset.cells);
                    decoded.insert(header.payload_sha256, cells.clone());
                    cells
                }
            };
            out.push((seq, period, cells));
        }
        Ok(out)
    }
}

/// The audience of a publish under the sharing rules (SPEC §11): under `default = "agreements"`
/// the parties of the agreements in force that include the publisher and cover the cube (or a
/// narrower `requested` audience among them); a wider one, or no agreement at all, is refused.
fn sharing_audience(
    consortium: &Consortium,
    publisher: Country,
    cube: Cube,
    requested: Vec<Country>,
    now: i64,
) -> Result<Vec<Country>, NodeError> {
    let Some(parties) = consortium.sharing_audience(publisher, cube, now) else {
        return Ok(requested);
    };
    if parties.is_empty() {
        return Err(NodeError::Request(format!(
            "no sharing agreement in force lets {publisher} share {cube} ([sharing] default = \"agreements\"): nothing would reach any member"
        )));
    }
    let outside: Vec<String> = requested
        .iter()
        .filter(|a| **a != publisher && !parties.contains(a))
        .map(ToString::to_string)
        .collect();
    if !outside.is_empty() {
        let allowed: Vec<String> = parties.iter().map(ToString::to_string).collect();
        return Err(NodeError::Request(format!(
            "audience {} is wider than the sharing agreements in force allow for {publisher} {cube} ({})",
            outside.join(", "),
            allowed.join(", ")
        )));
    }
    Ok(if requested.is_empty() { parties } else { requested })
}

/// A node's own earlier entries of one cube and year: seq, period and cells (shared between
/// entries with the same payload).
type History = Vec<(u64, Period, Arc<Vec<Cell>>)>;

/// `cells` and `more` in one list in key order (a dataset's cells are sorted).
fn sorted(mut cells: Vec<Cell>, more: Vec<Cell>) -> Vec<Cell> {
    cells.extend(more);
    cells.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    cells
}
