//! `accord certify` on the node: gathers the view, the entries it is built from, the
//! attestations over its digest and the witnesses of its entries, and hands them to
//! [`crate::io::certify::write`].

use std::collections::BTreeMap;
use std::path::Path;

use super::{Node, NodeError};
use crate::domain::model::Country;
use crate::io::certify::{Certified, Written};
use crate::proto;

/// What `certify` wrote, with the view it certified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifySummary {
    pub written: Written,
    pub view_digest: [u8; 32],
    pub attested_by: Vec<String>,
}

impl Node {
    /// Writes a certified bundle of the view this node computes into the new directory `out`.
    /// The node first attests its current state, so its own attestation is in the bundle.
    pub fn certify(&self, out: &Path) -> Result<CertifySummary, NodeError> {
        let now = crate::domain::date::unix_now();
        self.attest_if_changed(now)?;
        let (view, view_digest) = self.view_and_digest()?;
        let in_force = self.governance();
        let version = in_force.current();

        let mut entries: BTreeMap<(Country, u64), proto::Entry> = BTreeMap::new();
        let mut witnesses: BTreeMap<(Country, i64), String> = BTreeMap::new();
        for source in view.inputs.values() {
            let (publisher, seq) = (source.publisher, source.seq);
            let entry = self.store.entry(publisher, seq)?.ok_or_else(|| {
                NodeError::Request(format!("{publisher} seq {seq}: in the view but not in the store"))
            })?;
            entries.insert((publisher, seq), entry);
            if let Some(w) = self.store.witnessed(publisher, seq)? {
                // The headers from the entry to the seq the witness names, so the chain can be
                // followed offline; their payloads prove nothing here and stay out.
                for later in seq + 1..=w.named_seq {
                    if entries.contains_key(&(publisher, later)) {
                        continue;
                    }
                    if let Some(mut header) = self.store.entry(publisher, later)? {
                        header.payload.clear();
                        header.has_payload = false;
                        entries.insert((publisher, later), header);
                    }
                }
                witnesses.insert((w.by, w.time), w.note);
            }
        }
        let attestations = self.attestations_of(&view_digest, &version.digest)?;
        let attested_by = attestations.iter().map(|(m, _)| m.to_string()).collect();
        let written = crate::io::certify::write(
            out,
            &Certified {
                member: self.country(),
                view: &view,
                view_digest,
                consortium_version: version.version,
                consortium_digest: version.digest,
                document: crate::domain::consortium::canonical_toml(&version.document),
                entries: entries.into_values().collect(),
                attestations,
                witnesses: witnesses
                    .into_iter()
                    .map(|((by, time), note)| (by, time, note))
                    .collect(),
                now,
            },
        )?;
        Ok(CertifySummary {
            written,
            view_digest,
            attested_by,
        })
    }
}
