//! The node's attestations (SPEC §12): signing its own after each sync round that changed what
//! it holds (and at least every ten minutes), keeping the latest of every member, checked, and
//! naming in `status` the members that attested the very view it computes.

use super::{Node, NodeError};
use crate::domain::attest::check::MAX_NOTE_BYTES;
use crate::domain::attest::{check, open, Attestation, CheckError, Fork};
use crate::domain::model::Country;
use crate::io::store::StoreError;

/// A node re-attests an unchanged state after this long.
pub const REATTEST_SECS: i64 = 600;
/// How far ahead of this node's clock an attestation's time may be.
const MAX_AHEAD_SECS: i64 = 300;

impl Node {
    /// This node's attestation of what it holds and computes now (SPEC §12): the consortium
    /// version in force, every feed head, the view digest and the time, as a C2SP signed note
    /// under its signing key.
    pub fn attestation(&self, now: i64) -> Result<String, NodeError> {
        let attestation = self.attested_state(now)?;
        let name = Attestation::key_name(self.country());
        crate::domain::attest::sign(&attestation.text(), &name, &self.signing)
            .map_err(|e| NodeError::Request(format!("attestation: {e}")))
    }

    /// What this node would attest at `time`.
    fn attested_state(&self, time: i64) -> Result<Attestation, NodeError> {
        let in_force = self.governance();
        let current = in_force.current();
        let mut forks: Vec<Fork> = Vec::new();
        for f in self.store.forks()? {
            // One fork per publisher: the earliest seq, where its entries leave the view.
            match forks.last_mut() {
                Some(last) if last.publisher == f.publisher => {}
                _ => forks.push(Fork {
                    publisher: f.publisher,
                    seq: f.seq,
                    held: f.held,
                    conflicting: f.conflicting,
                }),
            }
        }
        Ok(Attestation {
            member: self.country(),
            consortium_version: current.version,
            consortium_digest: current.digest,
            heads: self
                .store
                .heads()?
                .into_iter()
                .map(|(publisher, head)| (publisher, head.seq, head.digest))
                .collect(),
            forks,
            view: self.view_digest()?,
            time,
        })
    }

    /// Signs and keeps this node's attestation when its state changed since the last one (or
    /// that one is older than [`REATTEST_SECS`]). Returns whether it signed.
    pub fn attest_if_changed(&self, now: i64) -> Result<bool, NodeError> {
        let _one_at_a_time = self.attesting.lock().unwrap_or_else(|p| p.into_inner());
        let mut time = now;
        if let Some(held) = self.store.attestation(self.country())? {
            if let Some(a) = open(&held).ok().and_then(|(text, _)| Attestation::parse(text).ok()) {
                let same = self.attested_state(a.time)? == a;
                if same && now - a.time < REATTEST_SECS {
                    return Ok(false);
                }
                // Each attestation is later than the last, so peers (which keep the latest by
                // time) never mistake a new state for an old one made in the same second.
                time = time.max(a.time + 1);
            }
        }
        let state = self.attested_state(time)?;
        let note = crate::domain::attest::sign(&state.text(), &Attestation::key_name(self.country()), &self.signing)
            .map_err(|e| NodeError::Request(format!("attestation: {e}")))?;
        self.store.set_attestation(self.country(), &note)?;
        self.witness(&state, &note)?;
        Ok(true)
    }

    /// Checks a member's attestation from a peer and keeps it if newer than the one held: the
    /// note must parse, name a member of the version in force, and be signed under that
    /// member's key valid at the attested time. This node's own attestations are its own to
    /// write.
    pub fn accept_attestation(&self, note: &str) -> Result<bool, String> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(CheckError::TooLarge(note.len()).to_string());
        }
        let (text, _) = open(note).map_err(|e| e.to_string())?;
        let claimed = Attestation::parse(text).map_err(|e| e.to_string())?;
        if claimed.member == self.country() {
            return Ok(false);
        }
        let _one_at_a_time = self.attesting.lock().unwrap_or_else(|p| p.into_inner());
        // Every peer relays every member's latest note, so most notes a pull reads are ones
        // this node holds already: a note not newer than the one held changes nothing, and is
        // dropped before its signature is checked.
        let held = self.store.attestation(claimed.member).map_err(|e| e.to_string())?;
        let held_time = held
            .as_deref()
            .and_then(|h| open(h).ok())
            .and_then(|(t, _)| Attestation::parse(t).ok())
            .map(|h| h.time);
        if held_time.is_some_and(|t| t >= claimed.time) {
            return Ok(false);
        }
        if claimed.time > crate::domain::date::unix_now() + MAX_AHEAD_SECS {
            return Err(format!("{}: attested time is in the future", claimed.member));
        }
        let (a, note) = check(note, &self.consortium()).map_err(|e| e.to_string())?;
        // A member attests what it holds, so after the entries it names were created: a note
        // dated earlier (a retired key signing "within its window") is refused.
        let newest = self
            .heads_held(&a)
            .map_err(|e| e.to_string())?
            .iter()
            .map(|h| h.2)
            .max();
        if newest.is_some_and(|c| a.time.saturating_add(MAX_AHEAD_SECS) < c) {
            return Err(format!(
                "{}: attested before the entries it names were created",
                a.member
            ));
        }
        self.store.set_attestation(a.member, &note).map_err(|e| e.to_string())?;
        self.witness(&a, &note).map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Records `a` as the witness of every entry it names by another publisher that this node
    /// holds too (same digest at that seq) and had no witness for yet: the first attestation by
    /// someone other than the publisher bounds when the entry existed (SPEC §12).
    /// A note attested before the entry it names was created (by the publisher's own signed
    /// word) contradicts itself and witnesses nothing.
    fn witness(&self, a: &Attestation, note: &str) -> Result<(), StoreError> {
        for (publisher, seq, created_at) in self.heads_held(a)? {
            if publisher != a.member && a.time >= created_at {
                self.store.witness(publisher, seq, a.member, a.time, note)?;
            }
        }
        Ok(())
    }

    /// The heads `a` names that this node holds too (same digest at that seq), with each
    /// entry's `created_at`.
    fn heads_held(&self, a: &Attestation) -> Result<Vec<(Country, u64, i64)>, StoreError> {
        let mut out = Vec::new();
        for &(publisher, seq, digest) in &a.heads {
            if let Some((held, created_at)) = self.store.header_facts(publisher, seq)? {
                if held == digest {
                    out.push((publisher, seq, created_at));
                }
            }
        }
        Ok(out)
    }

    /// Headers a member's attestation names that conflict with what this node holds, for
    /// publishers it has no fork evidence against yet: a head at a seq this node holds with
    /// another digest, or either side of a fork the member found. Sync fetches them from the
    /// peer that relayed the note, as evidence (SPEC §12). Seqs past this node's head are left
    /// to the ordinary pull.
    pub fn evidence_wanted(&self, note: &str) -> Result<Vec<(Country, u64, [u8; 32])>, StoreError> {
        let Some(a) = open(note).ok().and_then(|(text, _)| Attestation::parse(text).ok()) else {
            return Ok(Vec::new());
        };
        let named = a.heads.iter().map(|&(p, s, d)| (p, s, d)).chain(
            a.forks
                .iter()
                .flat_map(|f| [(f.publisher, f.seq, f.held), (f.publisher, f.seq, f.conflicting)]),
        );
        let mut wanted = Vec::new();
        for (publisher, seq, digest) in named {
            if seq == 0 || self.store.holds_fork_evidence(publisher)? {
                continue;
            }
            let held = self.store.header_digest(publisher, seq)?;
            if held.is_some_and(|h| h != digest) && !wanted.iter().any(|w: &(Country, u64, [u8; 32])| w.0 == publisher)
            {
                wanted.push((publisher, seq, digest));
            }
        }
        Ok(wanted)
    }

    /// The members whose latest attestation carries this node's view digest and consortium
    /// version (this node included, once it has attested its current view).
    pub fn attested_by(&self) -> Result<Vec<String>, NodeError> {
        self.attesting_view(&self.view_digest()?)
    }

    /// The members whose latest attestation carries view digest `view` under the consortium
    /// version in force.
    pub(super) fn attesting_view(&self, view: &[u8; 32]) -> Result<Vec<String>, NodeError> {
        let version = self.governance().current().digest;
        Ok(self
            .attestations_of(view, &version)?
            .into_iter()
            .map(|(member, _)| member.to_string())
            .collect())
    }

    /// The latest note of every member that attests view digest `view` under consortium
    /// digest `version`, by member.
    pub(super) fn attestations_of(
        &self,
        view: &[u8; 32],
        version: &[u8; 32],
    ) -> Result<Vec<(Country, String)>, StoreError> {
        Ok(self
            .store
            .attestations()?
            .into_iter()
            .filter(|(member, note)| {
                open(note)
                    .ok()
                    .and_then(|(text, _)| Attestation::parse(text).ok())
                    .is_some_and(|a| a.member == *member && a.view == *view && a.consortium_digest == *version)
            })
            .collect())
    }
}
