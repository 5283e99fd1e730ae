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
    eventually("genesis views agree", CONVERGENCE, || all_agree(&cluster, 1, &[])).await;

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
    let genesis = accord::governance::canonical_toml(&deu.consortium());
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
    eventually("every node holds the proposal", CONVERGENCE, || {
        all_agree(&cluster, 1, &[(2, &["DEU"])])
    })
    .await;
    for i in [1, 3] {
        let node = cluster.running(i);
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    eventually("version 2 in force everywhere", CONVERGENCE, || {
        all_agree(&cluster, 2, &[])
    })
    .await;

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
    eventually("DEU's entry under the new key is everywhere", CONVERGENCE, || {
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

/// Genesis without POL: its block cut from the generated consortium file (POL's certificate and
/// signing key stay in the PKI, as a candidate's would).
fn without_pol(text: &str) -> String {
    match text.find("\n[[members]]\ncountry = \"POL\"") {
        Some(at) => text[..at].to_string() + "\n",
        None => text.to_string(),
    }
}

/// The five-node scenario (SPEC §11): genesis DEU, FRA, ITA, ESP; POL runs a node and
/// every member lists it as a peer. ESP proposes adding POL with its key; DEU and FRA approve
/// (three of four: two-thirds); until POL approves too nothing changes, and POL sees headers
/// only. Once POL approves, every node applies version 2: POL is a member, publishes, and its
/// entries appear in every view; all five report one consortium digest and one view digest.
/// Then DEU rotates its key through version 3, and the retired key's next entry is refused
/// everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_member_joins_through_a_quorum_and_its_own_approval() {
    use ring::signature::KeyPair;
    common::init_logging();
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = accord::cluster::ClusterOptions {
        countries: common::countries(&["DEU", "FRA", "ITA", "ESP", "POL"]),
        peered: full_mesh,
        sync_interval_secs: 1,
        consortium_edit: Some(without_pol),
        dashboard: false,
    };
    let cluster = accord::cluster::LocalCluster::start(dir.path(), &options)
        .await
        .expect("cluster");
    let cluster = TestCluster { cluster, dir };
    let period = Period::Year(last_year());
    for i in 0..4 {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 300, 3);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    let pol = cluster.running(4);
    assert!(pol
        .consortium()
        .member(accord::model::Country::parse("POL").unwrap())
        .is_none());
    ingest_synthetic(pol, last_year(), 300, 3);
    let refused = pol.publish(Cube::Flows, period, Vec::new()).unwrap_err().to_string();
    assert!(refused.contains("POL"), "a non-member cannot publish: {refused}");

    // ESP proposes version 2 with POL and its signing key.
    let key_file = std::fs::read(cluster.pki.join("pol.sign.pk8")).expect("POL's key");
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key_file).expect("key");
    let esp = cluster.running(3);
    let document = format!(
        "{}\n[[members]]\ncountry = \"POL\"\n\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2020-01-01\"\n",
        accord::governance::canonical_toml(&esp.consortium()),
        hex::encode(key.public_key().as_ref())
    );
    let (version, digest) = esp.propose(&document).expect("ESP proposes");
    assert_eq!(version, 2);
    esp.syncer().announce_all().await;
    for i in [0, 1] {
        let node = cluster.running(i);
        eventually("the approver holds the proposal", CONVERGENCE, || {
            let pending = node.governance().pending.len();
            (pending == 1).then_some(()).ok_or(format!("{pending} pending"))
        })
        .await;
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    eventually(
        "three of four approvals everywhere, POL's still missing",
        CONVERGENCE,
        || {
            let states = states(&cluster);
            let members_view = &states[0].3;
            for s in &states {
                let approvals: Vec<_> = s.4.iter().map(|p| (p.0, p.2.clone())).collect();
                let wanted = vec![(2, vec!["DEU".to_string(), "ESP".into(), "FRA".into()])];
                // POL holds headers only: its view is not the members' yet.
                if s.1 != 1 || s.2 != states[0].2 || approvals != wanted || (s.0 != "POL" && &s.3 != members_view) {
                    return Err(format!("{states:#?}"));
                }
            }
            Ok(())
        },
    )
    .await;
    // POL, a member-to-be, has the members' feeds as signed headers only.
    let deu_entry = pol
        .entry(accord::model::Country::parse("DEU").unwrap(), 1)
        .expect("read")
        .expect("POL holds DEU's first entry");
    assert!(!deu_entry.has_payload, "no data reaches a member-to-be");

    pol.approve(2, digest).expect("POL approves");
    pol.syncer().announce_all().await;
    eventually("version 2 in force everywhere", CONVERGENCE, || {
        all_agree(&cluster, 2, &[])
    })
    .await;
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let v2 = node.consortium_version(Some(2)).expect("version 2");
        assert_eq!(v2.approvals, ["DEU", "ESP", "FRA", "POL"], "{}", node.country());
        assert!(node
            .consortium()
            .member(accord::model::Country::parse("POL").unwrap())
            .is_some());
    }

    // POL publishes as a member; its flows appear in every view.
    let published = publish_and_announce(pol, Cube::Flows, period, &[]).await;
    eventually("POL's dataset in every view, one view digest", CONVERGENCE, || {
        for i in cluster.running_indices() {
            let node = cluster.running(i);
            let view = node.view().map_err(|e| e.to_string())?;
            let from_pol = view.inputs.keys().any(|(p, _, _)| p.as_str() == "POL");
            if !from_pol {
                return Err(format!("{} has no POL input yet", node.country()));
            }
        }
        all_agree(&cluster, 2, &[])
    })
    .await;
    assert_eq!(published.seq, 2, "POL's feed: its approval, then its dataset");
    // POL now holds the others' payloads too.
    eventually("POL fetched the payloads it lacked", CONVERGENCE, || {
        let e = pol
            .entry(accord::model::Country::parse("DEU").unwrap(), 1)
            .map_err(|e| e.to_string())?
            .ok_or("missing")?;
        e.has_payload
            .then_some(())
            .ok_or("DEU seq 1 still header only".to_string())
    })
    .await;

    // Then DEU rotates its signing key through version 3 (four of five approve: DEU's proposal,
    // FRA, ESP and POL), retiring the old key after the proposal's seq: an entry under the old
    // key past that seq is refused by all five.
    let deu_code = accord::model::Country::parse("DEU").unwrap();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("key");
    let new_key = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
    let deu = cluster.running(0);
    let deu_head = |i: usize| {
        cluster
            .running(i)
            .heads()
            .expect("heads")
            .into_iter()
            .find(|(p, _)| *p == deu_code)
            .map(|(_, h)| h)
            .expect("DEU's feed")
    };
    let proposal_seq = deu_head(0).seq + 1;
    let v2 = accord::governance::canonical_toml(&deu.consortium());
    let deu_block = v2.find("country = \"DEU\"").expect("DEU");
    let key_end = deu_block + v2[deu_block..].find("\n\n[[members]]").expect("next member");
    let v3 = format!(
        "{}\nretired_after_seq = {proposal_seq}\n\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2020-01-01\"{}",
        &v2[..key_end],
        hex::encode(new_key.public_key().as_ref()),
        &v2[key_end..]
    );
    let (version, digest) = deu.propose(&v3).expect("DEU proposes version 3");
    assert_eq!(version, 3);
    deu.syncer().announce_all().await;
    for i in [1, 3, 4] {
        let node = cluster.running(i);
        eventually("the approver holds the proposal", CONVERGENCE, || {
            let pending = node.governance().pending.len();
            (pending == 1).then_some(()).ok_or(format!("{pending} pending"))
        })
        .await;
        node.approve(3, digest).expect("approve version 3");
        node.syncer().announce_all().await;
    }
    eventually("version 3 in force on all five", CONVERGENCE, || {
        all_agree(&cluster, 3, &[])
    })
    .await;
    let old_key = std::fs::read(cluster.pki.join("deu.sign.pk8")).expect("old key");
    let old_key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&old_key).expect("old key");
    let dataset = deu.current_datasets().expect("datasets")[0].dataset.clone();
    let late = accord::dataset::publish::sign_entry(
        &dataset,
        accord::dataset::publish::EntryParams {
            head: Some(deu_head(0)),
            created_at: accord::date::unix_now(),
            audience: Vec::new(),
            key: &old_key,
        },
    );
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let refused = node.accept(late.clone()).expect_err("retired").to_string();
        assert!(
            refused.contains("retired that key after seq"),
            "{}: {refused}",
            node.country()
        );
    }
    cluster.shutdown().await;
}

/// When the DEU-FRA agreement of the sharing test ends: set once, before the cluster starts.
static AGREEMENT_UNTIL: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Genesis with `[sharing] default = "agreements"` and one bilateral agreement: DEU and FRA share
/// `flows` from a day ago until `AGREEMENT_UNTIL`.
fn with_agreement(text: &str) -> String {
    let until = *AGREEMENT_UNTIL.get().expect("set before the cluster starts");
    let from = accord::date::format_timestamp(until - 86_400);
    let until = accord::date::format_timestamp(until);
    let first_member = text.find("\n[[members]]").expect("members");
    format!(
        "{}\n[sharing]\ndefault = \"agreements\"\n\n[[agreements]]\nname = \"DEU-FRA flows\"\nparties = [\"DEU\", \"FRA\"]\ncubes = [\"flows\"]\nfrom = \"{from}\"\nuntil = \"{until}\"\n{}",
        &text[..first_member],
        &text[first_member..]
    )
}

/// A bilateral agreement (SPEC §11) in a line DEU - FRA - ITA, where everything ITA gets from
/// DEU passes through FRA: DEU's flows reach FRA with their payload and ITA as signed headers
/// only, even through the relay and even when DEU signs an entry for everyone by hand; a cube or
/// an audience outside the agreement is refused at publish; once the agreement has ended, DEU's
/// new entries stop reaching FRA, and FRA keeps what it received before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bilateral_agreement_keeps_the_payload_between_its_parties_until_it_ends() {
    // Long enough for the cluster to start and DEU to publish on a loaded machine.
    let until = *AGREEMENT_UNTIL.get_or_init(|| accord::date::unix_now() + 25);
    common::init_logging();
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = accord::cluster::ClusterOptions {
        countries: common::countries(&["DEU", "FRA", "ITA"]),
        peered: accord::cluster::line,
        sync_interval_secs: 1,
        consortium_edit: Some(with_agreement),
        dashboard: false,
    };
    let cluster = accord::cluster::LocalCluster::start(dir.path(), &options)
        .await
        .expect("cluster");
    let cluster = TestCluster { cluster, dir };
    let (deu_code, fra_code, ita_code) = (
        accord::model::Country::parse("DEU").unwrap(),
        accord::model::Country::parse("FRA").unwrap(),
        accord::model::Country::parse("ITA").unwrap(),
    );
    let period = Period::Year(last_year());
    let deu = cluster.running(0);
    ingest_synthetic(deu, last_year(), 300, 4);

    // Refused at publish: a cube no agreement covers, an audience wider than the agreement.
    let asylum = deu.publish(Cube::Asylum, period, Vec::new()).unwrap_err().to_string();
    assert!(
        asylum.contains("no sharing agreement in force lets DEU share asylum"),
        "{asylum}"
    );
    let wider = deu
        .publish(Cube::Flows, period, vec![ita_code])
        .unwrap_err()
        .to_string();
    assert!(
        wider.contains("audience ITA is wider than the sharing agreements"),
        "{wider}"
    );

    let published = publish_and_announce(deu, Cube::Flows, period, &[]).await;
    let held = |i: usize, seq: u64| {
        cluster
            .running(i)
            .entry(deu_code, seq)
            .expect("read")
            .map(|e| e.has_payload)
    };
    eventually(
        "DEU's flows at FRA whole and at ITA as a header",
        CONVERGENCE,
        || match (held(1, published.seq), held(2, published.seq)) {
            (Some(true), Some(false)) => Ok(()),
            other => Err(format!("FRA, ITA: {other:?}")),
        },
    )
    .await;
    let header = accord::dataset::EntryHeader::decode(
        &cluster
            .running(1)
            .entry(deu_code, 1)
            .unwrap()
            .unwrap()
            .envelope
            .unwrap()
            .payload,
    )
    .unwrap();
    assert_eq!(
        header.audience,
        vec![fra_code],
        "the agreement's parties became the audience"
    );

    // DEU signs an entry for every member by hand, past the rules: FRA takes the payload (it is
    // a party), ITA is never given it, and would not keep it if offered directly.
    let head = deu
        .heads()
        .unwrap()
        .into_iter()
        .find(|(p, _)| *p == deu_code)
        .unwrap()
        .1;
    let key = std::fs::read(cluster.pki.join("deu.sign.pk8")).expect("key");
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).expect("key");
    let dataset = deu.current_datasets().unwrap()[0].dataset.clone();
    let for_everyone = accord::dataset::publish::sign_entry(
        &dataset,
        accord::dataset::publish::EntryParams {
            head: Some(head),
            created_at: accord::date::unix_now(),
            audience: Vec::new(),
            key: &key,
        },
    );
    let offered = cluster
        .running(2)
        .accept(for_everyone.clone())
        .expect("a valid entry is taken");
    assert_eq!(offered.1, accord::dataset::Placement::Append);
    assert_eq!(held(2, head.seq + 1), Some(false), "ITA keeps the header only");
    cluster.running(1).accept(for_everyone).expect("FRA takes it");
    assert_eq!(held(1, head.seq + 1), Some(true));

    // After the agreement ends, DEU's new entries reach nobody: publishing is refused.
    while accord::date::unix_now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let ended = deu.publish(Cube::Flows, period, Vec::new()).unwrap_err().to_string();
    assert!(
        ended.contains("no sharing agreement in force lets DEU share flows"),
        "{ended}"
    );
    let forced = deu
        .publish(Cube::Flows, period, vec![fra_code])
        .unwrap_err()
        .to_string();
    assert!(forced.contains("no sharing agreement in force"), "{forced}");
    assert_eq!(
        held(1, published.seq),
        Some(true),
        "FRA keeps what it received under the agreement"
    );
    cluster.shutdown().await;
}

/// A member removed by a version (SPEC §11): its entries created before the removal took
/// effect stay verifiable and in every view (and are still taken when they arrive late); an
/// entry it signs afterwards is refused everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_members_earlier_entries_stay_and_later_ones_are_refused() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], full_mesh, 1).await;
    let ita_code = accord::model::Country::parse("ITA").unwrap();
    let period = Period::Year(last_year());
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), 300, 5);
        publish_and_announce(node, Cube::Flows, period, &[]).await;
    }
    eventually("genesis views agree", CONVERGENCE, || all_agree(&cluster, 1, &[])).await;
    // An ITA entry signed now but delivered only after ITA's removal: created before it.
    let ita = cluster.running(2);
    let key = std::fs::read(cluster.pki.join("ita.sign.pk8")).expect("key");
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key).expect("key");
    let ita_head = ita
        .heads()
        .unwrap()
        .into_iter()
        .find(|(p, _)| *p == ita_code)
        .unwrap()
        .1;
    let dataset = ita
        .current_datasets()
        .unwrap()
        .into_iter()
        .find(|d| d.publisher == ita_code)
        .unwrap()
        .dataset;
    let sign_at = |created_at: i64, seq_after: accord::dataset::Head| {
        accord::dataset::publish::sign_entry(
            &dataset,
            accord::dataset::publish::EntryParams {
                head: Some(seq_after),
                created_at,
                audience: Vec::new(),
                key: &key,
            },
        )
    };
    let early = sign_at(accord::date::unix_now(), ita_head);
    std::thread::sleep(std::time::Duration::from_millis(1100));

    // DEU proposes version 2 without ITA; FRA and ESP approve.
    let deu = cluster.running(0);
    let document = accord::governance::canonical_toml(&deu.consortium());
    let at = document.find("\n[[members]]\ncountry = \"ITA\"").expect("ITA");
    let end = document[at + 1..]
        .find("\n[[members]]")
        .map_or(document.len(), |next| at + 1 + next);
    let without_ita = format!("{}{}", &document[..at], &document[end..]);
    let (_, digest) = deu.propose(&without_ita).expect("propose");
    deu.syncer().announce_all().await;
    for i in [1, 3] {
        let node = cluster.running(i);
        eventually("the approver holds the proposal", CONVERGENCE, || {
            (node.governance().pending.len() == 1)
                .then_some(())
                .ok_or("not yet".to_string())
        })
        .await;
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    let members = [0, 1, 3];
    eventually("version 2 in force on the members", CONVERGENCE, || {
        for i in members {
            let v = cluster.running(i).governance().current().version;
            if v != 2 {
                return Err(format!("{} at version {v}", cluster.running(i).country()));
            }
        }
        Ok(())
    })
    .await;
    for i in members {
        let node = cluster.running(i);
        assert!(node.consortium().member(ita_code).is_none());
        let view = node.view().expect("view");
        assert!(
            view.inputs.keys().any(|(p, _, _)| *p == ita_code),
            "{}: ITA's earlier flows stay in the view",
            node.country()
        );
        assert!(node.left_out().unwrap().is_empty(), "{}", node.country());
        // Created before the removal took effect: still verifiable, even arriving now (taken
        // here, or already relayed here by a member that took it first).
        let (_, placement) = node.accept(early.clone()).expect("an entry from before the removal");
        assert!(
            matches!(
                placement,
                accord::dataset::Placement::Append | accord::dataset::Placement::Replay
            ),
            "{placement:?}"
        );
    }
    // Signed after the removal: refused everywhere.
    let early_head = cluster
        .running(0)
        .heads()
        .unwrap()
        .into_iter()
        .find(|(p, _)| *p == ita_code)
        .unwrap()
        .1;
    let late = sign_at(accord::date::unix_now(), early_head);
    for i in members {
        let refused = cluster
            .running(i)
            .accept(late.clone())
            .expect_err("after the removal")
            .to_string();
        assert!(refused.contains("ITA"), "{refused}");
    }
    // ITA itself is refused by the members now: nothing more it sends is even read.
    let (ita_node, deu_node) = (cluster.running(2), cluster.running(0));
    ita_node.syncer().announce_all().await;
    assert!(deu_node.status().unwrap().equivocating.is_empty());
    cluster.shutdown().await;
}
