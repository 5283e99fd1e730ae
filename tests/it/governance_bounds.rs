//! A member with its real signing key cannot grow other members' stores with governance
//! entries: a node keeps at most `MAX_VOTES_PER_VERSION` votes per member and version, and none
//! more than `MAX_VERSIONS_AHEAD` versions past the one in force. The vote past the bound is
//! refused with its reason, and the member's feed stops there on that node.

use accord::cluster::full_mesh;
use accord::dataset::publish::{sign_governance, EntryParams};
use accord::dataset::{Governance, Head, Placement};
use accord::node::{MAX_VERSIONS_AHEAD, MAX_VOTES_PER_VERSION};

use crate::support::cluster::start_cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_voting_in_a_loop_is_refused_past_the_bound() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA"], full_mesh, 3600).await;
    let deu = cluster.running(0);
    let fra = accord::model::Country::parse("FRA").unwrap();
    let key = std::fs::read(cluster.pki.join("fra.sign.pk8")).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).unwrap();
    let mut head: Option<Head> = None;
    let mut vote = |version: u64, n: u8| {
        let entry = sign_governance(
            fra,
            &Governance::Approval {
                version,
                digest: [n; 32],
            },
            EntryParams {
                head,
                created_at: accord::date::unix_now(),
                audience: Vec::new(),
                key: &key,
            },
        );
        let digest = accord::dataset::envelope::sha256(&entry.envelope.as_ref().unwrap().payload);
        let seq = head.map_or(1, |h| h.seq + 1);
        let result = deu.accept(entry.clone()).map(|(_, placement)| placement);
        if result.is_ok() {
            head = Some(Head { seq, digest });
        }
        (result, entry)
    };
    // FRA approves four different documents for version 2: kept (they prove it equivocates).
    let mut first = None;
    for n in 0..MAX_VOTES_PER_VERSION as u8 {
        let (placed, entry) = vote(2, n);
        assert_eq!(placed.unwrap(), Placement::Append, "vote {n}");
        first.get_or_insert(entry);
    }
    // The next one is refused before it is kept.
    let (refused, _) = vote(2, 99);
    let error = refused.unwrap_err().to_string();
    assert!(
        error.contains("FRA votes on consortium version 2") && error.contains("the limit is 4"),
        "{error}"
    );
    // A vote far past the version in force is refused; one within reach is kept.
    let (far, _) = vote(2 + MAX_VERSIONS_AHEAD, 1);
    let error = far.unwrap_err().to_string();
    assert!(error.contains("versions past the version in force (1)"), "{error}");
    let (near, _) = vote(1 + MAX_VERSIONS_AHEAD, 1);
    assert_eq!(near.unwrap(), Placement::Append);
    // A vote held already, offered again (a relay), is no new vote.
    assert_eq!(deu.accept(first.unwrap()).unwrap().1, Placement::Replay);
    let status = deu.status().unwrap();
    assert_eq!(status.consortium_version, 1, "nothing of this is in force");
    cluster.shutdown().await;
}
