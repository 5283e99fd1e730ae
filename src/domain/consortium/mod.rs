//! The consortium (SPEC §7, §11): its policy (`policy`: the harmonised definition, disclosure,
//! reconciliation, quorum, sharing, members and their signing keys; `measurement`: what the
//! members agree about each other's registers for the estimates, SPEC §15), its canonical document and
//! digest (`document`), its TOML parsed section by section (`parse`), and which version of it
//! is in force (`versions`), all as pure functions every member computes alike. `io::config`
//! reads the file; the node keeps the versions in its feeds (`node::governance`).
//!
//! Version 1 (genesis) is the `consortium.toml` each member starts from; a version is named by
//! its number and the SHA-256 of its canonical encoding ([`document::canonical_toml`]), so two
//! members can tell at a glance whether they apply the same document, and the view records the
//! version it was computed under. Later versions come from signed proposals and a quorum of
//! approvals in the members' feeds; [`versions`] decides, as a pure function of those entries,
//! which version is in force.

pub mod document;
pub mod measurement;
mod parse;
pub mod policy;
pub mod versions;

pub use document::{canonical_toml, digest};
pub use measurement::{Accuracy, EstimateMethod, Estimates, Measurement, Register, Undercount, DURATION_RULES};
pub(crate) use parse::parse_public_key;
pub use policy::{
    Agreement, BranchKept, Consortium, Definition, Disclosure, Member, Quorum, Reconcile, Rule, SharingDefault,
    SigningKey, UnknownDuration,
};
pub use versions::{in_force, Approval, InForce, Proposal, Version, Vote};

#[cfg(test)]
mod tests;
