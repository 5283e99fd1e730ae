//! The node's side of consortium governance (SPEC §11): the proposals and approvals it holds,
//! the version in force computed from them (`governance::in_force`, pure), and signing its own.
//!
//! Everything the node applies (members, keys, disclosure, reconciliation) comes from the
//! version in force, read through [`Node::consortium`](super::Node::consortium). When an
//! accepted entry changes that version, the node switches at once: later entries verify under
//! the new version, and the index of current datasets is rebuilt under it (an entry whose
//! publisher or key the new version no longer has is left out of the view and named).
//!
//! A governance entry by a member that a proposal would add (its approval of the version that
//! adds it) cannot verify under the version in force; governance entries arriving are therefore
//! checked against the version in force plus the members added by the one proposal that has the
//! current members' quorum and waits only for them, under the keys that proposal gives them
//! (members in force sign under their keys in force, as for datasets). A proposal without that
//! quorum fixes no key, so no member can claim a member-to-be's feed by proposing first.
//!
//! What counts is a pure function of the governance entries held: each is kept only whole
//! (never as a header alone), within [`MAX_VOTES_PER_VERSION`] per member and version, and
//! counted once by its place in its feed, so the version in force does not depend on the order
//! or the split in which entries arrived, nor on whether the node restarted since.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::consortium::{in_force, InForce, Vote};
use crate::domain::consortium::{Consortium, Member};
use crate::domain::dataset::{Governance as Act, Limits, VerifiedEntry, VerifyError};
use crate::domain::model::Country;
use crate::io::store::Store;
use crate::proto;

/// Largest proposed document accepted: a consortium of 200 members with a few keys each is
/// some 60 KB of TOML.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Governance entries one member may add for one version: a proposal, an approval, and a
/// second document as proof of equivocation, with room to spare. More is refused, so a member
/// signing votes in a loop cannot grow every store and every recomputation.
pub const MAX_VOTES_PER_VERSION: usize = 4;
/// How far past the version in force a vote may look: a node a few versions behind still
/// takes the votes it will need, but no member can fill stores with votes on far versions.
pub const MAX_VERSIONS_AHEAD: u64 = 16;

/// What the node holds of governance.
pub(super) struct Governance {
    state: Mutex<State>,
    /// Held while a governance entry is checked against the bounds, placed and counted, so two
    /// entries arriving at once cannot both pass the bound the other would have hit.
    placing: Mutex<()>,
}

struct State {
    genesis: Consortium,
    /// Every vote held, by voter and the seq of its entry: an entry is one vote however often
    /// it arrives, and what counts does not depend on the order in which entries came.
    held: BTreeMap<(Country, u64), Vote>,
    in_force: Arc<InForce>,
    consortium: Arc<Consortium>,
    /// The version in force with the members that a quorum-approved proposal adds, under the
    /// keys that proposal gives them: what governance entries are verified against.
    widened: Arc<Consortium>,
}

impl State {
    fn new(genesis: Consortium) -> State {
        let in_force = Arc::new(in_force(&genesis, &[]));
        let consortium = Arc::new(genesis.clone());
        State {
            widened: consortium.clone(),
            genesis,
            held: BTreeMap::new(),
            in_force,
            consortium,
        }
    }

    /// Holds `vote`; false when its entry was held already.
    fn hold(&mut self, vote: Vote) -> bool {
        let key = (vote.voter(), vote.seq());
        if self.held.contains_key(&key) {
            return false;
        }
        self.held.insert(key, vote);
        true
    }

    /// Recomputes the version in force from the votes that count; true when it changed.
    fn recompute(&mut self) -> bool {
        let before = self.in_force.current().digest;
        let votes = counted(&self.held);
        self.in_force = Arc::new(in_force(&self.genesis, &votes));
        let current = self.in_force.current();
        self.consortium = Arc::new(current.document.clone());
        self.widened = Arc::new(widen(&current.document, &self.in_force, &votes));
        current.digest != before
    }

    /// How many of `member`'s held votes are on `version`.
    fn votes_on(&self, member: Country, version: u64) -> usize {
        self.held
            .range((member, 0)..=(member, u64::MAX))
            .filter(|(_, v)| v.version() == version)
            .count()
    }
}

/// The votes that count: per member and version, the first [`MAX_VOTES_PER_VERSION`] in the
/// member's feed order. A node refuses to keep more than that, so on a node that kept them
/// all this is every vote; on a store that holds more (an older node kept them), it is the same
/// choice every node makes, whatever order the entries arrived in.
fn counted(held: &BTreeMap<(Country, u64), Vote>) -> Vec<Vote> {
    let mut per: BTreeMap<(Country, u64), usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(held.len());
    // `held` iterates by (voter, seq): feed order within each member.
    for vote in held.values() {
        let n = per.entry((vote.voter(), vote.version())).or_default();
        if *n < MAX_VOTES_PER_VERSION {
            *n += 1;
            out.push(vote.clone());
        }
    }
    out
}

/// `base` with the members that a proposal for the next version adds, once that proposal has
/// the quorum of `base`'s members and waits only for the members it adds: under the keys that
/// proposal gives them, so they can sign their approval. A proposal without that quorum fixes
/// no key (any member can propose anything), so nobody can claim a member-to-be's feed by
/// proposing a document first. Every quorum is more than half, so at most one proposal
/// qualifies. Members of `base` sign governance entries under their keys there, as they sign
/// datasets, so a key `base` retired cannot take a seq in its feed through a proposal.
fn widen(base: &Consortium, in_force: &InForce, votes: &[Vote]) -> Consortium {
    let mut out = base.clone();
    for pending in in_force.pending.iter().filter(|p| p.needed == 0) {
        let document = votes.iter().find_map(|v| match v {
            Vote::Proposal(p)
                if p.version == pending.version && crate::domain::consortium::digest(&p.document) == pending.digest =>
            {
                Some(&p.document)
            }
            _ => None,
        });
        for member in document.into_iter().flat_map(|d| &d.members) {
            if out.member(member.country).is_none() {
                out.members.push(member.clone());
            }
        }
    }
    out
}

/// Every key any of `documents` ever gave each member, with no window or retirement: what
/// entries already in the store are checked against when read back. They were accepted under
/// the stricter rules on arrival; this only finds the key that signed each, and whether that
/// key counts for the version voted on is `in_force`'s to judge.
fn keyring<'a>(documents: impl IntoIterator<Item = &'a Consortium>) -> Consortium {
    let mut documents = documents.into_iter();
    let mut out = documents.next().cloned().expect("genesis comes first");
    let open = |k: &crate::domain::consortium::SigningKey| crate::domain::consortium::SigningKey {
        public_key: k.public_key,
        valid_from: i64::MIN,
        valid_until: None,
        retired_after_seq: None,
    };
    for member in &mut out.members {
        member.keys = member.keys.iter().map(open).collect();
    }
    for document in documents {
        for member in &document.members {
            match out.members.iter_mut().find(|m| m.country == member.country) {
                Some(held) => {
                    for key in &member.keys {
                        if !held.keys.iter().any(|k| k.public_key == key.public_key) {
                            held.keys.push(open(key));
                        }
                    }
                }
                None => out.members.push(Member {
                    country: member.country,
                    keys: member.keys.iter().map(open).collect(),
                    measurement: member.measurement,
                }),
            }
        }
    }
    out
}

/// A proposal's document, parsed as the node parses every proposal it verifies or signs
/// (bounded by [`MAX_DOCUMENT_BYTES`] first); an error names what is wrong with it. Public so
/// the fuzz target reaches this very function.
pub fn parse_document(text: &str) -> Result<Consortium, String> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the proposed document is {} bytes, over the limit of {MAX_DOCUMENT_BYTES}",
            text.len()
        ));
    }
    Consortium::parse(Path::new("proposed consortium document"), text).map_err(|e| e.to_string())
}

/// The vote a verified governance entry casts. `Ok(None)` for a dataset, or a governance entry
/// held without its payload.
pub(super) fn vote_of(v: &VerifiedEntry) -> Result<Option<Vote>, VerifyError> {
    let h = v.header();
    let Some(act) = v.governance() else {
        return Ok(None);
    };
    Ok(Some(match act {
        Act::Proposal {
            version,
            parent,
            document,
        } => {
            let parsed = parse_document(document).map_err(|message| {
                VerifyError::Decode(crate::domain::dataset::DecodeError::Malformed {
                    what: "proposed consortium document",
                    message,
                })
            })?;
            Vote::Proposal(crate::domain::consortium::Proposal {
                proposer: h.publisher,
                seq: h.seq,
                version: *version,
                parent: *parent,
                document: parsed,
                key: v.signer(),
                created_at: h.created_at,
            })
        }
        Act::Approval { version, digest } => Vote::Approval(crate::domain::consortium::Approval {
            member: h.publisher,
            seq: h.seq,
            version: *version,
            digest: *digest,
            key: v.signer(),
            created_at: h.created_at,
        }),
    }))
}

impl Governance {
    /// Reads every governance entry in the store and computes the version in force once, from
    /// the same votes a running node counts: start-up is linear in what is held. Entries by
    /// members a proposal adds verify only once that proposal is read, so the store is read
    /// until nothing more verifies.
    pub fn load(
        genesis: Consortium,
        store: &Store,
        limits: &Limits,
    ) -> Result<Governance, crate::io::store::StoreError> {
        let entries = store.governance_entries().collect::<Result<_, _>>()?;
        Ok(Governance {
            state: Mutex::new(State::counting(genesis, entries, limits)),
            placing: Mutex::new(()),
        })
    }

    /// The versions that were in force on this node at `t` (milliseconds since the Unix epoch):
    /// computed, as at start-up, from the governance entries this node had accepted by then
    /// (SPEC §16 vintages).
    pub fn in_force_as_of(
        &self,
        store: &Store,
        limits: &Limits,
        t: i64,
    ) -> Result<Arc<InForce>, crate::io::store::StoreError> {
        let mut entries = Vec::new();
        for entry in store.governance_entries() {
            let entry = entry?;
            let header = entry
                .envelope
                .as_ref()
                .and_then(|env| crate::domain::dataset::EntryHeader::decode(&env.payload).ok());
            let accepted = match &header {
                Some(h) => store.accepted_at(h.publisher, h.seq)?.unwrap_or(0),
                None => 0,
            };
            if accepted <= t {
                entries.push(entry);
            }
        }
        let genesis = self.lock().genesis.clone();
        Ok(State::counting(genesis, entries, limits).in_force)
    }
}

impl State {
    /// The state that counting the votes of `entries` (stored governance entries) gives.
    fn counting(genesis: Consortium, mut pending: Vec<proto::Entry>, limits: &Limits) -> State {
        let mut state = State::new(genesis);
        // The documents proposed so far, by digest: the keys they give are what entries of
        // members-to-be were signed with. They were checked under the stricter rules on arrival.
        let mut documents: BTreeMap<[u8; 32], Consortium> = BTreeMap::new();
        loop {
            let before = pending.len();
            let mut rest = Vec::new();
            let ring = keyring(std::iter::once(&state.genesis).chain(documents.values()));
            for entry in pending {
                match crate::domain::dataset::verify(entry.clone(), &ring, limits) {
                    Ok(v) => match vote_of(&v) {
                        Ok(Some(vote)) => {
                            if let Vote::Proposal(p) = &vote {
                                documents
                                    .entry(crate::domain::consortium::digest(&p.document))
                                    .or_insert_with(|| p.document.clone());
                            }
                            state.hold(vote);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(publisher = %v.header().publisher, seq = v.header().seq, reason = %e, "stored governance entry not counted")
                        }
                    },
                    Err(_) => rest.push(entry),
                }
            }
            pending = rest;
            if pending.len() == before || pending.is_empty() {
                break;
            }
        }
        state.recompute();
        state
    }
}

impl Governance {
    /// Serialises placing governance entries: bound, place and count as one step.
    pub fn placing(&self) -> MutexGuard<'_, ()> {
        self.placing.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The document of the version in force.
    pub fn consortium(&self) -> Arc<Consortium> {
        self.lock().consortium.clone()
    }

    /// What governance entries are verified against.
    pub fn widened(&self) -> Arc<Consortium> {
        self.lock().widened.clone()
    }

    pub fn in_force(&self) -> Arc<InForce> {
        self.lock().in_force.clone()
    }

    /// Counts a governance entry the store holds whole (just appended, or completed by its
    /// payload); true when the version in force changed. Counting an entry twice changes
    /// nothing.
    pub fn count(&self, vote: Vote) -> bool {
        let mut state = self.lock();
        state.hold(vote) && state.recompute()
    }

    /// Whether one more vote by `member` on `version` may be kept (see [`MAX_VOTES_PER_VERSION`]
    /// and [`MAX_VERSIONS_AHEAD`]); why not, if it may not.
    pub fn admits(&self, member: Country, version: u64) -> Result<(), VerifyError> {
        let state = self.lock();
        let current = state.in_force.current().version;
        let bound = |reason: String| VerifyError::GovernanceBound {
            publisher: member,
            version,
            reason,
        };
        if version > current + MAX_VERSIONS_AHEAD {
            return Err(bound(format!(
                "more than {MAX_VERSIONS_AHEAD} versions past the version in force ({current})"
            )));
        }
        let held = state.votes_on(member, version);
        if held >= MAX_VOTES_PER_VERSION {
            return Err(bound(format!(
                "{held} votes on that version held already, the limit is {MAX_VOTES_PER_VERSION}"
            )));
        }
        Ok(())
    }

    /// Whether `member` already approved (or proposed) a document other than `digest` for
    /// `version`: approving `digest` too would make it an equivocator.
    pub fn approved_other(&self, member: Country, version: u64, digest: &[u8; 32]) -> Option<[u8; 32]> {
        let state = self.lock();
        state
            .held
            .range((member, 0)..=(member, u64::MAX))
            .find_map(|(_, vote)| {
                let (voter, v, d) = match vote {
                    Vote::Proposal(p) => (p.proposer, p.version, crate::domain::consortium::digest(&p.document)),
                    Vote::Approval(a) => (a.member, a.version, a.digest),
                };
                (voter == member && v == version && d != *digest).then_some(d)
            })
    }
}

use super::NodeError;
use crate::domain::dataset::publish::EntryParams;
use crate::domain::dataset::{verify_at, Placement};
use crate::domain::date::unix_now;

impl super::Node {
    /// Counts a governance entry just appended; when it changes the version in force, the node
    /// applies the new version from now on and rebuilds its index of current datasets under it.
    pub(super) fn count(&self, vote: crate::domain::consortium::Vote) {
        if self.governance.count(vote) {
            let in_force = self.governance();
            let current = in_force.current();
            tracing::info!(
                version = current.version,
                digest = %crate::domain::hex::encode(&current.digest),
                approvals = ?current.approvals.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "consortium version in force"
            );
            // A new harmonised definition: the aggregates are rebuilt from the records at once,
            // in one atomic batch, as `accord check --rebuild` does.
            match self.store.redefine(current.document.definition, &mut |_| {}) {
                Ok(Some(r)) => {
                    tracing::info!(from = %r.from, to = %r.to, records = r.records, cells = r.cells, "rebuilt the aggregates under the new definition")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = %e, "rebuilding the aggregates under the new definition failed: publish refuses until `accord check --rebuild`")
                }
            }
            if let Err(e) = self.follow_kept_branches() {
                tracing::error!(error = %e, "setting aside a branch the consortium did not keep failed");
            }
            self.current.reset();
        }
    }

    /// Where the version in force keeps one branch of an equivocating publisher's feed and
    /// this node holds the other, sets its own aside: sync then fetches the kept branch from
    /// the members holding it, and every node converges on it (SPEC §12). This node's own feed
    /// is never rewritten here: if it is the one that forked, its operator restores it.
    pub(super) fn follow_kept_branches(&self) -> Result<(), NodeError> {
        let forks = self.consortium().forks.clone();
        for kept in forks {
            let held = self.store.header_digest(kept.publisher, kept.seq)?;
            if held.is_none_or(|d| d == kept.keep) {
                continue;
            }
            if kept.publisher == self.country() {
                tracing::error!(seq = kept.seq, "the consortium kept another branch of this node's own feed: restore the feed from a backup holding that branch");
                continue;
            }
            let dropped = self.store.set_aside(kept.publisher, kept.seq, &kept.keep)?;
            tracing::warn!(publisher = %kept.publisher, seq = kept.seq, dropped, keep = %crate::domain::hex::encode(&kept.keep), "set aside the branch the consortium did not keep; the kept one is fetched from peers");
        }
        Ok(())
    }

    /// Signs `document` (consortium TOML) as a proposal for the next version, replacing the
    /// version in force, and appends it to this node's feed. Returns the version and digest.
    pub fn propose(&self, document: &str) -> Result<(u64, [u8; 32]), NodeError> {
        let parsed = parse_document(document).map_err(NodeError::Request)?;
        let in_force = self.governance();
        let current = in_force.current();
        let digest = crate::domain::consortium::digest(&parsed);
        if digest == current.digest {
            return Err(NodeError::Request(format!(
                "the proposed document is version {} itself (digest {}): nothing to propose",
                current.version,
                crate::domain::hex::encode(&digest)
            )));
        }
        let version = current.version + 1;
        if let Some(other) = self.governance.approved_other(self.country(), version, &digest) {
            return Err(NodeError::Request(format!(
                "{} already approved another document for version {version} (digest {}): a member approves one document per version",
                self.country(),
                crate::domain::hex::encode(&other)
            )));
        }
        let act = crate::domain::dataset::Governance::Proposal {
            version,
            parent: current.digest,
            document: crate::domain::consortium::canonical_toml(&parsed),
        };
        self.append_governance(&act)?;
        Ok((version, digest))
    }

    /// Signs this member's approval of the document with `digest` as `version` and appends it.
    /// Only a proposal this node holds for the version after the one in force can be approved.
    pub fn approve(&self, version: u64, digest: [u8; 32]) -> Result<(), NodeError> {
        let in_force = self.governance();
        let current = in_force.current();
        let Some(pending) = in_force
            .pending
            .iter()
            .find(|p| p.version == version && p.digest == digest)
        else {
            let known: Vec<String> = in_force
                .pending
                .iter()
                .map(|p| {
                    format!(
                        "version {} digest {} by {}",
                        p.version,
                        crate::domain::hex::encode(&p.digest),
                        p.proposer
                    )
                })
                .collect();
            return Err(NodeError::Request(format!(
                "no proposal for version {version} with digest {} is held here (version {} is in force; pending: {})",
                crate::domain::hex::encode(&digest),
                current.version,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join("; ")
                }
            )));
        };
        if current.document.member(self.country()).is_none() && pending.needed > 0 {
            return Err(NodeError::Request(format!(
                "version {version} still needs {} approval(s) of current members before a member it adds can approve it: until then the proposal fixes no key for {}",
                pending.needed,
                self.country()
            )));
        }
        if pending.approvals.contains(&self.country()) {
            return Err(NodeError::Request(format!(
                "{} has approved version {version} with digest {} already",
                self.country(),
                crate::domain::hex::encode(&digest)
            )));
        }
        if let Some(other) = self.governance.approved_other(self.country(), version, &digest) {
            return Err(NodeError::Request(format!(
                "{} already approved another document for version {version} (digest {}): a member approves one document per version",
                self.country(),
                crate::domain::hex::encode(&other)
            )));
        }
        self.append_governance(&crate::domain::dataset::Governance::Approval { version, digest })
    }

    fn append_governance(&self, act: &crate::domain::dataset::Governance) -> Result<(), NodeError> {
        let _placing = self.governance.placing();
        let widened = self.governance.widened();
        let (verified, placement) = self.store.append_next(self.country(), |head| {
            let entry = crate::domain::dataset::publish::sign_governance(
                self.country(),
                act,
                EntryParams {
                    head,
                    created_at: unix_now(),
                    audience: Vec::new(),
                    key: &self.signing,
                },
            );
            Ok::<_, NodeError>(verify_at(entry, &widened, &self.limits, unix_now())?)
        })?;
        if placement != Placement::Append {
            return Err(NodeError::Request(format!("own feed refused the entry: {placement:?}")));
        }
        self.store.flush()?;
        if let Some(vote) = vote_of(&verified)? {
            self.count(vote);
        }
        Ok(())
    }
}
