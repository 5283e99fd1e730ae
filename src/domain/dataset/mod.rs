//! Datasets and feeds (SPEC §4): what a country publishes, how it is encoded, signed and
//! verified, and how entries chain into an append-only feed per publisher. Pure: no I/O.

pub mod code;
pub mod codec;
pub mod envelope;
pub mod feed;
pub mod publish;
#[cfg(test)]
mod tests;
pub mod unreported;

pub use code::Code;
pub use codec::{DecodeError, EntryHeader, Subject};
pub use envelope::{verify, verify_at, Governance, Limits, VerifiedEntry, VerifyError};
pub use feed::{Head, Placement};
pub use unreported::{Scope, Unreported};

use crate::domain::consortium::{Definition, Disclosure};
use crate::domain::model::Country;
use crate::domain::model::{Cell, Cube, Period};

/// A dataset: one cube for one period from one publisher, after disclosure control.
/// Cells are sorted by key and unique.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub publisher: Country,
    pub cube: Cube,
    pub period: Period,
    pub definition: Definition,
    pub disclosure: Disclosure,
    pub cells: Vec<Cell>,
    /// What a `flows` dataset does not report (SPEC §2); empty for the other cubes.
    pub unreported: Unreported,
}

/// A dataset the node has accepted (verified, chained), with its provenance: the input the
/// common view is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedDataset {
    pub publisher: Country,
    pub seq: u64,
    /// SHA-256 of the signed entry header.
    pub digest: [u8; 32],
    pub dataset: Dataset,
}
