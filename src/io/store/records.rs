//! Records and live aggregates. A batch of records and every aggregate cell it changes are
//! written in one atomic sled batch: replacing an event subtracts its old contribution and adds
//! the new one, so aggregates never drift from the records, whatever crashes when.

use std::collections::{BTreeMap, HashMap};

use ring::hmac;

use super::{Store, StoreError};
use crate::domain::aggregate::{CellKey, Facts, Tally};
use crate::domain::date::Date;
use crate::domain::model::Country;
use crate::domain::model::{Cube, Period};
use crate::domain::record::{EventType, Reason, Record, Sex};

/// A record as stored: 53 bytes, with the person pseudonymised and the cell key fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredRecord {
    pub facts: Facts,
    pub day: i32,
    pub country_of_birth: Option<Country>,
    /// The cell-key method's record key, derived from the pseudonymised event.
    pub cell_key: u8,
    /// HMAC-SHA256 of the raw person id under the node secret.
    pub pseudonym: [u8; 32],
}

pub(super) const RECORD_LEN: usize = 53;

impl StoredRecord {
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let f = &self.facts;
        let mut b = [0u8; RECORD_LEN];
        b[0] = f.event_type.code();
        b[1..5].copy_from_slice(&self.day.to_be_bytes());
        b[5..8].copy_from_slice(&f.citizenship.bytes());
        b[8..11].copy_from_slice(&self.country_of_birth.map_or([0; 3], |c| c.bytes()));
        b[11..14].copy_from_slice(&f.partner.map_or([0; 3], |c| c.bytes()));
        b[14] = f.sex.code();
        b[15..17].copy_from_slice(&(f.birth_year.unwrap_or(0) as u16).to_be_bytes());
        b[17] = f.reason.code();
        b[18..20].copy_from_slice(
            &f.duration_months
                .map_or(u16::MAX, |d| d.min(u32::from(u16::MAX - 1)) as u16)
                .to_be_bytes(),
        );
        b[20] = self.cell_key;
        b[21..53].copy_from_slice(&self.pseudonym);
        b
    }

    pub fn decode(b: &[u8]) -> Option<StoredRecord> {
        if b.len() != RECORD_LEN {
            return None;
        }
        let country = |r: std::ops::Range<usize>| -> Option<Option<Country>> {
            let bytes: [u8; 3] = b[r].try_into().ok()?;
            if bytes == [0; 3] {
                Some(None)
            } else {
                Country::from_bytes(bytes).map(Some)
            }
        };
        let day = i32::from_be_bytes(b[1..5].try_into().ok()?);
        let date = Date::from_day_number(i64::from(day))?;
        let birth = u16::from_be_bytes(b[15..17].try_into().ok()?);
        let duration = u16::from_be_bytes(b[18..20].try_into().ok()?);
        Some(StoredRecord {
            facts: Facts {
                event_type: EventType::from_code(b[0])?,
                year: date.year,
                month: date.month,
                citizenship: country(5..8)??,
                partner: country(11..14)?,
                sex: Sex::from_code(b[14])?,
                birth_year: (birth != 0).then_some(i32::from(birth)),
                reason: Reason::from_code(b[17])?,
                duration_months: (duration != u16::MAX).then_some(u32::from(duration)),
            },
            day,
            country_of_birth: country(8..11)?,
            cell_key: b[20],
            pseudonym: b[21..53].try_into().ok()?,
        })
    }
}

/// What an ingest batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    /// Records stored (new or replacing).
    pub stored: u64,
    /// Of those, records that replaced an earlier record with the same event_id.
    pub replaced: u64,
}

impl IngestOutcome {
    pub fn add(&mut self, o: IngestOutcome) {
        self.stored += o.stored;
        self.replaced += o.replaced;
    }
}

/// The result of recomputing aggregates from records.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    pub records: u64,
    pub cells: u64,
    /// One line per disagreement.
    pub differences: Vec<String>,
}

fn record_key(event_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + event_id.len());
    k.extend_from_slice(b"r:");
    k.extend_from_slice(event_id.as_bytes());
    k
}

/// What the records give, from [`Store::recompute`].
struct Recomputed {
    cells: BTreeMap<Vec<u8>, Tally>,
    types: [i64; 4],
    records: u64,
}

fn cell_key(cell: &CellKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + cell.0.len());
    k.extend_from_slice(b"a:");
    k.extend_from_slice(&cell.0);
    k
}

fn type_key(t: EventType) -> [u8; 3] {
    [b't', b':', t.code()]
}

impl Store {
    /// Pseudonymises a raw person id. The raw value is never written anywhere.
    pub fn pseudonym(&self, person_id: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.secret, person_id.as_bytes());
        tag.as_ref().try_into().unwrap_or([0; 32])
    }

    pub(crate) fn to_stored(&self, r: &Record) -> StoredRecord {
        let pseudonym = self.pseudonym(&r.person_id);
        let mut msg = Vec::with_capacity(48 + r.event_id.len());
        msg.extend_from_slice(b"accord cell key\0");
        msg.extend_from_slice(r.event_id.as_bytes());
        msg.extend_from_slice(&pseudonym);
        let cell_key = hmac::sign(&self.secret, &msg).as_ref()[0];
        StoredRecord {
            facts: Facts {
                event_type: r.event_type,
                year: r.event_date.year,
                month: r.event_date.month,
                citizenship: r.citizenship,
                partner: r.partner_country,
                sex: r.sex,
                birth_year: r.birth_year,
                reason: r.reason,
                duration_months: r.duration_months,
            },
            day: r.event_date.day_number() as i32,
            country_of_birth: r.country_of_birth,
            cell_key,
            pseudonym,
        }
    }

    /// Stores a batch of validated records and updates aggregates and counts, atomically. A
    /// record whose event_id is already stored replaces it (its old contribution is removed).
    /// Durable once [`Store::flush`] returns.
    pub fn ingest(&self, records: &[Record]) -> Result<IngestOutcome, StoreError> {
        let stored: Vec<(&str, StoredRecord)> = records
            .iter()
            .map(|r| (r.event_id.as_str(), self.to_stored(r)))
            .collect();
        self.apply(&stored, sled::Batch::default())
    }

    /// Stores pseudonymised records in file order (later rows win) and updates aggregates and
    /// counts, in one atomic batch with whatever `batch` already holds.
    pub(super) fn apply(
        &self,
        records: &[(&str, StoredRecord)],
        mut batch: sled::Batch,
    ) -> Result<IngestOutcome, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut outcome = IngestOutcome::default();
        // The latest value of each event in this batch (later rows win), and its previous value.
        let mut pending: HashMap<&str, StoredRecord> = HashMap::with_capacity(records.len());
        let mut deltas: HashMap<CellKey, Tally> = HashMap::new();
        let mut type_deltas = [0i64; 4];
        let mut contribute = |rec: &StoredRecord, sign: i64, deltas: &mut HashMap<CellKey, Tally>| {
            type_deltas[usize::from(rec.facts.event_type.code())] += sign;
            if let Some(cell) = CellKey::of(&rec.facts, &self.definition()) {
                deltas.entry(cell).or_default().add(Tally {
                    count: sign,
                    key_sum: sign * i64::from(rec.cell_key),
                });
            }
        };
        for &(event_id, new) in records {
            let old = match pending.get(event_id) {
                Some(old) => Some(*old),
                None => match self.get(&record_key(event_id))? {
                    Some(v) => Some(StoredRecord::decode(&v).ok_or_else(|| self.corrupt(&record_key(event_id)))?),
                    None => None,
                },
            };
            if let Some(old) = old {
                contribute(&old, -1, &mut deltas);
                outcome.replaced += 1;
            }
            contribute(&new, 1, &mut deltas);
            pending.insert(event_id, new);
            outcome.stored += 1;
        }
        for (event_id, rec) in &pending {
            batch.insert(record_key(event_id), rec.encode().as_slice());
        }
        for (cell, delta) in deltas {
            if delta.is_zero() {
                continue;
            }
            let key = cell_key(&cell);
            let mut tally = match self.get(&key)? {
                Some(v) => Tally::decode(&v).ok_or_else(|| self.corrupt(&key))?,
                None => Tally::default(),
            };
            tally.add(delta);
            if tally.is_zero() {
                batch.remove(key);
            } else {
                batch.insert(key, tally.encode().as_slice());
            }
        }
        for t in EventType::ALL {
            let d = type_deltas[usize::from(t.code())];
            if d != 0 {
                let key = type_key(t);
                let current = self
                    .get(&key)?
                    .map_or(0, |v| v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0));
                batch.insert(key.as_slice(), (current + d).to_be_bytes().as_slice());
            }
        }
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
        Ok(outcome)
    }

    /// Record counts by event type (kept up to date with every batch).
    pub fn record_counts(&self) -> Result<BTreeMap<EventType, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for t in EventType::ALL {
            let n = self
                .get(&type_key(t))?
                .map_or(0, |v| v.as_ref().try_into().map(i64::from_be_bytes).unwrap_or(0));
            out.insert(t, n.max(0) as u64);
        }
        Ok(out)
    }

    /// The tallies of `cube` over `period`, keyed by published dimension values: a sum over
    /// the period's months of the live aggregates (records are never rescanned).
    pub fn period_tallies(&self, cube: Cube, period: Period) -> Result<BTreeMap<Vec<String>, Tally>, StoreError> {
        let mut out: BTreeMap<Vec<String>, Tally> = BTreeMap::new();
        for month in period.months() {
            let mut prefix = b"a:".to_vec();
            prefix.extend_from_slice(&CellKey::month_prefix(cube, period.year(), month));
            for item in self.tree.scan_prefix(&prefix) {
                let (k, v) = item.map_err(|e| self.sled(e))?;
                let cell = CellKey(k[2..].to_vec());
                let dims = cell.dimensions().ok_or_else(|| self.corrupt(&k))?;
                let tally = Tally::decode(&v).ok_or_else(|| self.corrupt(&k))?;
                out.entry(dims).or_default().add(tally);
            }
        }
        Ok(out)
    }

    /// Every aggregate and count as the records give them under the store's definition:
    /// (cell key without prefix → tally, records by event type code, records read).
    fn recompute(&self, progress: &mut dyn FnMut(u64)) -> Result<Recomputed, StoreError> {
        let mut cells: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
        let mut types = [0i64; 4];
        let mut records = 0u64;
        for item in self.tree.scan_prefix(b"r:") {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            let rec = StoredRecord::decode(&v).ok_or_else(|| self.corrupt(&k))?;
            types[usize::from(rec.facts.event_type.code())] += 1;
            if let Some(cell) = CellKey::of(&rec.facts, &self.definition()) {
                cells.entry(cell.0).or_default().add(Tally {
                    count: 1,
                    key_sum: i64::from(rec.cell_key),
                });
            }
            records += 1;
            if records % 100_000 == 0 {
                progress(records);
            }
        }
        Ok(Recomputed { cells, types, records })
    }

    /// Replaces every aggregate and count with what the records give under the store's
    /// definition, and records that definition, in one atomic batch: a crash leaves either the
    /// old aggregates with the old definition or the new with the new. Returns (records, cells).
    pub(super) fn rebuild_aggregates(&self, progress: &mut dyn FnMut(u64)) -> Result<(u64, u64), StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.rebuild_aggregates_locked(progress)
    }

    /// [`Store::rebuild_aggregates`] with the write lock already held.
    pub(super) fn rebuild_aggregates_locked(&self, progress: &mut dyn FnMut(u64)) -> Result<(u64, u64), StoreError> {
        let Recomputed { cells, types, records } = self.recompute(progress)?;
        let mut batch = sled::Batch::default();
        for item in self.tree.scan_prefix(b"a:") {
            let (k, _) = item.map_err(|e| self.sled(e))?;
            batch.remove(k);
        }
        for (cell, tally) in &cells {
            batch.insert(cell_key(&CellKey(cell.clone())), tally.encode().as_slice());
        }
        for t in EventType::ALL {
            batch.insert(
                type_key(t).as_slice(),
                types[usize::from(t.code())].to_be_bytes().as_slice(),
            );
        }
        batch.insert(
            b"m:definition".as_slice(),
            super::definition_text(&self.definition()).as_bytes(),
        );
        self.tree.apply_batch(batch).map_err(|e| self.sled(e))?;
        self.flush()?;
        Ok((records, cells.len() as u64))
    }

    /// Recomputes every aggregate and count from the records and compares with the live ones.
    pub fn check(&self, progress: &mut dyn FnMut(u64)) -> Result<CheckReport, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Recomputed {
            cells: expected,
            types,
            records,
        } = self.recompute(progress)?;
        let mut report = CheckReport {
            records,
            ..CheckReport::default()
        };
        let mut actual: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
        for item in self.tree.scan_prefix(b"a:") {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            actual.insert(k[2..].to_vec(), Tally::decode(&v).ok_or_else(|| self.corrupt(&k))?);
        }
        report.cells = expected.len() as u64;
        let describe = |k: &[u8]| {
            let cell = CellKey(k.to_vec());
            let cube = cell.cube().map_or("?", |c| c.as_str());
            let month = if k.len() >= 4 {
                format!("{}-{:02}", u16::from_be_bytes([k[1], k[2]]), k[3])
            } else {
                "?".into()
            };
            format!("{cube} {month} [{}]", cell.dimensions().unwrap_or_default().join(","))
        };
        for (k, e) in &expected {
            match actual.get(k) {
                Some(a) if a == e => {}
                Some(a) => report.differences.push(format!(
                    "{}: records give count {}, aggregate holds {}",
                    describe(k),
                    e.count,
                    a.count
                )),
                None => report.differences.push(format!(
                    "{}: records give count {}, aggregate missing",
                    describe(k),
                    e.count
                )),
            }
        }
        for (k, a) in &actual {
            if !expected.contains_key(k) {
                report
                    .differences
                    .push(format!("{}: no records, aggregate holds {}", describe(k), a.count));
            }
        }
        let counts = self.record_counts()?;
        for t in EventType::ALL {
            let want = types[usize::from(t.code())] as u64;
            if counts[&t] != want {
                report.differences.push(format!(
                    "{} records: {} stored, count says {}",
                    t.as_str(),
                    want,
                    counts[&t]
                ));
            }
        }
        Ok(report)
    }

    /// Number of stored records (a scan; for tests and `check`).
    pub fn record_total(&self) -> u64 {
        self.tree.scan_prefix(b"r:").count() as u64
    }

    /// Whether any stored value contains `needle` (for tests proving raw identifiers never
    /// reach the store).
    #[doc(hidden)]
    pub fn contains_bytes(&self, needle: &[u8]) -> bool {
        self.tree
            .iter()
            .flatten()
            .any(|(k, v)| k.windows(needle.len()).any(|w| w == needle) || v.windows(needle.len()).any(|w| w == needle))
    }
}
