//! Consortium governance across real nodes (SPEC §11): four members in a full mesh over mutual
//! TLS; a proposal and its approvals travel in the feeds like datasets; a minority's approvals
//! put nothing in force anywhere; once a quorum approves, every node applies the new version at
//! once and reports one consortium digest and one view digest computed under it.

mod common;

use accord::cluster::full_mesh;
use accord::hex;
use accord::model::{Cube, Period};
use common::{eventually, ingest_synthetic, last_year, publish_and_announce, start_cluster, TestCluster, CONVERGENCE};

/// A pending proposal as a node reports it: version, digest, approvals.
type Pending = (u64, String, Vec<String>);

/// A node's (country, consortium version, consortium digest, view digest, pending proposals).
type State = (String, u64, String, String, Vec<Pending>);

/// Every running node's state.
fn states(cluster: &TestCluster) -> Vec<State> {
    cluster
        .running_indices()
        .into_iter()
        .map(|i| {
            let node = cluster.running(i);
            let s = node
                .status()
                .unwrap_or_else(|e| panic!("{}: status: {e}", node.country()));
            let pending = s
                .proposals
                .iter()
                .map(|p| (p.version, p.digest.clone(), p.approvals.clone()))
                .collect();
            (
                s.country,
                s.consortium_version,
                s.consortium_digest,
                s.view_digest,
                pending,
            )
        })
        .collect()
}

/// `Ok` when every node reports `version` with one consortium digest and one view digest, and
/// the proposals `pending` (version, approvals).
fn all_agree(cluster: &TestCluster, version: u64, pending: &[(u64, &[&str])]) -> Result<(), String> {
    let states = states(cluster);
    let first = &states[0];
    for s in &states {
        let wanted: Vec<(u64, Vec<String>)> = pending
            .iter()
            .map(|(v, a)| (*v, a.iter().map(|c| c.to_string()).collect()))
            .collect();
        let got: Vec<(u64, Vec<String>)> = s.4.iter().map(|(v, _, a)| (*v, a.clone())).collect();
        if s.1 != version || s.2 != first.2 || s.3 != first.3 || got != wanted {
            return Err(format!("{states:#?}"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_puts_a_version_in_force_on_every_node_and_a_minority_never_does() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], full_mesh, 1).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 300, 1);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    eventually("genesis views agree", CONVERGENCE, || all_agree(&cluster, 1, &[])).await;
    let genesis_view = states(&cluster)[0].3.clone();
    let (deu, fra, ita, esp) = (
        cluster.running(0),
        cluster.running(1),
        cluster.running(2),
        cluster.running(3),
    );
    assert_eq!(deu.consortium().reconcile.rule, accord::model::Rule::Receiving);

    // ESP proposes version 2: the mean of the two sides as the reconciled figure.
    let document =
        accord::governance::canonical_toml(&deu.consortium()).replace("rule = \"receiving\"", "rule = \"mean\"");
    let (version, digest) = esp.propose(&document).expect("ESP proposes");
    assert_eq!(version, 2);
    esp.syncer().announce_all().await;
    eventually("every node holds the proposal", CONVERGENCE, || {
        all_agree(&cluster, 1, &[(2, &["ESP"])])
    })
    .await;

    // Hostile or mistaken approvals are refused by the approver's own node.
    let unknown = deu.approve(2, [7; 32]).unwrap_err().to_string();
    assert!(unknown.contains("no proposal for version 2"), "{unknown}");
    let skipping = deu.approve(3, digest).unwrap_err().to_string();
    assert!(skipping.contains("no proposal for version 3"), "{skipping}");
    let again = esp.approve(2, digest).unwrap_err().to_string();
    assert!(again.contains("approved version 2"), "{again}");

    // DEU approves: two of four, below two-thirds. Nothing changes anywhere.
    deu.approve(2, digest).expect("DEU approves");
    deu.syncer().announce_all().await;
    eventually("a minority's approvals are held everywhere", CONVERGENCE, || {
        all_agree(&cluster, 1, &[(2, &["DEU", "ESP"])])
    })
    .await;
    assert_eq!(
        states(&cluster)[0].3,
        genesis_view,
        "the view is still computed under version 1"
    );
    for i in cluster.running_indices() {
        assert_eq!(
            cluster.running(i).consortium().reconcile.rule,
            accord::model::Rule::Receiving
        );
    }

    // FRA approves: three of four. Every node applies version 2 at once.
    fra.approve(2, digest).expect("FRA approves");
    fra.syncer().announce_all().await;
    eventually("version 2 in force everywhere", CONVERGENCE, || {
        all_agree(&cluster, 2, &[])
    })
    .await;
    let after = states(&cluster);
    assert_eq!(
        after[0].2,
        hex::encode(&digest),
        "the consortium digest is the proposal's"
    );
    assert_ne!(after[0].3, genesis_view, "the view is recomputed under version 2");
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        assert_eq!(
            node.consortium().reconcile.rule,
            accord::model::Rule::Mean,
            "{}",
            node.country()
        );
        let v2 = node.consortium_version(Some(2)).expect("version 2");
        assert_eq!(v2.proposer.as_deref(), Some("ESP"));
        assert_eq!(v2.approvals, ["DEU", "ESP", "FRA"]);
        assert_eq!(v2.document, document);
        let view = node.view().expect("view");
        assert_eq!(view.consortium.version, 2);
        assert_eq!(view.rule, accord::model::Rule::Mean);
    }
    // ITA, which never approved, applies it too; an approval now of version 2 is refused.
    let late = ita.approve(2, digest).unwrap_err().to_string();
    assert!(late.contains("no proposal for version 2"), "{late}");

    // A restarted node reads the version in force back from the entries in its store.
    let mut cluster = cluster;
    cluster.stop(2).await.expect("stop ITA");
    cluster.restart(2).await.expect("restart ITA");
    let ita = cluster.running(2);
    assert_eq!(ita.governance().current().version, 2);
    assert_eq!(ita.consortium().reconcile.rule, accord::model::Rule::Mean);
    eventually("views agree after the restart", CONVERGENCE, || {
        all_agree(&cluster, 2, &[])
    })
    .await;
    cluster.shutdown().await;
}
