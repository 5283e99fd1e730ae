//! The canonical encoding of a [`View`] and its digest. Two nodes holding the same accepted
//! datasets must produce the same bytes here, so this encoding never contains a float, a map
//! whose key order could vary, or anything from the clock or the input order.
//!
//! # Encoding `accord-view/3`
//! Compact JSON (no whitespace) of one object whose fields appear in exactly this order:
//! - `format`: the string `"accord-view/3"`;
//! - `consortium`: `{"version": N, "digest": hex}`, the consortium version the view was
//!   computed under (two members applying different documents get different digests);
//! - `rule`: the rule name; `asymmetry_flag_ppm`: the threshold in parts per million, rounded;
//! - `inputs`: `[publisher, cube, period, seq, digest]` arrays, sorted by (publisher, cube,
//!   period);
//! - `pairs`: objects `origin, destination, period, sender, receiver, reconciled,
//!   reconciled_withheld, asymmetry_ppm, flag, estimate, estimate_lower, estimate_upper`, sorted
//!   by (origin, destination, period); a side is `reported, status, withheld, publisher, seq,
//!   digest`; the estimates (SPEC §15) are whole persons, or `null` without one;
//! - `rows`: objects `origin, destination, period, citizenship, sex, age_band, sender, receiver,
//!   reconciled, asymmetry_ppm, flag`, sorted by key; a side is `reported, status, publisher, seq,
//!   digest`;
//! - `side_by_side`: objects `cube, period, dimensions, entries`, sorted by (cube, period,
//!   dimensions); an entry is `publisher, reported, status, seq, digest`, sorted by publisher;
//! - `notes`: objects `origin, destination, period, text`, sorted (notes without a pair first).
//!
//! Countries are alpha-3 strings, periods as SPEC §2 writes them (`2024`, `2024-Q2`, `2024-05`),
//! cubes by name, digests lower-case hex. A reported value is an integer or `null` (status `C`
//! or `M`); an absent source has `null` publisher, seq and digest. Asymmetries are integers:
//! round(asymmetry × 1 000 000), or `null` when undefined. Cube order is flows, asylum, permits;
//! period order is by year, then year before its quarters before its months.
//!
//! The digest is SHA-256 of these bytes.

use ring::digest::{Context, SHA256};
use serde::ser::{SerializeStruct, Serializer};
use serde::Serialize;

use super::{hex, PairTotal, Side, SideTotal, Source, View};

/// The encoding's name, first in the bytes, so a future change cannot collide with this one.
pub const FORMAT: &str = "accord-view/3";

impl View {
    /// The canonical encoding described in the module documentation.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serialising plain structs, strings and integers into a Vec cannot fail: serde_json
        // errors only on I/O, on non-string map keys and on non-finite floats, none of which
        // occur here. The empty fallback would still give a fixed, recognisable digest.
        serde_json::to_vec(&CanonicalView(self)).unwrap_or_default()
    }

    /// SHA-256 of [`View::canonical_bytes`], computed as the encoding is produced: the bytes
    /// of a large view are never held in memory at once.
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = std::io::BufWriter::with_capacity(64 * 1024, Hasher(Context::new(&SHA256)));
        // Writing into the hasher cannot fail (see `canonical_bytes`).
        let _ = serde_json::to_writer(&mut hasher, &CanonicalView(self));
        let context = match hasher.into_inner() {
            Ok(h) => h.0,
            Err(e) => e.into_inner().into_parts().0 .0,
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }
}

/// An `io::Write` that feeds a SHA-256 context.
struct Hasher(Context);

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON array produced lazily from an iterator, one element at a time.
struct Seq<F>(F);

impl<F, I> Serialize for Seq<F>
where
    F: Fn() -> I,
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq((self.0)())
    }
}

#[derive(Serialize)]
struct CanonicalConsortium {
    version: u64,
    digest: String,
}

/// The view in its canonical form: fields in the documented order, each collection serialised
/// element by element from the view's sorted maps.
struct CanonicalView<'a>(&'a View);

impl Serialize for CanonicalView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let view = self.0;
        let mut out = serializer.serialize_struct("Canonical", 9)?;
        out.serialize_field("format", FORMAT)?;
        out.serialize_field(
            "consortium",
            &CanonicalConsortium {
                version: view.consortium.version,
                digest: hex(&view.consortium.digest),
            },
        )?;
        out.serialize_field("rule", view.rule.as_str())?;
        out.serialize_field("asymmetry_flag_ppm", &ppm(view.asymmetry_flag))?;
        out.serialize_field(
            "inputs",
            &Seq(|| {
                view.inputs.iter().map(|((publisher, cube, period), source)| {
                    (
                        publisher.to_string(),
                        cube.as_str(),
                        period.to_string(),
                        source.seq,
                        hex(&source.digest),
                    )
                })
            }),
        )?;
        out.serialize_field(
            "pairs",
            &Seq(|| view.pairs.iter().map(|(pair, total)| CanonicalPair::new(pair, total))),
        )?;
        out.serialize_field(
            "rows",
            &Seq(|| {
                view.rows.iter().map(|(key, row)| CanonicalRow {
                    origin: key.pair.origin.as_str(),
                    destination: key.pair.destination.as_str(),
                    period: Short::of(&key.pair.period),
                    citizenship: &key.citizenship,
                    sex: &key.sex,
                    age_band: &key.age_band,
                    sender: CanonicalSide::new(&row.sender),
                    receiver: CanonicalSide::new(&row.receiver),
                    reconciled: row.reconciled,
                    asymmetry_ppm: row.asymmetry.map(ppm),
                    flag: row.flag,
                })
            }),
        )?;
        out.serialize_field(
            "side_by_side",
            &Seq(|| {
                view.side_by_side.iter().map(|(key, entries)| CanonicalSideBySide {
                    cube: key.cube.as_str(),
                    period: key.period.to_string(),
                    dimensions: &key.dimensions,
                    entries: entries
                        .iter()
                        .map(|(publisher, entry)| CanonicalEntry {
                            publisher: publisher.to_string(),
                            reported: entry.reported.value(),
                            status: entry.reported.status(),
                            seq: entry.source.seq,
                            digest: hex(&entry.source.digest),
                        })
                        .collect(),
                })
            }),
        )?;
        out.serialize_field(
            "notes",
            &Seq(|| {
                view.notes.iter().map(|note| CanonicalNote {
                    origin: note.pair.map(|p| p.origin.to_string()),
                    destination: note.pair.map(|p| p.destination.to_string()),
                    period: note.pair.map(|p| p.period.to_string()),
                    text: &note.text,
                })
            }),
        )?;
        out.end()
    }
}

/// A ratio as rounded parts per million (saturating at the i64 range; NaN gives 0).
pub fn ppm(ratio: f64) -> i64 {
    (ratio * 1_000_000.0).round() as i64
}

#[derive(Serialize)]
struct CanonicalPair<'a> {
    origin: &'a str,
    destination: &'a str,
    period: Short,
    sender: CanonicalSideTotal<'a>,
    receiver: CanonicalSideTotal<'a>,
    reconciled: Option<u64>,
    reconciled_withheld: u64,
    asymmetry_ppm: Option<i64>,
    flag: bool,
    estimate: Option<u64>,
    estimate_lower: Option<u64>,
    estimate_upper: Option<u64>,
}

impl<'a> CanonicalPair<'a> {
    fn new(pair: &'a super::PairKey, total: &'a PairTotal) -> CanonicalPair<'a> {
        CanonicalPair {
            origin: pair.origin.as_str(),
            destination: pair.destination.as_str(),
            period: Short::of(&pair.period),
            sender: CanonicalSideTotal::new(&total.sender),
            receiver: CanonicalSideTotal::new(&total.receiver),
            reconciled: total.reconciled,
            reconciled_withheld: total.reconciled_withheld,
            asymmetry_ppm: total.asymmetry.map(ppm),
            flag: total.flag,
            estimate: total.estimate.map(|e| e.value),
            estimate_lower: total.estimate.map(|e| e.lower),
            estimate_upper: total.estimate.map(|e| e.upper),
        }
    }
}

#[derive(Serialize)]
struct CanonicalSideTotal<'a> {
    reported: Option<u64>,
    status: &'static str,
    withheld: u64,
    publisher: Option<&'a str>,
    seq: Option<u64>,
    digest: Option<Hex>,
}

impl<'a> CanonicalSideTotal<'a> {
    fn new(total: &'a SideTotal) -> CanonicalSideTotal<'a> {
        let (publisher, seq, digest) = source_fields(total.source.as_ref());
        CanonicalSideTotal {
            reported: total.reported.value(),
            status: total.reported.status(),
            withheld: total.withheld,
            publisher,
            seq,
            digest,
        }
    }
}

#[derive(Serialize)]
struct CanonicalRow<'a> {
    origin: &'a str,
    destination: &'a str,
    period: Short,
    citizenship: &'a str,
    sex: &'a str,
    age_band: &'a str,
    sender: CanonicalSide<'a>,
    receiver: CanonicalSide<'a>,
    reconciled: Option<u64>,
    asymmetry_ppm: Option<i64>,
    flag: bool,
}

#[derive(Serialize)]
struct CanonicalSide<'a> {
    reported: Option<u64>,
    status: &'static str,
    publisher: Option<&'a str>,
    seq: Option<u64>,
    digest: Option<Hex>,
}

impl<'a> CanonicalSide<'a> {
    fn new(side: &'a Side) -> CanonicalSide<'a> {
        let (publisher, seq, digest) = source_fields(side.source.as_deref());
        CanonicalSide {
            reported: side.reported.value(),
            status: side.reported.status(),
            publisher,
            seq,
            digest,
        }
    }
}

fn source_fields(source: Option<&Source>) -> (Option<&str>, Option<u64>, Option<Hex>) {
    match source {
        Some(s) => (Some(s.publisher.as_str()), Some(s.seq), Some(Hex::of(&s.digest))),
        None => (None, None, None),
    }
}

/// A digest in lower-case hex, encoded on the stack: the encoding writes two per row, and a
/// string allocated for each cost more than the hashing.
struct Hex([u8; 64]);

impl Hex {
    fn of(digest: &[u8; 32]) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in digest.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        Hex(out)
    }
}

impl Serialize for Hex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(&self.0).unwrap_or_default())
    }
}

/// A short text (a period) written on the stack.
struct Short {
    bytes: [u8; 16],
    len: usize,
}

impl Short {
    fn of(value: &impl std::fmt::Display) -> Short {
        use std::io::Write;
        let mut bytes = [0u8; 16];
        let mut cursor = std::io::Cursor::new(&mut bytes[..]);
        // A period is at most 7 bytes; anything longer is cut, never a panic.
        let _ = write!(cursor, "{value}");
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        Short { bytes, len }
    }
}

impl Serialize for Short {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default())
    }
}

#[derive(Serialize)]
struct CanonicalSideBySide<'a> {
    cube: &'static str,
    period: String,
    dimensions: &'a [String],
    entries: Vec<CanonicalEntry>,
}

#[derive(Serialize)]
struct CanonicalEntry {
    publisher: String,
    reported: Option<u64>,
    status: &'static str,
    seq: u64,
    digest: String,
}

#[derive(Serialize)]
struct CanonicalNote<'a> {
    origin: Option<String>,
    destination: Option<String>,
    period: Option<String>,
    text: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reconcile::test_support::*;
    use crate::domain::reconcile::{compute, render, Format, ViewFilter};
    use proptest::prelude::*;

    #[test]
    fn encoding_starts_with_format_and_rule() {
        let view = compute(&[flows(deu(), 1, &[out(fra(), "FRA", 10)])], &settings());
        let text = String::from_utf8(view.canonical_bytes()).unwrap();
        assert!(
            text.starts_with(r#"{"format":"accord-view/3","consortium":{"version":0,"digest":"0000000000000000000000000000000000000000000000000000000000000000"},"rule":"receiving","asymmetry_flag_ppm":200000,"#),
            "{text}"
        );
        assert!(!text.contains('.'), "no floats or decimals expected: {text}");
    }

    #[test]
    fn streamed_digest_is_sha256_of_the_canonical_bytes() {
        // Enough rows to cross the 64 KiB buffer between encoder and hash several times.
        let mut cells: Vec<_> = (0..2_000u64)
            .map(|i| {
                let age = format!("Y{i:04}");
                cell(
                    &["OUT", fra().as_str(), "SYR", "F", &age],
                    crate::domain::model::CellValue::Value(i + 1),
                )
            })
            .collect();
        cells.sort_by(|a, b| a.key.cmp(&b.key));
        let input = vec![flows_cells(deu(), 1, cells)];
        let view = compute(&input, &settings());
        let bytes = view.canonical_bytes();
        assert!(bytes.len() > 4 * 64 * 1024, "only {} bytes", bytes.len());
        let whole = ring::digest::digest(&SHA256, &bytes);
        assert_eq!(view.digest().as_slice(), whole.as_ref());
    }

    #[test]
    fn asymmetry_enters_as_ppm() {
        assert_eq!(ppm(-1.0 / 3.0), -333_333);
        assert_eq!(ppm(0.2), 200_000);
        assert_eq!(ppm(f64::NAN), 0);
    }

    #[test]
    fn a_changed_cell_changes_the_digest() {
        let base = vec![
            flows(deu(), 1, &[out(fra(), "FRA", 10)]),
            flows(fra(), 1, &[inn(deu(), "FRA", 9)]),
        ];
        let mut changed = base.clone();
        changed[1] = flows(fra(), 1, &[inn(deu(), "FRA", 8)]);
        let a = compute(&base, &settings()).digest();
        let b = compute(&changed, &settings()).digest();
        assert_ne!(a, b);
        assert_eq!(a, compute(&base, &settings()).digest());
    }

    #[test]
    fn the_rule_is_part_of_the_digest() {
        let input = vec![flows(deu(), 1, &[out(fra(), "FRA", 10)])];
        let mut other = settings();
        other.rule = crate::domain::consortium::Rule::Max;
        assert_ne!(compute(&input, &settings()).digest(), compute(&input, &other).digest());
    }

    fn arbitrary_cell() -> impl Strategy<Value = crate::domain::model::Cell> {
        let partners = prop::sample::select(vec![deu(), fra(), ita()]);
        let value = prop_oneof![
            (1u64..50).prop_map(crate::domain::model::CellValue::Value),
            Just(crate::domain::model::CellValue::Confidential)
        ];
        (any::<bool>(), partners, prop::sample::select(vec!["FRA", "SYR"]), value).prop_map(
            |(outgoing, partner, citizenship, value)| {
                let direction = if outgoing { "OUT" } else { "IN" };
                cell(&[direction, partner.as_str(), citizenship, "F", "Y20-24"], value)
            },
        )
    }

    fn arbitrary_inputs() -> impl Strategy<Value = Vec<crate::domain::dataset::AcceptedDataset>> {
        let one = (
            prop::sample::select(vec![deu(), fra(), ita()]),
            1u64..4,
            prop::collection::vec(arbitrary_cell(), 0..6),
        );
        prop::collection::vec(one, 1..7).prop_map(|sets| {
            let mut seen = std::collections::BTreeSet::new();
            sets.into_iter()
                // One dataset per (publisher, seq), as a valid feed guarantees.
                .filter(|(publisher, seq, _)| seen.insert((*publisher, *seq)))
                .map(|(publisher, seq, cells)| {
                    let cells: Vec<_> = cells.into_iter().filter(|c| c.key[1] != publisher.as_str()).collect();
                    flows_cells(publisher, seq, cells)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn order_of_inputs_never_matters(
            (inputs, shuffled) in arbitrary_inputs().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            let a = compute(&inputs, &settings());
            let b = compute(&shuffled, &settings());
            prop_assert_eq!(a.digest(), b.digest());
            let all = ViewFilter::default();
            prop_assert_eq!(render(&a, &all, Format::Json), render(&b, &all, Format::Json));
            prop_assert_eq!(render(&a, &all, Format::Csv), render(&b, &all, Format::Csv));
        }

        #[test]
        fn the_view_read_one_current_dataset_at_a_time_is_the_same_view(
            inputs in arbitrary_inputs().prop_shuffle()
        ) {
            // What a node does: keep only the latest revision of each (publisher, cube, period)
            // and hand the datasets over one by one, owned, in any order.
            let whole = compute(&inputs, &settings());
            let current: Vec<_> = inputs
                .iter()
                .filter(|a| {
                    whole.inputs.get(&(a.publisher, a.dataset.cube, a.dataset.period)).map(|s| s.digest)
                        == Some(a.digest)
                })
                .cloned()
                .collect();
            let streamed = super::super::compute_current(current.into_iter().rev(), &settings());
            prop_assert_eq!(&streamed, &whole);
            prop_assert_eq!(streamed.digest(), whole.digest());
        }

        #[test]
        fn changing_one_value_changes_the_digest(inputs in arbitrary_inputs(), bump in 1u64..5) {
            // Raise the first published value of the latest revision of the first dataset.
            let view = compute(&inputs, &settings());
            let target = inputs.iter().position(|a| {
                view.inputs.get(&(a.publisher, a.dataset.cube, a.dataset.period)).map(|s| s.digest) == Some(a.digest)
                    && a.dataset.cells.iter().any(|c| matches!(c.value, crate::domain::model::CellValue::Value(_)))
            });
            if let Some(index) = target {
                let mut changed = inputs.clone();
                let cell = changed[index].dataset.cells.iter_mut()
                    .find(|c| matches!(c.value, crate::domain::model::CellValue::Value(_))).unwrap();
                if let crate::domain::model::CellValue::Value(v) = cell.value {
                    cell.value = crate::domain::model::CellValue::Value(v + bump);
                }
                prop_assert_ne!(view.digest(), compute(&changed, &settings()).digest());
            }
        }
    }
}
