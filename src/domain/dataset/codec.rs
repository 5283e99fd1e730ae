//! Encoding of datasets and entry headers as protobuf (the `accord.v1` messages), and their
//! strict decoding: a decoded dataset is sane (known cube and dimension values, cells sorted
//! and unique, no value on a confidential cell) or it is an error. Verification
//! (`dataset::envelope`) is the only caller of the decoders for data from outside.

use prost::Message;

use super::{Dataset, Scope, Unreported};
use crate::domain::aggregate::margins;
use crate::domain::consortium::{Definition, Disclosure, UnknownDuration};
use crate::domain::model::Country;
use crate::domain::model::AGE_BANDS;
use crate::domain::model::{Cell, CellValue, Cube, Period};
use crate::domain::record::{Reason, Sex};
use crate::proto;

/// Why a dataset or header does not decode to something sane.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not the protobuf message expected.
    #[error("malformed {what}: {message}")]
    Malformed { what: &'static str, message: String },
    /// A field holds a value Accord does not know.
    #[error("{what}: {field}: invalid value {value:?}")]
    InvalidField {
        what: &'static str,
        field: &'static str,
        value: String,
    },
    /// Cells are out of order or repeated.
    #[error("dataset cells are not sorted and unique at cell {index}")]
    CellsUnsorted { index: usize },
    /// A confidential cell carries a value.
    #[error("dataset cell {index} is confidential but carries a value")]
    ValueOnConfidentialCell { index: usize },
    /// A cell has the wrong number or kind of dimension values.
    #[error("dataset cell {index}: {message}")]
    BadCell { index: usize, message: String },
}

/// What an entry carries: a dataset (SPEC §4) or a governance act (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Dataset {
        cube: Cube,
        period: Period,
    },
    /// A proposed next consortium document.
    Proposal,
    /// An approval of one consortium document for one version.
    Approval,
}

impl Subject {
    /// The `kind` field of the header.
    pub fn kind(self) -> &'static str {
        match self {
            Subject::Dataset { .. } => "",
            Subject::Proposal => "proposal",
            Subject::Approval => "approval",
        }
    }
}

/// The signed part of a feed entry (SPEC §4), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    pub publisher: Country,
    pub seq: u64,
    /// SHA-256 of the previous header's bytes; `None` for seq 1.
    pub prev: Option<[u8; 32]>,
    pub subject: Subject,
    pub created_at: i64,
    /// Members allowed the payload; empty = every member.
    pub audience: Vec<Country>,
    pub payload_sha256: [u8; 32],
    pub payload_size: u64,
}

impl EntryHeader {
    /// The dataset's cube and period; `None` for a governance entry.
    pub fn dataset(&self) -> Option<(Cube, Period)> {
        match self.subject {
            Subject::Dataset { cube, period } => Some((cube, period)),
            _ => None,
        }
    }

    /// Whether `member` may receive this entry's payload. The publisher always may.
    pub fn admits(&self, member: Country) -> bool {
        self.audience.is_empty() || member == self.publisher || self.audience.contains(&member)
    }

    pub fn encode(&self) -> Vec<u8> {
        let (cube, period) = match self.subject {
            Subject::Dataset { cube, period } => (cube.as_str().to_string(), period.to_string()),
            _ => (String::new(), String::new()),
        };
        proto::EntryHeader {
            publisher: self.publisher.to_string(),
            seq: self.seq,
            prev: self.prev.map(|p| p.to_vec()).unwrap_or_default(),
            cube,
            period,
            kind: self.subject.kind().to_string(),
            created_at: self.created_at,
            audience: self.audience.iter().map(|c| c.to_string()).collect(),
            payload_sha256: self.payload_sha256.to_vec(),
            payload_size: self.payload_size,
        }
        .encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<EntryHeader, DecodeError> {
        const WHAT: &str = "entry header";
        let h = proto::EntryHeader::decode(bytes).map_err(|e| DecodeError::Malformed {
            what: WHAT,
            message: e.to_string(),
        })?;
        let bad = |field, value: &str| DecodeError::InvalidField {
            what: WHAT,
            field,
            value: value.to_string(),
        };
        let publisher = Country::parse(&h.publisher)
            .filter(|c| c.is_iso())
            .ok_or_else(|| bad("publisher", &h.publisher))?;
        if h.seq == 0 {
            return Err(bad("seq", "0"));
        }
        let prev = match (h.seq, h.prev.len()) {
            (1, 0) => None,
            (1, _) => return Err(bad("prev", "set on seq 1")),
            (_, 32) => Some(h.prev.as_slice().try_into().map_err(|_| bad("prev", "length"))?),
            (_, n) => return Err(bad("prev", &format!("{n} bytes"))),
        };
        let subject = match h.kind.as_str() {
            "" => Subject::Dataset {
                cube: Cube::parse(&h.cube).ok_or_else(|| bad("cube", &h.cube))?,
                period: Period::parse(&h.period).ok_or_else(|| bad("period", &h.period))?,
            },
            kind @ ("proposal" | "approval") => {
                if !h.cube.is_empty() {
                    return Err(bad("cube", &h.cube));
                }
                if !h.period.is_empty() {
                    return Err(bad("period", &h.period));
                }
                if !h.audience.is_empty() {
                    return Err(bad("audience", "set on a governance entry: every member receives it"));
                }
                if kind == "proposal" {
                    Subject::Proposal
                } else {
                    Subject::Approval
                }
            }
            other => return Err(bad("kind", other)),
        };
        let mut audience = Vec::with_capacity(h.audience.len());
        for a in &h.audience {
            let c = Country::parse(a)
                .filter(|c| c.is_iso())
                .ok_or_else(|| bad("audience", a))?;
            if audience.contains(&c) {
                return Err(bad("audience", a));
            }
            audience.push(c);
        }
        let payload_sha256 = h
            .payload_sha256
            .as_slice()
            .try_into()
            .map_err(|_| bad("payload_sha256", &format!("{} bytes", h.payload_sha256.len())))?;
        Ok(EntryHeader {
            publisher,
            seq: h.seq,
            prev,
            subject,
            created_at: h.created_at,
            audience,
            payload_sha256,
            payload_size: h.payload_size,
        })
    }
}

impl Dataset {
    pub fn encode(&self) -> Vec<u8> {
        let (threshold, max_noise, variance, small_count) = match self.disclosure {
            Disclosure::Threshold { k } => (k, 0, 0.0, 0),
            Disclosure::CellKey {
                max_noise,
                variance,
                small_count,
            } => (0, max_noise, variance, small_count),
            Disclosure::None => (0, 0, 0.0, 0),
        };
        proto::Dataset {
            publisher: self.publisher.to_string(),
            cube: self.cube.as_str().to_string(),
            period: self.period.to_string(),
            definition: Some(proto::Definition {
                min_duration_months: self.definition.min_duration_months,
                unknown_duration: self.definition.unknown_duration.as_str().to_string(),
            }),
            disclosure: Some(proto::Disclosure {
                method: self.disclosure.method().to_string(),
                threshold,
                max_noise,
                variance,
                small_count,
            }),
            dimensions: self.cube.dimensions().iter().map(|d| d.to_string()).collect(),
            cells: self
                .cells
                .iter()
                .map(|c| proto::Cell {
                    key: c.key.clone(),
                    value: match c.value {
                        CellValue::Value(v) => v,
                        CellValue::Confidential => 0,
                    },
                    confidential: c.value == CellValue::Confidential,
                })
                .collect(),
            unreported: self
                .unreported
                .entries()
                .into_iter()
                .map(|(direction, partners)| proto::Unreported {
                    direction: direction.to_string(),
                    partners: partners.iter().map(Country::to_string).collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes and checks a dataset payload. `max_cells` bounds the work a peer can cause.
    pub fn decode(bytes: &[u8], max_cells: usize) -> Result<Dataset, DecodeError> {
        const WHAT: &str = "dataset";
        let d = proto::Dataset::decode(bytes).map_err(|e| DecodeError::Malformed {
            what: WHAT,
            message: e.to_string(),
        })?;
        let bad = |field, value: &str| DecodeError::InvalidField {
            what: WHAT,
            field,
            value: value.to_string(),
        };
        let publisher = Country::parse(&d.publisher)
            .filter(|c| c.is_iso())
            .ok_or_else(|| bad("publisher", &d.publisher))?;
        let cube = Cube::parse(&d.cube).ok_or_else(|| bad("cube", &d.cube))?;
        let period = Period::parse(&d.period).ok_or_else(|| bad("period", &d.period))?;
        let def = d.definition.ok_or_else(|| bad("definition", "missing"))?;
        let definition = Definition {
            min_duration_months: def.min_duration_months,
            unknown_duration: UnknownDuration::parse(&def.unknown_duration)
                .ok_or_else(|| bad("definition.unknown_duration", &def.unknown_duration))?,
        };
        let dis = d.disclosure.ok_or_else(|| bad("disclosure", "missing"))?;
        let disclosure = match dis.method.as_str() {
            "threshold" if dis.threshold >= 1 => Disclosure::Threshold { k: dis.threshold },
            "cell-key" if dis.max_noise >= 1 && dis.variance > 0.0 => Disclosure::CellKey {
                max_noise: dis.max_noise,
                variance: dis.variance,
                small_count: dis.small_count,
            },
            "none" => Disclosure::None,
            other => return Err(bad("disclosure.method", other)),
        };
        if d.dimensions
            .iter()
            .map(String::as_str)
            .ne(cube.dimensions().iter().copied())
        {
            return Err(bad("dimensions", &d.dimensions.join(",")));
        }
        if d.cells.len() > max_cells {
            return Err(DecodeError::BadCell {
                index: max_cells,
                message: format!("more than {max_cells} cells (limit max_cells)"),
            });
        }
        let unreported = decode_unreported(publisher, cube, &d.unreported)?;
        let mut cells: Vec<Cell> = Vec::with_capacity(d.cells.len());
        for (index, c) in d.cells.into_iter().enumerate() {
            check_key(cube, &c.key).map_err(|message| DecodeError::BadCell { index, message })?;
            if unreported.covers_key(&c.key) {
                return Err(DecodeError::BadCell {
                    index,
                    message: format!("{} is inside what the dataset declares unreported", c.key.join(",")),
                });
            }
            if c.confidential && c.value != 0 {
                return Err(DecodeError::ValueOnConfidentialCell { index });
            }
            if let Some(last) = cells.last() {
                if last.key >= c.key {
                    return Err(DecodeError::CellsUnsorted { index });
                }
            }
            let value = if c.confidential {
                CellValue::Confidential
            } else {
                CellValue::Value(c.value)
            };
            cells.push(Cell { key: c.key, value });
        }
        Ok(Dataset {
            publisher,
            cube,
            period,
            definition,
            disclosure,
            cells,
            unreported,
        })
    }
}

/// Decodes the unreported scope (SPEC §2), refusing anything but its canonical form: only on
/// `flows`, IN before OUT and each once, partners real countries other than the publisher,
/// sorted and unique. A peer can therefore not send two encodings of one declaration.
fn decode_unreported(publisher: Country, cube: Cube, entries: &[proto::Unreported]) -> Result<Unreported, DecodeError> {
    let bad = |value: String| DecodeError::InvalidField {
        what: "dataset",
        field: "unreported",
        value,
    };
    if !entries.is_empty() && cube != Cube::Flows {
        return Err(bad(format!("{} entries on a {cube} dataset", entries.len())));
    }
    let mut unreported = Unreported::none();
    let mut last: Option<&str> = None;
    for entry in entries {
        let direction = entry.direction.as_str();
        let in_order = matches!((last, direction), (None, "IN" | "OUT") | (Some("IN"), "OUT"));
        if !in_order {
            return Err(bad(format!(
                "direction {direction:?} out of order, repeated or unknown"
            )));
        }
        last = Some(direction);
        let mut partners = std::collections::BTreeSet::new();
        for (i, code) in entry.partners.iter().enumerate() {
            let partner = Country::parse(code)
                .filter(|c| c.is_iso() && *c != publisher)
                .ok_or_else(|| bad(format!("{direction} partner {code:?}")))?;
            if i > 0 && entry.partners[i - 1] >= *code {
                return Err(bad(format!("{direction} partners not sorted and unique at {code:?}")));
            }
            partners.insert(partner);
        }
        let scope = if partners.is_empty() {
            Scope::All
        } else {
            Scope::Partners(partners)
        };
        match direction {
            "IN" => unreported.inbound = scope,
            _ => unreported.outbound = scope,
        }
    }
    Ok(unreported)
}

/// Checks one cell key against its cube's dimensions.
fn check_key(cube: Cube, key: &[String]) -> Result<(), String> {
    let dims = cube.dimensions();
    if key.len() != dims.len() {
        return Err(format!("{} dimension values, expected {}", key.len(), dims.len()));
    }
    for (name, value) in dims.iter().zip(key) {
        // A margin holds the total code in a breakdown dimension (SPEC §3).
        let breakdown = !matches!(*name, "direction" | "partner");
        let ok = (breakdown && value == margins::TOTAL)
            || match *name {
                "direction" => value == "IN" || value == "OUT",
                "partner" | "citizenship" => Country::parse(value).is_some(),
                "sex" => Sex::parse(value).is_some(),
                "age_band" => AGE_BANDS.contains(&value.as_str()),
                "reason" => !value.is_empty() && Reason::parse(value).is_some(),
                _ => false,
            };
        if !ok {
            return Err(format!("{name}: invalid value {value:?}"));
        }
    }
    Ok(())
}
