//! Quiet sync rounds (SPEC §17): when nothing changed on either side since a peer's last
//! complete pull, a round asks that peer one small question per kind (feeds, attestations) and
//! fetches nothing, however many feeds it holds; anything new on the peer, or on this node,
//! makes the next round ask in full again. Real nodes in one process over mutual TLS; the test
//! drives every round with one `Syncer` per node, as the daemon keeps one.

use accord::cluster::full_mesh;
use accord::exchange::Syncer;
use accord::model::{Country, Cube, Period};
use accord::node::PublishRequest;

use crate::support::cluster::{ingest_synthetic, start_cluster, TestCluster};
use crate::support::last_year;

/// No periodic pulls: the test drives every round.
const DRIVEN: u64 = 3600;

/// One round: every node pulls from each of its peers once, in node order. Per node, the pulls
/// that came back quiet and what the round appended.
async fn round(cluster: &TestCluster, syncers: &[Syncer]) -> Vec<(Country, usize, usize, u64)> {
    let mut out = Vec::new();
    for (i, syncer) in syncers.iter().enumerate() {
        let mut quiet = 0;
        let mut appended = 0;
        let pulls = syncer.pull_all().await;
        for (peer, result) in &pulls {
            let sync = result
                .as_ref()
                .unwrap_or_else(|e| panic!("{} pulling from {peer}: {e}", cluster.nodes[i].country));
            quiet += usize::from(sync.quiet);
            appended += sync.appended;
            if sync.quiet {
                assert_eq!(sync.appended, 0, "a quiet pull fetched nothing");
            }
        }
        out.push((cluster.nodes[i].country, quiet, pulls.len(), appended));
    }
    out
}

fn all_quiet(r: &[(Country, usize, usize, u64)]) -> bool {
    r.iter()
        .all(|(_, quiet, pulls, appended)| quiet == pulls && *appended == 0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_round_fetches_nothing_and_a_new_entry_ends_the_quiet() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA"], full_mesh, DRIVEN).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 200, 3);
        node.publish(PublishRequest::new(Cube::Flows, period)).expect("publish");
    }
    let syncers: Vec<Syncer> = cluster
        .running_indices()
        .iter()
        .map(|i| cluster.running(*i).syncer())
        .collect();

    // Rounds until every node holds every feed: the first asks in full, and so does every
    // round after one in which this node's own feeds changed. Then two rounds in a row are
    // quiet: one small question per peer, nothing fetched.
    let mut rounds = Vec::new();
    while rounds.len() < 6 {
        let r = round(&cluster, &syncers).await;
        let done = all_quiet(&r);
        rounds.push(r);
        if done {
            break;
        }
    }
    assert!(
        rounds[0].iter().all(|(_, quiet, _, _)| *quiet == 0),
        "the first round asks in full: {rounds:?}"
    );
    let taken: u64 = rounds.iter().flatten().map(|(_, _, _, appended)| appended).sum();
    assert!(
        taken <= 6,
        "each node takes each other feed's entry at most once: {rounds:?}"
    );
    assert!(all_quiet(rounds.last().unwrap()), "rounds became quiet: {rounds:?}");
    let again = round(&cluster, &syncers).await;
    assert!(all_quiet(&again), "{again:?}");
    let digests: Vec<[u8; 32]> = cluster
        .running_indices()
        .iter()
        .map(|i| cluster.running(*i).view_digest().expect("digest"))
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "one view everywhere");

    // DEU publishes a revision (announcing nothing, so only these rounds carry it): the next
    // round is not quiet for those who pull from DEU, and each of FRA and ITA takes the new
    // entry once (from DEU or from the other).
    let deu = cluster.running(0);
    ingest_synthetic(deu, last_year(), 50, 9);
    deu.publish(PublishRequest::new(Cube::Flows, period)).expect("revision");
    let fifth = round(&cluster, &syncers).await;
    for (country, quiet, pulls, appended) in &fifth[1..] {
        assert!(quiet < pulls, "{country}: {fifth:?}");
        assert_eq!(*appended, 1, "{country} takes DEU's revision once: {fifth:?}");
    }
    // Quiet again once every side has it, and the views agree on the new digest.
    let mut quiet_again = false;
    for _ in 0..3 {
        if all_quiet(&round(&cluster, &syncers).await) {
            quiet_again = true;
            break;
        }
    }
    assert!(quiet_again, "rounds became quiet again after the revision");
    let after: Vec<[u8; 32]> = cluster
        .running_indices()
        .iter()
        .map(|i| cluster.running(*i).view_digest().expect("digest"))
        .collect();
    assert!(after.windows(2).all(|w| w[0] == w[1]) && after[0] != digests[0]);
    cluster.shutdown().await;
}

/// In a round after several members re-attested, a note new to a node crosses the wire once,
/// from the first peer that has it: pulls read new notes one at a time (`sync::NotesTurn`), so
/// the next pull asks with them held, and a peer whose notes changed answers the summary with
/// no notes before the pull asks with the times it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_round_each_new_attestation_is_read_from_one_peer_only() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "POL"], full_mesh, DRIVEN).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 100, 5 + i as u64);
        node.publish(PublishRequest::new(Cube::Flows, period)).expect("publish");
    }
    let syncers: Vec<Syncer> = cluster
        .running_indices()
        .iter()
        .map(|i| cluster.running(*i).syncer())
        .collect();
    let mut settled = false;
    for _ in 0..8 {
        if all_quiet(&round(&cluster, &syncers).await) {
            settled = true;
            break;
        }
    }
    assert!(settled, "every node holds every feed and every note");

    // FRA, ITA and POL revise and re-attest, and pass their notes among themselves (not to DEU).
    for i in 1..4 {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 20, 50 + i as u64);
        node.publish(PublishRequest::new(Cube::Flows, period))
            .expect("revision");
        node.attest_if_changed(accord::date::unix_now()).expect("attest");
    }
    let mut passed = false;
    for _ in 0..8 {
        let mut quiet = true;
        for syncer in &syncers[1..] {
            // Quiet for heads and for notes: every note has reached the three of them.
            quiet &= syncer
                .pull_all()
                .await
                .iter()
                .all(|(_, r)| r.as_ref().is_ok_and(|s| s.quiet && s.notes_read == 0));
        }
        if quiet {
            passed = true;
            break;
        }
    }
    assert!(passed, "FRA, ITA and POL settled among themselves");
    // Each of them now holds the three new notes; DEU pulls from all three at once.
    let pulls = syncers[0].pull_all().await;
    let read: Vec<(Country, u64)> = pulls
        .iter()
        .map(|(peer, r)| (*peer, r.as_ref().expect("pull").notes_read))
        .collect();
    let total: u64 = read.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 3, "each of the three new notes read once: {read:?}");
    cluster.shutdown().await;
}
