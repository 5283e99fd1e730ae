//! Attestations across real nodes (SPEC §12): after converging, every member has signed what
//! it holds and computes, the notes travel with the `Attestations` RPC (and are relayed), and
//! every `status` names every member in `attested_by`. A forged or foreign note is refused.

use crate::support::SettledStatus;
use accord::cluster::{full_mesh, line};
use accord::exchange::Feeds;
use accord::model::{Cube, Period};
use accord::node::PublishRequest;

use crate::support::cluster::{ingest_synthetic, publish_and_announce, start_cluster, TestCluster};
use crate::support::{eventually, last_year};

async fn every_status_names(codes: &[&str], peered: fn(usize, usize, usize) -> bool) -> TestCluster {
    let cluster = start_cluster(codes, peered, 1).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 200, 6);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    let mut all: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    all.sort();
    eventually("every node names every member in attested_by", || {
        for i in cluster.running_indices() {
            let status = cluster.running(i).settled_status().map_err(|e| e.to_string())?;
            if status.attested_by != all {
                return Err(format!("{}: attested_by {:?}", status.country, status.attested_by));
            }
        }
        Ok(())
    })
    .await;
    cluster
}

/// The acceptance of SPEC §12: five converged members each name all five in `attested_by`;
/// `certify` on DEU writes a bundle, and `accord verify` (another process, with only the
/// consortium file) lists all five as attesting that very view and a witness for every entry.
/// Any change to the bundle is caught and named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_converged_members_attest_and_a_certified_view_verifies_elsewhere() {
    let cluster = every_status_names(&["DEU", "FRA", "ITA", "ESP", "POL"], full_mesh).await;
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("certified");
    let summary = cluster.running(0).certify(&bundle).expect("certify");
    assert_eq!(summary.attested_by, ["DEU", "ESP", "FRA", "ITA", "POL"]);
    assert_eq!(summary.view_digest, cluster.running(0).view_digest().unwrap());
    // The auditor has the consortium file and the bundle, nothing of the cluster.
    let consortium_file = out.path().join("consortium.toml");
    std::fs::copy(cluster.pki.join("consortium.toml"), &consortium_file).unwrap();
    cluster.shutdown().await;

    let trusted = accord::consortium::Consortium::load(&consortium_file).unwrap();
    let report = accord::certify::verify(&bundle, &trusted).expect("the bundle verifies");
    let attested: Vec<String> = report.attested.iter().map(|a| a.member.to_string()).collect();
    assert_eq!(attested, ["DEU", "ESP", "FRA", "ITA", "POL"]);
    assert_eq!(report.view_digest, summary.view_digest);
    assert_eq!(report.entries.len(), 5, "one flows dataset per member");
    for e in &report.entries {
        let w = e
            .witness
            .as_ref()
            .unwrap_or_else(|| panic!("{} seq {} has no witness", e.publisher, e.seq));
        assert_ne!(w.member, e.publisher, "a witness is another member");
        assert!(w.time >= e.created_at, "witnessed after it was created");
    }
    // The binary, as an auditor runs it.
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["verify", "--consortium"])
        .arg(&consortium_file)
        .arg(&bundle)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        stdout.starts_with(&format!("valid: view {}", accord::hex::encode(&summary.view_digest))),
        "{stdout}"
    );
    assert!(stdout.contains("attested by 5 members: DEU at "), "{stdout}");
    assert_eq!(stdout.matches("witnessed by ").count(), 5, "{stdout}");

    // Tampered copies: each is refused, naming what is wrong.
    let tampered = |name: &str, change: &dyn Fn(&std::path::Path)| {
        let copy = out.path().join(name);
        copy_dir(&bundle, &copy);
        change(&copy);
        accord::certify::verify(&copy, &trusted).expect_err(name).to_string()
    };
    let error = tampered("csv", &|d| {
        let file = d.join("flows.csv");
        let text = std::fs::read_to_string(&file).unwrap();
        let at = text.find('\n').unwrap()
            + 1
            + text[text.find('\n').unwrap() + 1..]
                .find(|c: char| c.is_ascii_digit())
                .unwrap();
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'9' { b'8' } else { bytes[at] + 1 };
        std::fs::write(&file, bytes).unwrap();
    });
    assert!(error.contains("flows.csv is not the view the entries make"), "{error}");
    let error = tampered("note", &|d| {
        let file = d.join("attestations/FRA.note");
        let note = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, note.replacen("time ", "time  ", 1)).unwrap();
    });
    assert!(error.contains("attestations/FRA.note"), "{error}");
    let error = tampered("entry", &|d| {
        std::fs::remove_file(d.join("entries/ITA-1.json")).unwrap();
    });
    assert!(error.contains("the view is not the one certified"), "{error}");
    let error = tampered("unattested", &|d| {
        for f in std::fs::read_dir(d.join("attestations")).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    });
    assert!(error.contains("no attestation"), "{error}");
    let error = tampered("copied", &|d| {
        std::fs::copy(d.join("attestations/FRA.note"), d.join("attestations/ZZZ.note")).unwrap();
    });
    assert!(
        error.contains("attestations/ZZZ.note: holds FRA's attestation"),
        "{error}"
    );
    let error = tampered("link", &|d| {
        std::fs::remove_file(d.join("entries/ITA-1.json")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("entries/ITA-1.json")).unwrap();
    });
    assert!(error.contains("entries/ITA-1.json: not a regular file"), "{error}");
    let error = tampered("certifier", &|d| {
        let file = d.join("certificate.json");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(
            &file,
            text.replace("\"certified_by\": \"DEU\"", "\"certified_by\": \"DEU\\nvalid: forged\""),
        )
        .unwrap();
    });
    assert!(error.contains("certified_by: not a member code"), "{error}");
    let error = tampered("document", &|d| {
        let file = d.join("consortium.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.replacen("name = ", "name = \"x\"\n#", 1)).unwrap();
    });
    assert!(error.contains("consortium.toml"), "{error}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

/// In a line, the two ends never talk: their attestations reach each other through relays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestations_are_relayed_along_a_line() {
    every_status_names(&["DEU", "FRA", "ITA"], line).await.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_attestations_are_refused() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, 3600).await;
    let (deu, fra) = (cluster.running(0), cluster.running(1));
    let now = accord::date::unix_now();
    let note = deu.attestation(now).expect("DEU attests");
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
    let refused = fra.accept_attestation(&impostor).unwrap_err();
    assert!(refused.contains("no signature under its keys"), "{refused}");
    assert_eq!(
        deu.accept_attestation(&impostor),
        Ok(false),
        "a node never takes a note for its own"
    );
    // The genuine note, padded by a relay with a signature line nobody can check, is kept as
    // its text and the one signature that verified; the same note again, or an older one,
    // changes nothing.
    let padded = format!("{note}\u{2014} accord.member/DEU {}\n", "QUJD".repeat(20));
    assert_eq!(fra.accept_attestation(&padded), Ok(true));
    let kept = fra.attestations().unwrap();
    assert!(
        kept.contains(&note) && !kept.contains(&padded),
        "stored as signed, not as padded"
    );
    assert_eq!(fra.accept_attestation(&note), Ok(false), "not newer than the one held");
    assert_eq!(
        fra.accept_attestation(&changed_view),
        Ok(false),
        "not newer: dropped unchecked"
    );
    // A forgery newer than the note held is checked, and refused.
    assert!(fra.accept_attestation(&impostor).unwrap_err().contains("no signature"));
    // A note far over the size limit is refused before it is read.
    let huge = "x".repeat(accord::node::MAX_ATTESTATION_BYTES + 1);
    assert!(fra.accept_attestation(&huge).unwrap_err().contains("over the limit"));
    cluster.shutdown().await;
}

/// FRA - ITA - ESP in a line; DEU's node talks to nobody. FRA and ESP never sync directly.
fn line_without_deu(i: usize, j: usize, _n: usize) -> bool {
    i != 0 && j != 0 && i.abs_diff(j) == 1
}

/// One sync round driven by the test: each honest node pulls from its peers once, FRA first,
/// ESP last (the order in which news from ESP reaches FRA latest).
async fn sync_round(cluster: &TestCluster) {
    for i in [1, 2, 3] {
        for (peer, result) in cluster.running(i).syncer().pull_all().await {
            result.unwrap_or_else(|e| panic!("node {i} pulling from {peer}: {e}"));
        }
    }
}

/// The split: FRA - ITA - ESP in a line hold each other's feeds; DEU signs two different seq-1
/// entries and FRA takes one, ESP the other. Returns the cluster and the two header digests.
async fn split_line() -> (TestCluster, [u8; 32], [u8; 32]) {
    // No periodic pulls, and nothing announced after the fork: the test drives every round.
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], line_without_deu, 3600).await;
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 200, 7);
        if i != 0 {
            node.publish(PublishRequest::new(Cube::Flows, period)).expect("publish");
        }
    }
    sync_round(&cluster).await;
    sync_round(&cluster).await;
    for i in [1, 2, 3] {
        assert_eq!(
            cluster.running(i).heads().unwrap().len(),
            3,
            "node {i} holds the honest feeds"
        );
    }
    let deu = cluster.running(0);
    let one = deu
        .publish(PublishRequest::new(Cube::Flows, period))
        .expect("DEU publishes");
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
    let digest = |e: &accord::proto::Entry| accord::dataset::envelope::sha256(&e.envelope.as_ref().unwrap().payload);
    let (a, b) = (digest(&first), digest(&second));
    cluster.running(1).accept(first).expect("FRA takes one branch");
    cluster.running(3).accept(second).expect("ESP takes the other");
    (cluster, a, b)
}

/// A split view found and healed (SPEC §12): DEU signs two different seq-1 entries and gives one
/// to FRA and the other to ESP, the two ends of a line FRA - ITA - ESP. ITA meets both sides and
/// holds the fork evidence; its attestation names the fork, and FRA and ESP fetch the other
/// side from ITA. Within two rounds every honest node reports the equivocation and leaves DEU's
/// entries from seq 1 on out of the view, whichever branch it holds: one view digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_view_in_a_line_is_found_and_healed_within_two_rounds() {
    let (cluster, _, _) = split_line().await;
    let deu_code = accord::model::Country::parse("DEU").unwrap();
    sync_round(&cluster).await;
    sync_round(&cluster).await;
    let mut digests = std::collections::BTreeSet::new();
    for i in [1, 2, 3] {
        let node = cluster.running(i);
        let status = node.settled_status().unwrap();
        assert_eq!(status.equivocating, ["DEU"], "{} after two rounds", status.country);
        let view = node.view().unwrap();
        assert!(
            !view.inputs.keys().any(|(p, _, _)| *p == deu_code),
            "{}: DEU left the view",
            status.country
        );
        digests.insert(status.view_digest);
    }
    assert_eq!(digests.len(), 1, "one view digest on FRA, ITA and ESP: {digests:?}");
    // FRA never met ESP: it holds ESP's side of the fork, fetched from ITA as evidence.
    let fra_forks = cluster.running(1).forks().unwrap();
    assert_eq!(fra_forks.len(), 1);
    assert_eq!(fra_forks[0].seq, 1);
    // And after another round every honest node names the three honest members as attesting
    // the view it computes.
    sync_round(&cluster).await;
    for i in [1, 2, 3] {
        let status = cluster.running(i).settled_status().unwrap();
        assert_eq!(status.attested_by, ["ESP", "FRA", "ITA"], "{}", status.country);
    }
    cluster.shutdown().await;
}

/// The fork settled (SPEC §12): after the split is found, ITA proposes a consortium version
/// keeping FRA's branch of DEU's feed; FRA and ESP approve (three of four). ESP, which holds
/// the other branch, sets it aside and fetches the kept one through ITA; then DEU is back in
/// every honest view, on the kept branch, with one view digest, and the set-aside entry is
/// refused wherever it is offered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consortium_version_naming_the_branch_to_keep_brings_the_publisher_back() {
    let (cluster, kept, set_aside) = split_line().await;
    sync_round(&cluster).await;
    sync_round(&cluster).await;
    let deu = accord::model::Country::parse("DEU").unwrap();
    let (fra, ita, esp) = (cluster.running(1), cluster.running(2), cluster.running(3));
    let document = format!(
        "{}\n[[forks]]\npublisher = \"DEU\"\nseq = 1\nkeep = \"{}\"\n",
        accord::consortium::canonical_toml(&ita.consortium()),
        accord::hex::encode(&kept)
    );
    let (version, digest) = ita.propose(&document).expect("ITA proposes");
    sync_round(&cluster).await;
    fra.approve(version, digest).expect("FRA approves");
    esp.approve(version, digest).expect("ESP approves");
    let mut rounds = 0;
    loop {
        sync_round(&cluster).await;
        rounds += 1;
        let settled = [fra, ita, esp].iter().all(|n| {
            n.consortium().branch_kept(deu, 1) == Some(kept)
                && n.heads().unwrap().iter().any(|(p, h)| *p == deu && h.digest == kept)
        });
        if settled || rounds == 5 {
            break;
        }
    }
    let mut digests = std::collections::BTreeSet::new();
    for node in [fra, ita, esp] {
        let status = node.settled_status().unwrap();
        assert_eq!(status.consortium_version, version, "{}", status.country);
        let head = node.heads().unwrap().into_iter().find(|(p, _)| *p == deu);
        assert_eq!(
            head.map(|(_, h)| h.digest),
            Some(kept),
            "{}: DEU's feed is the kept branch",
            status.country
        );
        let view = node.view().unwrap();
        assert!(
            view.inputs.keys().any(|(p, _, _)| *p == deu),
            "{}: DEU is back in the view after {rounds} rounds",
            status.country
        );
        assert!(node.left_out().unwrap().is_empty(), "{}", status.country);
        assert_eq!(status.equivocating, ["DEU"], "the equivocation stays on record");
        digests.insert(status.view_digest);
    }
    assert_eq!(digests.len(), 1, "one view digest: {digests:?}");
    // ESP held the other branch: it is now its fork evidence, and refused as an entry.
    let evidence = esp.forks().unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!((evidence[0].held, evidence[0].conflicting), (kept, set_aside));
    let refused = fra.accept(evidence[0].entry.clone()).unwrap_err().to_string();
    assert!(refused.contains("set aside"), "{refused}");
    cluster.shutdown().await;
}
