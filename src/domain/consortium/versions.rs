//! Which consortium version is in force: a pure function of the genesis document and the
//! proposals and approvals accepted from the members' feeds (SPEC §11), with the rules of TUF's
//! root rotation, and no central signer:
//!
//! - version N+1 is a proposal naming N+1 and the digest of version N as its parent, made by a
//!   member of version N;
//! - it is in force once members of version N reach version N's quorum in approving its digest
//!   (the proposer's proposal counts as its approval), and every member it adds has approved it
//!   too, with a key the proposed document gives that member;
//! - a member approves at most one document per version: a member that approved two is an
//!   equivocator for that version, its votes for it count for nothing, and the pair is kept;
//! - an approval counts for the version and digest it names only, so replaying it for another
//!   version does nothing.
//!
//! Every quorum is more than half of a version's members, so two documents cannot both reach it
//! for one version; the outcome does not depend on the order in which entries arrived.

use std::collections::{BTreeMap, BTreeSet};

use super::document::digest;
use crate::domain::consortium::Consortium;
use crate::domain::model::Country;

/// A signed proposal: the whole next document, from `proposer`'s feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub proposer: Country,
    /// The entry's seq in the proposer's feed.
    pub seq: u64,
    /// The version the document would become.
    pub version: u64,
    /// Digest of the version it replaces.
    pub parent: [u8; 32],
    pub document: Consortium,
    /// The public key whose signature the proposal carries.
    pub key: [u8; 32],
    pub created_at: i64,
}

/// A signed approval of one document for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub member: Country,
    pub seq: u64,
    pub version: u64,
    pub digest: [u8; 32],
    /// The public key whose signature the approval carries.
    pub key: [u8; 32],
    pub created_at: i64,
}

/// A governance entry, with its signature checked against `key` by the caller. Whether `key`
/// counts is decided here, per version: for a member of the version voted on, it must be one of
/// that member's keys in that version, valid at `created_at` (so a key a later version retired
/// or a member it removed votes no more); for a member a proposal would add, one the proposed
/// document gives it.
#[derive(Debug, Clone, PartialEq)]
pub enum Vote {
    Proposal(Proposal),
    Approval(Approval),
}

impl Vote {
    /// The member that cast the vote.
    pub fn voter(&self) -> Country {
        match self {
            Vote::Proposal(p) => p.proposer,
            Vote::Approval(a) => a.member,
        }
    }

    /// The version voted on.
    pub fn version(&self) -> u64 {
        match self {
            Vote::Proposal(p) => p.version,
            Vote::Approval(a) => a.version,
        }
    }

    /// The seq of the vote's entry in the voter's feed.
    pub fn seq(&self) -> u64 {
        match self {
            Vote::Proposal(p) => p.seq,
            Vote::Approval(a) => a.seq,
        }
    }

    /// (version, digest, key, created_at, seq) of what this vote approves.
    fn approves(&self) -> (u64, [u8; 32], [u8; 32], i64, u64) {
        match self {
            Vote::Proposal(p) => (p.version, digest(&p.document), p.key, p.created_at, p.seq),
            Vote::Approval(a) => (a.version, a.digest, a.key, a.created_at, a.seq),
        }
    }
}

/// One version of the consortium document and who put it in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub version: u64,
    pub digest: [u8; 32],
    pub document: Consortium,
    /// `None` for genesis.
    pub proposer: Option<Country>,
    /// The members whose approvals counted (members of the previous version, then new members).
    pub approvals: Vec<Country>,
    /// When it took effect: the latest `created_at` among the votes that counted (signed, so
    /// every node computes the same); `i64::MIN` for genesis. A member it removes keeps the
    /// entries it created before this time.
    pub effective_at: i64,
}

/// A proposal for the next version that is not (yet) in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub version: u64,
    pub digest: [u8; 32],
    pub proposer: Country,
    /// Members who approved it so far (equivocators left out).
    pub approvals: Vec<Country>,
    /// Approvals still needed among the current version's members.
    pub needed: usize,
    /// Members it adds that have not approved it.
    pub awaiting_new_members: Vec<Country>,
}

/// A member that approved two documents for one version: both are evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equivocation {
    pub member: Country,
    pub version: u64,
    /// The digests it approved, sorted.
    pub digests: Vec<[u8; 32]>,
}

/// What the accepted governance entries put in force.
#[derive(Debug, Clone, PartialEq)]
pub struct InForce {
    /// Every version from genesis to the one in force, in order.
    pub versions: Vec<Version>,
    /// Proposals for the version after the one in force.
    pub pending: Vec<Pending>,
    pub equivocations: Vec<Equivocation>,
}

impl InForce {
    /// The version in force.
    pub fn current(&self) -> &Version {
        // `in_force` always puts genesis first.
        &self.versions[self.versions.len() - 1]
    }

    /// The document an entry of `publisher` created at `created_at` is verified against: the
    /// version in force, or, for a member a later version removed, the last version it belonged
    /// to when the entry was created before the removal took effect (its earlier entries stay
    /// verifiable; later ones meet a version without it and are refused).
    pub fn document_for(&self, publisher: Country, created_at: i64) -> &Consortium {
        let current = &self.current().document;
        if current.member(publisher).is_some() {
            return current;
        }
        for pair in self.versions.windows(2).rev() {
            let (was, removed_by) = (&pair[0], &pair[1]);
            if was.document.member(publisher).is_some() && removed_by.document.member(publisher).is_none() {
                return if created_at < removed_by.effective_at {
                    &was.document
                } else {
                    current
                };
            }
        }
        current
    }

    /// Whether `publisher` is, or ever was, a member: its feed is worth fetching.
    pub fn ever_member(&self, publisher: Country) -> bool {
        self.versions.iter().any(|v| v.document.member(publisher).is_some())
    }
}

/// The version in force given `genesis` and the accepted `votes` (in any order).
pub fn in_force(genesis: &Consortium, votes: &[Vote]) -> InForce {
    let mut versions = vec![Version {
        version: 1,
        digest: digest(genesis),
        document: genesis.clone(),
        proposer: None,
        approvals: Vec::new(),
        effective_at: i64::MIN,
    }];
    let mut equivocations = Vec::new();
    loop {
        let current = &versions[versions.len() - 1];
        let next = current.version + 1;
        let (candidates, equivocators) = candidates(current, next, votes);
        for (member, digests) in &equivocators {
            equivocations.push(Equivocation {
                member: *member,
                version: next,
                digests: digests.iter().copied().collect(),
            });
        }
        let needed = current.document.quorum.needed(current.document.members.len());
        let mut pending = Vec::new();
        let mut winner = None;
        for candidate in candidates {
            let approvals: Vec<Country> = candidate.old.keys().copied().collect();
            let awaiting: Vec<Country> = candidate
                .document
                .members
                .iter()
                .map(|m| m.country)
                .filter(|c| current.document.member(*c).is_none() && !candidate.new.contains_key(c))
                .collect();
            if winner.is_none() && approvals.len() >= needed && awaiting.is_empty() {
                let effective_at = candidate.effective_at(needed);
                let mut approvals = approvals;
                approvals.extend(candidate.new.keys().copied());
                winner = Some(Version {
                    version: next,
                    digest: candidate.digest,
                    document: candidate.document,
                    proposer: Some(candidate.proposer),
                    approvals,
                    effective_at,
                });
            } else {
                pending.push(Pending {
                    version: next,
                    digest: candidate.digest,
                    proposer: candidate.proposer,
                    approvals,
                    needed: needed.saturating_sub(candidate.old.len()),
                    awaiting_new_members: awaiting,
                });
            }
        }
        match winner {
            Some(version) => versions.push(version),
            None => {
                return InForce {
                    versions,
                    pending,
                    equivocations,
                }
            }
        }
    }
}

/// A proposed document for `next` and the approvals that count for it.
struct Candidate {
    digest: [u8; 32],
    document: Consortium,
    proposer: Country,
    /// Approving members of the current version, with the earliest `created_at` of their
    /// approval.
    old: BTreeMap<Country, i64>,
    /// Approving members the document adds, each with a key the document gives it.
    new: BTreeMap<Country, i64>,
}

impl Candidate {
    /// When the candidate took effect with `needed` approvals: the `needed`-th earliest approval
    /// by a current member, or the last approval of an added member if that came later. Only
    /// signed times enter it, so it is a function of the entries alone.
    fn effective_at(&self, needed: usize) -> i64 {
        let mut times: Vec<i64> = self.old.values().copied().collect();
        times.sort_unstable();
        let quorum_at = times.get(needed.saturating_sub(1)).copied().unwrap_or(i64::MIN);
        self.new.values().copied().fold(quorum_at, i64::max)
    }
}

/// Whether `key` is one of `member`'s keys in `document`, valid at `time` and for `seq`.
fn holds_key(document: &Consortium, member: Country, key: &[u8; 32], time: i64, seq: u64) -> bool {
    document.member(member).is_some_and(|m| {
        m.keys
            .iter()
            .any(|k| k.public_key == *key && k.valid_at(time) && k.signs_seq(seq))
    })
}

/// The proposals for `next` that build on `current` (made by a member of it), sorted by digest,
/// with their approvals; and the members that approved more than one document for `next`.
fn candidates(current: &Version, next: u64, votes: &[Vote]) -> (Vec<Candidate>, BTreeMap<Country, BTreeSet<[u8; 32]>>) {
    let mut by_digest: BTreeMap<[u8; 32], Candidate> = BTreeMap::new();
    for vote in votes {
        let Vote::Proposal(p) = vote else { continue };
        if p.version != next
            || p.parent != current.digest
            || !holds_key(&current.document, p.proposer, &p.key, p.created_at, p.seq)
        {
            continue;
        }
        // Two proposers of one document: the smaller (proposer, seq) names it, so every node
        // names the same one.
        let d = digest(&p.document);
        let keep = by_digest.get(&d).is_none_or(|c| p.proposer < c.proposer);
        if keep {
            by_digest.insert(
                d,
                Candidate {
                    digest: d,
                    document: p.document.clone(),
                    proposer: p.proposer,
                    old: BTreeMap::new(),
                    new: BTreeMap::new(),
                },
            );
        }
    }
    // Every document each member approved for `next` (proposals count), valid or not: approving
    // two is equivocation whatever became of the documents.
    let mut approved: BTreeMap<Country, BTreeSet<[u8; 32]>> = BTreeMap::new();
    for vote in votes {
        let (version, d, ..) = vote.approves();
        if version == next {
            approved.entry(vote.voter()).or_default().insert(d);
        }
    }
    let equivocators: BTreeMap<Country, BTreeSet<[u8; 32]>> =
        approved.into_iter().filter(|(_, digests)| digests.len() > 1).collect();
    for vote in votes {
        let voter = vote.voter();
        if equivocators.contains_key(&voter) {
            continue;
        }
        let (version, d, key, created_at, seq) = vote.approves();
        let Some(candidate) = by_digest.get_mut(&d) else {
            continue;
        };
        if version != next {
            continue;
        }
        let earliest = |held: Option<&i64>| held.map_or(created_at, |t| (*t).min(created_at));
        if current.document.member(voter).is_some() {
            if holds_key(&current.document, voter, &key, created_at, seq) {
                let t = earliest(candidate.old.get(&voter));
                candidate.old.insert(voter, t);
            }
        } else if holds_key(&candidate.document, voter, &key, created_at, seq) {
            // A member the document adds, signing with the key the document gives it.
            let t = earliest(candidate.new.get(&voter));
            candidate.new.insert(voter, t);
        }
    }
    (by_digest.into_values().collect(), equivocators)
}
