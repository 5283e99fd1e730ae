//! Hand-built accepted datasets for the reconcile tests. Test code only.

use ring::digest::{digest, SHA256};

use crate::domain::consortium::{
    Consortium, Definition, Disclosure, Estimates, Measurement, Member, Reconcile, SharingDefault, SigningKey,
};
use crate::domain::dataset::{AcceptedDataset, Dataset};
use crate::domain::model::Country;
use crate::domain::model::{Cell, CellValue, Cube, Period};

pub fn country(code: &str) -> Country {
    Country::parse(code).unwrap()
}

pub fn deu() -> Country {
    country("DEU")
}

pub fn fra() -> Country {
    country("FRA")
}

pub fn ita() -> Country {
    country("ITA")
}

pub fn year() -> Period {
    Period::Year(2024)
}

/// Receiving rule, flag above 0.2.
pub fn settings() -> Reconcile {
    Reconcile::default()
}

pub fn cell(key: &[&str], value: CellValue) -> Cell {
    Cell {
        key: key.iter().map(|s| s.to_string()).collect(),
        value,
    }
}

/// An OUT cell towards `partner` (sex F, age Y20-24).
pub fn out(partner: Country, citizenship: &str, value: u64) -> Cell {
    cell(
        &["OUT", partner.as_str(), citizenship, "F", "Y20-24"],
        CellValue::Value(value),
    )
}

/// An IN cell from `partner` (sex F, age Y20-24).
pub fn inn(partner: Country, citizenship: &str, value: u64) -> Cell {
    cell(
        &["IN", partner.as_str(), citizenship, "F", "Y20-24"],
        CellValue::Value(value),
    )
}

/// A confidential flows cell (sex F, age Y20-24).
pub fn confidential(direction: &str, partner: Country, citizenship: &str) -> Cell {
    cell(
        &[direction, partner.as_str(), citizenship, "F", "Y20-24"],
        CellValue::Confidential,
    )
}

/// A deterministic stand-in for the entry header digest.
pub fn fake_digest(publisher: Country, seq: u64, cube: Cube, period: Period) -> [u8; 32] {
    let mut out = [0u8; 32];
    let text = format!("{publisher}/{seq}/{cube}/{period}");
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

/// Any dataset; cells are sorted and made unique by key (first wins), as datasets are.
pub fn dataset(publisher: Country, seq: u64, cube: Cube, period: Period, mut cells: Vec<Cell>) -> AcceptedDataset {
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    cells.dedup_by(|later, earlier| later.key == earlier.key);
    AcceptedDataset {
        publisher,
        seq,
        digest: fake_digest(publisher, seq, cube, period),
        dataset: Dataset {
            publisher,
            cube,
            period,
            definition: Definition::default(),
            disclosure: Disclosure::default(),
            cells,
            unreported: Default::default(),
        },
    }
}

/// A 2024 flows dataset.
pub fn flows(publisher: Country, seq: u64, cells: &[Cell]) -> AcceptedDataset {
    flows_cells(publisher, seq, cells.to_vec())
}

pub fn flows_cells(publisher: Country, seq: u64, cells: Vec<Cell>) -> AcceptedDataset {
    dataset(publisher, seq, Cube::Flows, year(), cells)
}

/// A member with a placeholder key (the views here are computed, never verified).
pub fn member(code: &str, measurement: Measurement) -> Member {
    Member {
        country: country(code),
        keys: vec![SigningKey {
            public_key: [0; 32],
            valid_from: 0,
            valid_until: None,
            retired_after_seq: None,
        }],
        measurement,
    }
}

/// A test consortium of `members` (default measurement classes) asking for `estimates`.
pub fn consortium(members: &[&str], estimates: Estimates) -> Consortium {
    Consortium {
        name: "test".into(),
        test_only: true,
        definition: Default::default(),
        disclosure: Default::default(),
        reconcile: Default::default(),
        quorum: Default::default(),
        sharing: SharingDefault::All,
        agreements: Vec::new(),
        forks: Vec::new(),
        estimates,
        members: members.iter().map(|c| member(c, Measurement::default())).collect(),
    }
}
