//! Attestations across real nodes (SPEC §12): after converging, every member has signed what
//! it holds and computes, the notes travel with the `Attestations` RPC (and are relayed), and
//! every `status` names every member in `attested_by`. A forged or foreign note is refused.

mod common;

use accord::cluster::{full_mesh, line};
use accord::model::{Cube, Period};
use common::{eventually, ingest_synthetic, last_year, publish_and_announce, start_cluster, CONVERGENCE};

async fn every_status_names(codes: &[&str], peered: fn(usize, usize, usize) -> bool) {
    let cluster = start_cluster(codes, peered, 1).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 200, 6);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    let mut all: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    all.sort();
    eventually("every node names every member in attested_by", CONVERGENCE, || {
        for i in cluster.running_indices() {
            let status = cluster.running(i).status().map_err(|e| e.to_string())?;
            if status.attested_by != all {
                return Err(format!("{}: attested_by {:?}", status.country, status.attested_by));
            }
        }
        Ok(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_converged_members_each_name_all_five_in_attested_by() {
    every_status_names(&["DEU", "FRA", "ITA", "ESP", "POL"], full_mesh).await;
}

/// In a line, the two ends never talk: their attestations reach each other through relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_are_relayed_along_a_line() {
    every_status_names(&["DEU", "FRA", "ITA"], line).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_attestations_are_refused() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, 3600).await;
    let (deu, fra) = (cluster.running(0), cluster.running(1));
    let now = accord::date::unix_now();
    let note = deu.attestation(now).expect("DEU attests");
    assert_eq!(fra.accept_attestation(&note), Ok(true));
    assert_eq!(fra.accept_attestation(&note), Ok(false), "not newer than the one held");
    // The text changed after signing: the signature no longer holds.
    let forged = note.replacen("time ", "time  ", 1);
    assert!(fra.accept_attestation(&forged).is_err());
    let changed_view = {
        let at = note.find("\nview ").unwrap() + 6;
        let mut bytes = note.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        String::from_utf8(bytes).unwrap()
    };
    let refused = fra.accept_attestation(&changed_view).unwrap_err();
    assert!(refused.contains("no signature under its keys"), "{refused}");
    // Signed by FRA's key but claiming to be DEU's.
    let text = accord::attest::open(&note).unwrap().0.to_string();
    let fra_key = std::fs::read(cluster.pki.join("fra.sign.pk8")).unwrap();
    let fra_key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&fra_key).unwrap();
    let impostor = accord::attest::sign(
        &text.replace(
            &format!("time {}", accord::date::format_timestamp(now)),
            &format!("time {}", accord::date::format_timestamp(now + 1)),
        ),
        "accord.member/DEU",
        &fra_key,
    )
    .unwrap();
    let refused = deu.accept_attestation(&impostor);
    assert_eq!(refused, Ok(false), "a node never takes another's note for its own");
    let refused = fra.accept_attestation(&impostor).unwrap_err();
    assert!(refused.contains("no signature under its keys"), "{refused}");
    // A note far over the size limit is refused before it is read.
    let huge = "x".repeat(accord::node::MAX_ATTESTATION_BYTES + 1);
    assert!(fra.accept_attestation(&huge).unwrap_err().contains("over the limit"));
    cluster.shutdown().await;
}

/// Members other than DEU, wired as a full mesh among themselves; DEU's node talks to nobody.
fn mesh_without_deu(i: usize, j: usize, _n: usize) -> bool {
    i != j && i != 0 && j != 0
}

/// A split view healed (SPEC §12): DEU signs two different seq-1 entries and gives one to FRA and
/// the other to ESP. The honest members find the fork when they sync, and every one of them
/// leaves DEU's entries from seq 1 on out of the view, whichever branch it holds: FRA, ITA and
/// ESP report the equivocation and one view digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocators_branches_leave_every_honest_view_and_the_views_agree() {
    // Pulls only on announcements: nothing relays DEU's first branch to ESP before ESP holds
    // the second (with a periodic pull it could, and ESP alone would see the fork).
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], mesh_without_deu, 3600).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 200, 7);
        if i != 0 {
            publish_and_announce(node, Cube::Flows, period, &[]).await;
        }
    }
    eventually("the honest members hold each other's feeds", CONVERGENCE, || {
        for i in [1, 2, 3] {
            let heads = cluster.running(i).heads().map_err(|e| e.to_string())?.len();
            if heads != 3 {
                return Err(format!("node {i} holds {heads} feeds"));
            }
        }
        Ok(())
    })
    .await;
    let deu = cluster.running(0);
    let one = deu.publish(Cube::Flows, period, Vec::new()).expect("DEU publishes");
    let first = deu.entry(one.publisher, 1).unwrap().unwrap();
    let key = std::fs::read(cluster.pki.join("deu.sign.pk8")).unwrap();
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).unwrap();
    let dataset = deu
        .current_datasets()
        .unwrap()
        .into_iter()
        .find(|d| d.publisher == one.publisher)
        .unwrap()
        .dataset;
    let mut other = dataset.clone();
    other.cells.truncate(other.cells.len() / 2);
    let second = accord::dataset::publish::sign_entry(
        &other,
        accord::dataset::publish::EntryParams {
            head: None,
            created_at: accord::date::unix_now(),
            audience: Vec::new(),
            key: &key,
        },
    );
    cluster.running(1).accept(first).expect("FRA takes one branch");
    cluster.running(3).accept(second).expect("ESP takes the other");
    for i in [1, 3] {
        cluster.running(i).syncer().announce_all().await;
    }
    eventually("every honest node reports DEU and one view digest", CONVERGENCE, || {
        let mut digests = std::collections::BTreeSet::new();
        for i in [1, 2, 3] {
            let node = cluster.running(i);
            let status = node.status().map_err(|e| e.to_string())?;
            if status.equivocating != ["DEU"] {
                return Err(format!("{}: equivocating {:?}", status.country, status.equivocating));
            }
            let view = node.view().map_err(|e| e.to_string())?;
            if view.inputs.keys().any(|(p, _, _)| *p == one.publisher) {
                return Err(format!("{}: DEU still in the view", status.country));
            }
            digests.insert(status.view_digest);
        }
        (digests.len() == 1)
            .then_some(())
            .ok_or(format!("view digests differ: {digests:?}"))
    })
    .await;
    cluster.shutdown().await;
}
