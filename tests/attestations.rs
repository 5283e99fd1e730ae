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
