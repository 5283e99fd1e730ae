//! Consortium governance (SPEC §11): the consortium document as versioned state that every
//! member computes alike. Version 1 (genesis) is the `consortium.toml` each member starts from;
//! a version is named by its number and the SHA-256 of its canonical encoding
//! ([`document::canonical_toml`]), so two members can tell at a glance whether they apply the
//! same document, and the view records the version it was computed under.
//!
//! Later versions come from signed proposals and a quorum of approvals in the members' feeds;
//! [`versions`] decides, as a pure function of those entries, which version is in force.

pub mod document;
pub mod versions;

pub use document::{canonical_toml, digest};
pub use versions::{in_force, Approval, Equivocation, InForce, Pending, Proposal, Version, Vote};

#[cfg(test)]
mod tests;
