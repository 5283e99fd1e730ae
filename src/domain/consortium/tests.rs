//! The version in force under hostile and honest votes: TUF's rules, one outcome whatever the
//! order of the entries.

use std::path::Path;

use super::*;
use crate::domain::consortium::Consortium;
use crate::domain::model::Country;

fn c(code: &str) -> Country {
    Country::parse(code).unwrap()
}

/// A member's key: its code's bytes repeated (the pure rules never check signatures).
fn key(code: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = code.as_bytes()[i % 3] ^ (i as u8);
    }
    k
}

/// A consortium of `codes`, named `name` (so two documents with the same members differ).
fn doc(name: &str, codes: &[&str]) -> Consortium {
    let mut text = format!("name = \"{name}\"\n");
    for code in codes {
        text.push_str(&format!(
            "[[members]]\ncountry = \"{code}\"\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2024-01-01\"\n",
            crate::domain::hex::encode(&key(code))
        ));
    }
    Consortium::parse(Path::new("consortium.toml"), &text).unwrap()
}

const T: i64 = 1_800_000_000;

fn propose(proposer: &str, seq: u64, version: u64, parent: &Consortium, document: &Consortium) -> Vote {
    Vote::Proposal(Proposal {
        proposer: c(proposer),
        seq,
        version,
        parent: digest(parent),
        document: document.clone(),
        key: key(proposer),
        created_at: T,
    })
}

fn approve(member: &str, seq: u64, version: u64, document: &Consortium) -> Vote {
    Vote::Approval(Approval {
        member: c(member),
        seq,
        version,
        digest: digest(document),
        key: key(member),
        created_at: T,
    })
}

fn codes(list: &[Country]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn genesis() -> Consortium {
    doc("g", &["DEU", "FRA", "ITA", "ESP"])
}

fn with_pol() -> Consortium {
    doc("g", &["DEU", "FRA", "ITA", "ESP", "POL"])
}

#[test]
fn genesis_alone_is_version_1() {
    let g = genesis();
    let state = in_force(&g, &[]);
    assert_eq!(state.versions.len(), 1);
    assert_eq!(state.current().version, 1);
    assert_eq!(state.current().digest, digest(&g));
    assert!(state.pending.is_empty() && state.equivocations.is_empty());
}

/// The scenario: ESP proposes adding POL; DEU and FRA approve (three of four reach
/// two-thirds); POL's approval is still needed; once it comes, version 2 is in force.
#[test]
fn a_new_member_joins_with_a_quorum_and_its_own_approval() {
    let (g, v2) = (genesis(), with_pol());
    let mut votes = vec![propose("ESP", 4, 2, &g, &v2), approve("DEU", 7, 2, &v2)];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert_eq!(state.pending.len(), 1);
    assert_eq!(codes(&state.pending[0].approvals), ["DEU", "ESP"]);
    assert_eq!(state.pending[0].needed, 1);

    votes.push(approve("FRA", 2, 2, &v2));
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1, "quorum reached, but POL has not approved");
    assert_eq!(state.pending[0].needed, 0);
    assert_eq!(codes(&state.pending[0].awaiting_new_members), ["POL"]);

    votes.push(approve("POL", 1, 2, &v2));
    let state = in_force(&g, &votes);
    let current = state.current();
    assert_eq!((current.version, current.digest), (2, digest(&v2)));
    assert_eq!(current.proposer, Some(c("ESP")));
    assert_eq!(codes(&current.approvals), ["DEU", "ESP", "FRA", "POL"]);
    assert!(current.document.member(c("POL")).is_some());
    assert!(state.pending.is_empty());
}

#[test]
fn a_minority_never_puts_a_version_in_force() {
    let (g, v2) = (genesis(), with_pol());
    // Two of four, plus the new member: below two-thirds.
    let votes = [
        propose("ESP", 1, 2, &g, &v2),
        approve("DEU", 1, 2, &v2),
        approve("POL", 1, 2, &v2),
        // Repeats of one member's approval count once.
        approve("DEU", 2, 2, &v2),
        approve("ESP", 2, 2, &v2),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert_eq!(codes(&state.pending[0].approvals), ["DEU", "ESP"]);
    assert_eq!(state.pending[0].needed, 1);
    assert!(
        state.equivocations.is_empty(),
        "one document approved twice is not equivocation"
    );
}

#[test]
fn proposals_by_non_members_and_on_another_parent_are_not_candidates() {
    let (g, v2) = (genesis(), with_pol());
    let stale = doc("old", &["DEU", "FRA"]);
    let votes = [
        // POL is not a member of version 1: it cannot propose.
        propose("POL", 1, 2, &g, &v2),
        // A parent that is not the version in force.
        propose("ESP", 1, 2, &stale, &v2),
        // The right parent but the wrong version number.
        propose("ITA", 1, 3, &g, &v2),
        approve("DEU", 1, 2, &v2),
        approve("FRA", 1, 2, &v2),
        approve("ITA", 2, 2, &v2),
        approve("POL", 2, 2, &v2),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert!(state.pending.is_empty(), "{:?}", state.pending);
}

#[test]
fn an_approval_counts_for_the_version_it_names_only() {
    let (g, v2) = (genesis(), with_pol());
    let v3 = doc("three", &["DEU", "FRA", "ITA", "ESP", "POL"]);
    let mut votes = vec![
        propose("ESP", 1, 2, &g, &v2),
        approve("DEU", 1, 2, &v2),
        approve("FRA", 1, 2, &v2),
        approve("POL", 1, 2, &v2),
        // Approvals of v2's digest "for version 3": replayed, they approve nothing.
        approve("ITA", 1, 3, &v2),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 2);
    assert!(!state.current().approvals.contains(&c("ITA")));
    // Version 3 needs four of five (two-thirds of 5, rounded up); version-2 approvals of v3's
    // digest do not count for it.
    votes.push(propose("DEU", 2, 3, &v2, &v3));
    votes.push(approve("FRA", 2, 3, &v3));
    votes.push(approve("ITA", 2, 2, &v3));
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 2);
    assert_eq!(codes(&state.pending[0].approvals), ["DEU", "FRA"]);
    assert_eq!(state.pending[0].needed, 2);
    votes.push(approve("ESP", 3, 3, &v3));
    votes.push(approve("POL", 3, 3, &v3));
    let state = in_force(&g, &votes);
    assert_eq!((state.current().version, state.current().digest), (3, digest(&v3)));
    assert_eq!(state.versions.len(), 3);
    // ITA's replays (v2 for version 3, v3 for version 2) approve one document per version
    // each: nothing counted, and no equivocation.
    assert!(state.equivocations.is_empty(), "{:?}", state.equivocations);

    // POL approving v3 "for version 2" as well as v2 is equivocation for version 2: its vote
    // for v2 no longer counts, and v2 (which needs POL) falls back to pending.
    votes.push(approve("POL", 4, 2, &v3));
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert_eq!(state.equivocations[0].member, c("POL"));
}

#[test]
fn a_member_approving_two_documents_for_one_version_is_kept_as_an_equivocator_and_not_counted() {
    let g = genesis();
    let a = doc("a", &["DEU", "FRA", "ITA", "ESP"]);
    let b = doc("b", &["DEU", "FRA", "ITA", "ESP"]);
    let votes = [
        propose("ESP", 1, 2, &g, &a),
        propose("ITA", 1, 2, &g, &b),
        approve("DEU", 1, 2, &a),
        approve("DEU", 2, 2, &b),
        approve("FRA", 1, 2, &a),
    ];
    let state = in_force(&g, &votes);
    // Without DEU, a has ESP and FRA: two of four.
    assert_eq!(state.current().version, 1);
    assert_eq!(state.equivocations.len(), 1);
    let e = &state.equivocations[0];
    assert_eq!((e.member, e.version), (c("DEU"), 2));
    let mut both = vec![digest(&a), digest(&b)];
    both.sort();
    assert_eq!(e.digests, both);
    let pending_a = state.pending.iter().find(|p| p.digest == digest(&a)).unwrap();
    assert_eq!(codes(&pending_a.approvals), ["ESP", "FRA"]);

    // A proposer approving another document for the version it proposed equivocates too.
    let votes = [
        propose("ESP", 1, 2, &g, &a),
        approve("ESP", 2, 2, &b),
        approve("DEU", 1, 2, &a),
        approve("FRA", 1, 2, &a),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(
        state.current().version,
        1,
        "ESP's proposal no longer counts as its approval"
    );
    assert_eq!(state.equivocations[0].member, c("ESP"));
}

#[test]
fn a_forged_new_member_approval_does_not_count() {
    let (g, v2) = (genesis(), with_pol());
    let mut forged = approve("POL", 1, 2, &v2);
    // Signed with ESP's key (ESP relaying an "approval by POL"): not a key v2 gives POL.
    if let Vote::Approval(a) = &mut forged {
        a.key = key("ESP");
    }
    let votes = [
        propose("ESP", 1, 2, &g, &v2),
        approve("DEU", 1, 2, &v2),
        approve("FRA", 1, 2, &v2),
        forged,
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert_eq!(codes(&state.pending[0].awaiting_new_members), ["POL"]);
    // POL's real key outside its validity window does not count either.
    let mut early = approve("POL", 2, 2, &v2);
    if let Vote::Approval(a) = &mut early {
        a.created_at = 0;
    }
    let mut votes = votes.to_vec();
    votes.push(early);
    assert_eq!(in_force(&g, &votes).current().version, 1);
}

/// A key counts only where the version voted on gives it to the voter: a member's vote signed
/// with another member's key, or with its own key outside its window, approves nothing.
#[test]
fn votes_count_only_under_the_voters_keys_in_the_version_voted_on() {
    let (g, v2) = (genesis(), with_pol());
    let wrong_key = |vote: Vote, key_of: &str| match vote {
        Vote::Approval(mut a) => {
            a.key = key(key_of);
            Vote::Approval(a)
        }
        Vote::Proposal(mut p) => {
            p.key = key(key_of);
            Vote::Proposal(p)
        }
    };
    let votes = [
        wrong_key(propose("ESP", 1, 2, &g, &v2), "DEU"),
        approve("DEU", 1, 2, &v2),
        approve("FRA", 1, 2, &v2),
        approve("POL", 1, 2, &v2),
    ];
    assert!(
        in_force(&g, &votes).pending.is_empty(),
        "a proposal under another member's key is none"
    );
    let votes = [
        propose("ESP", 1, 2, &g, &v2),
        wrong_key(approve("DEU", 1, 2, &v2), "FRA"),
        approve("FRA", 1, 2, &v2),
        approve("POL", 1, 2, &v2),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 1);
    assert_eq!(codes(&state.pending[0].approvals), ["ESP", "FRA"]);
}

#[test]
fn the_outcome_does_not_depend_on_the_order_of_the_entries() {
    let (g, v2) = (genesis(), with_pol());
    let other = doc("other", &["DEU", "FRA", "ITA", "ESP"]);
    let votes = vec![
        propose("ESP", 1, 2, &g, &v2),
        propose("ITA", 1, 2, &g, &other),
        approve("DEU", 1, 2, &v2),
        approve("FRA", 1, 2, &v2),
        approve("FRA", 2, 2, &other),
        approve("POL", 1, 2, &v2),
        approve("ITA", 2, 2, &v2),
    ];
    let reference = in_force(&g, &votes);
    // Deterministic permutations: every rotation and its reverse.
    for shift in 0..votes.len() {
        let mut shuffled = votes.clone();
        shuffled.rotate_left(shift);
        assert_eq!(in_force(&g, &shuffled), reference);
        shuffled.reverse();
        assert_eq!(in_force(&g, &shuffled), reference);
    }
    // FRA equivocated, ITA approved both (its proposal and v2): DEU and ESP remain for v2.
    assert_eq!(reference.current().version, 1);
    let who: Vec<_> = reference.equivocations.iter().map(|e| e.member.to_string()).collect();
    assert_eq!(who, ["FRA", "ITA"]);
}

#[test]
fn quorums_are_always_more_than_half() {
    for n in 1..=40 {
        for q in crate::domain::consortium::Quorum::ALL {
            assert!(q.needed(n) * 2 > n && q.needed(n) <= n, "{q:?} of {n}");
        }
    }
    use crate::domain::consortium::Quorum::*;
    assert_eq!([Majority.needed(4), TwoThirds.needed(4), All.needed(4)], [3, 3, 4]);
    assert_eq!([Majority.needed(5), TwoThirds.needed(5), All.needed(5)], [3, 4, 5]);
    assert_eq!(TwoThirds.needed(30), 20);
}

/// A version takes effect at the quorum-completing approval's signed time (or a new member's
/// later one); a member it removes keeps its entries from before that time.
#[test]
fn a_removed_member_is_judged_by_the_version_it_belonged_to_until_its_removal() {
    let g = genesis();
    let without_ita = doc("g", &["DEU", "FRA", "ESP"]);
    let at = |vote: Vote, t: i64| match vote {
        Vote::Approval(mut a) => {
            a.created_at = t;
            Vote::Approval(a)
        }
        Vote::Proposal(mut p) => {
            p.created_at = t;
            Vote::Proposal(p)
        }
    };
    let votes = [
        at(propose("DEU", 1, 2, &g, &without_ita), T),
        at(approve("FRA", 1, 2, &without_ita), T + 50),
        at(approve("ESP", 1, 2, &without_ita), T + 20),
        // A fourth approval after the quorum does not move the time it took effect.
        at(approve("ITA", 1, 2, &without_ita), T + 90),
    ];
    let state = in_force(&g, &votes);
    assert_eq!(state.current().version, 2);
    assert_eq!(state.current().effective_at, T + 50, "the third of three needed");
    assert_eq!(state.versions[0].effective_at, i64::MIN);
    assert!(state.document_for(c("ITA"), T + 49).member(c("ITA")).is_some());
    assert!(state.document_for(c("ITA"), T + 50).member(c("ITA")).is_none());
    assert!(state.document_for(c("DEU"), 0).member(c("DEU")).is_some());
    assert!(state.ever_member(c("ITA")) && !state.ever_member(c("POL")));
}
