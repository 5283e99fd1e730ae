//! Consortium governance across real nodes (SPEC §11), versions and keys: four members in a
//! full mesh over mutual TLS; a proposal and its approvals travel in the feeds like datasets; a
//! minority's approvals put nothing in force anywhere; once a quorum approves, every node
//! applies the new version at once and reports one consortium digest and one view digest
//! computed under it; a signing key rotated through a version is retired everywhere.
//! Members joining and leaving: `governance_members.rs`; agreements: `governance_agreements.rs`.

use crate::support::SettledStatus;
use accord::cluster::full_mesh;
use accord::hex;
use accord::model::{Cube, Period};

use crate::support::cluster::{ingest_synthetic, publish_and_announce, start_cluster, TestCluster};
use crate::support::governance::{all_agree, states};
use crate::support::{eventually, last_year};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_puts_a_version_in_force_on_every_node_and_a_minority_never_does() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], full_mesh, 1).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 300, 1);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    eventually("genesis views agree", || all_agree(&cluster, 1, &[])).await;
    let genesis_view = states(&cluster)[0].3.clone();
    let (deu, fra, ita, esp) = (
        cluster.running(0),
        cluster.running(1),
        cluster.running(2),
        cluster.running(3),
    );
    assert_eq!(deu.consortium().reconcile.rule, accord::consortium::Rule::Receiving);

    // ESP proposes version 2: the mean of the two sides as the reconciled figure.
    let document =
        accord::consortium::canonical_toml(&deu.consortium()).replace("rule = \"receiving\"", "rule = \"mean\"");
    let (version, digest) = esp.propose(&document).expect("ESP proposes");
    assert_eq!(version, 2);
    esp.syncer().announce_all().await;
    eventually("every node holds the proposal", || {
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
    eventually("a minority's approvals are held everywhere", || {
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
            accord::consortium::Rule::Receiving
        );
    }

    // FRA approves: three of four. Every node applies version 2 at once.
    fra.approve(2, digest).expect("FRA approves");
    fra.syncer().announce_all().await;
    eventually("version 2 in force everywhere", || all_agree(&cluster, 2, &[])).await;
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
            accord::consortium::Rule::Mean,
            "{}",
            node.country()
        );
        let v2 = node.consortium_version(Some(2)).expect("version 2");
        assert_eq!(v2.proposer.as_deref(), Some("ESP"));
        assert_eq!(v2.approvals, ["DEU", "ESP", "FRA"]);
        assert_eq!(v2.document, document);
        let view = node.view().expect("view");
        assert_eq!(view.consortium.version, 2);
        assert_eq!(view.rule, accord::consortium::Rule::Mean);
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
    assert_eq!(ita.consortium().reconcile.rule, accord::consortium::Rule::Mean);
    eventually("views agree after the restart", || all_agree(&cluster, 2, &[])).await;
    cluster.shutdown().await;
}

/// DEU rotates its signing key through a version (SPEC §11): version 2 adds DEU's new key and
/// retires the old one after the seq of DEU's proposal. Once in force and DEU restarted on the
/// new key, its next entry verifies everywhere; an entry signed with the old key past
/// `retired_after_seq` is refused by every node, whatever its date.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_rotated_through_a_version_retires_the_old_key_everywhere() {
    use ring::signature::KeyPair;
    let mut cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], full_mesh, 1).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 300, 2);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    eventually("genesis views agree", || all_agree(&cluster, 1, &[])).await;

    // DEU's new key, written where its node.toml will point.
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    let new_key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let new_public = hex::encode(new_key.public_key().as_ref());
    std::fs::write(cluster.pki.join("deu.sign-2.pk8"), pkcs8.as_ref()).expect("write key");

    let deu_head = |cluster: &TestCluster, i: usize| {
        cluster
            .running(i)
            .heads()
            .expect("heads")
            .into_iter()
            .find(|(p, _)| p.as_str() == "DEU")
            .map(|(_, h)| h)
    };
    let deu = cluster.running(0);
    let proposal_seq = deu_head(&cluster, 0).expect("DEU").seq + 1;
    let genesis = accord::consortium::canonical_toml(&deu.consortium());
    let deu_block = genesis.find("country = \"DEU\"").expect("DEU");
    let key_end = deu_block + genesis[deu_block..].find("\n\n[[members]]").expect("next member");
    let rotated = format!(
        "{}\nretired_after_seq = {proposal_seq}\n\n[[members.keys]]\npublic_key = \"{new_public}\"\nvalid_from = \"2020-01-01\"{}",
        &genesis[..key_end],
        &genesis[key_end..]
    );
    let (version, digest) = deu.propose(&rotated).expect("DEU proposes");
    assert_eq!(version, 2);
    deu.syncer().announce_all().await;
    eventually("every node holds the proposal", || {
        all_agree(&cluster, 1, &[(2, &["DEU"])])
    })
    .await;
    for i in [1, 3] {
        let node = cluster.running(i);
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    eventually("version 2 in force everywhere", || all_agree(&cluster, 2, &[])).await;

    // An entry signed with the old key right after its last seq: refused by every node.
    let old_key_file = std::fs::read(cluster.pki.join("deu.sign.pk8")).expect("old key");
    let old_key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&old_key_file).expect("old key");
    let head = deu_head(&cluster, 0).expect("DEU");
    assert_eq!(head.seq, proposal_seq, "the proposal is DEU's last entry");
    let dataset = cluster.running(0).current_datasets().expect("datasets")[0]
        .dataset
        .clone();
    let late = accord::dataset::publish::sign_entry(
        &dataset,
        accord::dataset::publish::EntryParams {
            head: Some(head),
            created_at: accord::date::unix_now(),
            audience: Vec::new(),
            key: &old_key,
        },
    );
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let refused = node
            .accept(late.clone())
            .expect_err("the retired key signs nothing more")
            .to_string();
        assert!(
            refused.contains("retired that key after seq"),
            "{}: {refused}",
            node.country()
        );
    }

    // DEU restarts on its new key: its next entry reaches and verifies everywhere.
    let config = std::fs::read_to_string(&cluster.nodes[0].config_path).expect("node.toml");
    std::fs::write(
        &cluster.nodes[0].config_path,
        config.replace("deu.sign.pk8", "deu.sign-2.pk8"),
    )
    .expect("node.toml");
    cluster.stop(0).await.expect("stop DEU");
    cluster.restart(0).await.expect("restart DEU on the new key");
    let published = publish_and_announce(cluster.running(0), Cube::Asylum, period, &[]).await;
    assert_eq!(published.seq, proposal_seq + 1);
    eventually("DEU's entry under the new key is everywhere", || {
        for i in cluster.running_indices() {
            let seq = deu_head(&cluster, i).map(|h| h.seq);
            if seq != Some(published.seq) {
                return Err(format!("{} holds DEU at {seq:?}", cluster.running(i).country()));
            }
        }
        all_agree(&cluster, 2, &[])
    })
    .await;
    for i in cluster.running_indices() {
        let left_out = cluster.running(i).left_out().expect("left out");
        assert!(left_out.is_empty(), "{left_out:?}");
    }
    cluster.shutdown().await;
}

/// SPEC §15: the estimates' parameters are the consortium's, so they change only through a
/// version, and on every node at once. Three members start from a consortium asking for
/// imem-lite estimates anchored on DEU; every pair total carries an estimate and the nodes agree
/// on the view. A version declaring FRA's emigration register in the high undercount class
/// (it misses more, so its reports are corrected up) goes in force with two approvals: every
/// node's estimates of FRA's emigration rise, the views agree again on a new digest, and every
/// member attests that new digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_changes_a_members_class_changes_the_estimates_everywhere() {
    let cluster = crate::support::cluster::start_cluster_with(accord::cluster::ClusterOptions {
        consortium_edit: Some(std::sync::Arc::new(|text: &str| {
            format!("{text}\n[estimates]\nmethod = \"imem-lite\"\nreference = [\"DEU\"]\n")
        })),
        dashboard: true,
        ..crate::support::cluster::cluster_options(&["DEU", "FRA", "ITA"], full_mesh, 1)
    })
    .await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 400, 3);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    eventually("genesis views agree", || all_agree(&cluster, 1, &[])).await;
    let fra_code = accord::model::Country::parse("FRA").unwrap();
    let estimates_of_fra = |i: usize| -> Vec<u64> {
        let view = cluster.running(i).view().expect("view");
        view.pairs
            .iter()
            .filter(|(k, _)| k.origin == fra_code && k.period == period)
            .map(|(_, t)| t.estimate.expect("an estimate on every pair total").value)
            .collect()
    };
    let before = estimates_of_fra(0);
    assert!(!before.is_empty());
    let genesis_view = states(&cluster)[0].3.clone();
    assert!(cluster
        .running(0)
        .view()
        .unwrap()
        .notes
        .iter()
        .any(|n| n.text.contains("estimates: imem-lite")));

    let (deu, fra) = (cluster.running(0), cluster.running(1));
    let document = accord::consortium::canonical_toml(&deu.consortium()).replace(
        "[[members]]\ncountry = \"FRA\"\n",
        "[[members]]\ncountry = \"FRA\"\n\n[members.measurement]\nemigration_undercount = \"high\"\n",
    );
    assert_ne!(document, accord::consortium::canonical_toml(&deu.consortium()));
    let (version, digest) = fra.propose(&document).expect("FRA proposes");
    assert_eq!(version, 2);
    fra.syncer().announce_all().await;
    eventually("every node holds the proposal", || {
        all_agree(&cluster, 1, &[(2, &["FRA"])])
    })
    .await;
    deu.approve(2, digest).expect("DEU approves");
    deu.syncer().announce_all().await;
    eventually("version 2 in force everywhere", || all_agree(&cluster, 2, &[])).await;

    let after_view = states(&cluster)[0].3.clone();
    assert_ne!(after_view, genesis_view, "the estimates are part of the view digest");
    for i in cluster.running_indices() {
        let after = estimates_of_fra(i);
        assert_eq!(after.len(), before.len());
        assert!(
            after.iter().zip(&before).all(|(a, b)| a >= b) && after.iter().zip(&before).any(|(a, b)| a > b),
            "{}: FRA's emigration is corrected up: {before:?} -> {after:?}",
            cluster.running(i).country()
        );
    }
    // `status` says why: FRA's emigration declared high now, DEU the reference.
    let status = cluster.running(2).settled_status().expect("status");
    assert_eq!(status.measurement.len(), 6, "{:?}", status.measurement);
    let fra_out = status
        .measurement
        .iter()
        .find(|m| m.member == "FRA" && m.direction == "emigration")
        .expect("FRA emigration");
    assert_eq!(fra_out.declared_undercount, "high");
    assert!(fra_out.coverage_lower <= fra_out.coverage && fra_out.coverage <= fra_out.coverage_upper);
    assert!(status.measurement.iter().any(|m| m.member == "DEU" && m.reference));
    // The dashboard shows the estimates, the pair's picture and the measurement table.
    let addr = cluster.nodes[0].dashboard.expect("DEU serves its dashboard");
    let page = crate::support::http_body(addr, &format!("/flows?period={period}&origin=FRA&destination=DEU"));
    let fra_deu = cluster.running(0).view().unwrap().pairs[&accord::reconcile::PairKey {
        origin: fra_code,
        destination: accord::model::Country::parse("DEU").unwrap(),
        period,
    }]
        .estimate
        .unwrap();
    let text = format!("{} [{}, {}]", fra_deu.value, fra_deu.lower, fra_deu.upper);
    assert!(
        page.contains("estimate [95% interval]") && page.contains(&text),
        "{page}"
    );
    assert!(
        page.contains("id=\"pair-picture\"") && page.contains(&format!("estimate {text}")),
        "{page}"
    );
    let matrix = crate::support::http_body(addr, &format!("/flows?period={period}&show=estimate"));
    assert!(
        matrix.contains("Modelled estimates, origin (rows)")
            && matrix.contains("data-destination=\"DEU\" title=\"FRA to DEU: sender ")
            && matrix.contains(&format!(">{}</a>", fra_deu.value)),
        "{matrix}"
    );
    let overview = crate::support::http_body(addr, "/");
    assert!(
        overview.contains("id=\"measurement\"") && overview.contains("(reference)"),
        "{overview}"
    );
    eventually("every member attests the view computed under version 2", || {
        for i in cluster.running_indices() {
            let node = cluster.running(i);
            node.attest_if_changed(accord::date::unix_now())
                .map_err(|e| e.to_string())?;
        }
        for i in cluster.running_indices() {
            let status = cluster.running(i).settled_status().map_err(|e| e.to_string())?;
            if status.view_digest != after_view || status.attested_by != ["DEU", "FRA", "ITA"] {
                return Err(format!(
                    "{}: {} attested by {:?}",
                    status.country, status.view_digest, status.attested_by
                ));
            }
        }
        Ok(())
    })
    .await;
    cluster.shutdown().await;
}
