//! A member with its real certificate and signing key attacking consortium governance (SPEC
//! §11): sending the deciding vote as a header first, proposing a document that names a
//! member-to-be under the attacker's key, and voting in a loop header-first. Honest nodes end
//! on one version and one view digest whatever the order or split in which entries arrive,
//! running and after a restart; a member-to-be's key is fixed only by a proposal with the
//! current members' quorum; votes past the bound are refused on every path.

use crate::support::SettledStatus;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord::dataset::publish::{sign_governance, EntryParams};
use accord::dataset::{Governance, Head, Placement};
use accord::model::Country;
use accord::node::{Node, MAX_VOTES_PER_VERSION};
use accord::proto;
use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::support::cluster::{cluster_options, start_cluster_with, TestCluster};
use crate::support::eventually;
use crate::support::hostile::*;

/// The entry with its payload dropped: its signed header alone, as a relay may send it.
fn header_only(entry: &proto::Entry) -> proto::Entry {
    let mut e = entry.clone();
    e.payload.clear();
    e.has_payload = false;
    e
}

/// The document in force with one reconciliation setting changed: a valid next version.
fn changed_document(node: &Node, asymmetry: &str) -> String {
    let text = accord::consortium::canonical_toml(&node.consortium());
    let changed: String = text
        .lines()
        .map(|l| match l.starts_with("asymmetry_flag = ") {
            true => format!("asymmetry_flag = {asymmetry}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    assert_ne!(text, changed, "the document sets asymmetry_flag");
    changed
}

/// `publisher`'s governance entry at `seq`, as its own node holds it.
fn own_entry(node: &Node, seq: u64) -> proto::Entry {
    node.entry(node.country(), seq).unwrap().expect("the entry is held")
}

fn version_and_view(node: &Node) -> (u64, String) {
    let status = node.settled_status().expect("status");
    (status.consortium_version, status.view_digest)
}

/// A deciding approval sent to one node as its signed header first (the payload later, from
/// another member) and to another node whole: both apply the new version within that one round,
/// with one view digest, and keep it after a restart. The header alone is refused with its
/// reason, so nothing stays held that could not be counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deciding_vote_sent_header_first_counts_within_the_round() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let deu = cluster.running(VICTIM).clone();
    let fra = cluster.running(HOSTILE).clone();
    let ita = cluster.running(2).clone();
    // DEU proposes; FRA's approval is the deciding second of three (two thirds). (FRA does not
    // list DEU as a peer: it reads the proposal through ITA.)
    let (version, digest) = deu.propose(&changed_document(&deu, "0.25")).expect("DEU proposes");
    ita.syncer().pull_from(member(DEU)).await.expect("ITA pulls DEU");
    fra.syncer().pull_from(member(ITA)).await.expect("FRA pulls ITA");
    for node in [&fra, &ita] {
        assert_eq!(
            node.governance().pending.len(),
            1,
            "{} holds the proposal",
            node.country()
        );
    }
    fra.approve(version, digest).expect("FRA approves");
    let approval = own_entry(&fra, 1);
    drop(fra);
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;

    // To DEU, the header first: refused by name, nothing held.
    evil.serve(vec![head_at(&approval)], vec![header_only(&approval)]);
    let sync = deu.syncer().pull_from(member(FRA)).await.expect("DEU pulls FRA");
    assert_rejected(&sync, "FRA seq 1 is a governance entry without its payload");
    assert_eq!(
        deu.head(member(FRA)).unwrap(),
        None,
        "a vote without its payload is not kept"
    );
    assert_eq!(version_and_view(&deu).0, 1);

    // To ITA, whole: version 2 at once.
    evil.serve(vec![head_at(&approval)], vec![approval.clone()]);
    let sync = ita.syncer().pull_from(member(FRA)).await.expect("ITA pulls FRA");
    assert_eq!(sync.appended, 1, "{sync:?}");
    assert_eq!(version_and_view(&ita).0, 2);

    // The payload reaches DEU later in the same round, relayed by ITA.
    deu.syncer().pull_from(member(ITA)).await.expect("DEU pulls ITA");
    assert_eq!(version_and_view(&deu), version_and_view(&ita), "one version, one view");
    assert_eq!(version_and_view(&deu).0, 2);

    // The whole entry again from FRA: a replay, nothing changes.
    evil.serve(vec![head_at(&approval)], vec![approval.clone()]);
    let again = deu.syncer().pull_from(member(FRA)).await.expect("DEU pulls FRA again");
    assert_eq!((again.appended, again.forks), (0, 0), "{again:?}");
    let before = version_and_view(&deu);
    drop(deu);
    evil.stop().await;
    cluster.stop(VICTIM).await.unwrap();
    cluster.restart(VICTIM).await.unwrap();
    assert_eq!(
        version_and_view(cluster.running(VICTIM)),
        before,
        "the same after a restart"
    );
    drop(ita);
    cluster.shutdown().await;
}

/// A member proposes (and never gets approved) a document adding POL under a key it holds.
/// The real accession, proposed with POL's own key and approved by a quorum, completes, and
/// POL's approval verifies; an approval signed with the squatter's key in POL's feed is refused
/// before and after the quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatting_proposal_fixes_no_key_for_a_member_to_be() {
    let cluster = quiet_cluster(
        &["DEU", "FRA", "ITA", "ESP", "POL"],
        mesh_without_hostile_announces,
        Some(without_pol),
    )
    .await;
    let nodes: Vec<Arc<Node>> = (0..5).map(|i| cluster.running(i).clone()).collect();
    let (deu, fra, pol) = (&nodes[0], &nodes[1], &nodes[4]);
    let pol_key = signing_key(&cluster.pki, member("POL"));
    let squatter = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let adding = |node: &Node, key: &Ed25519KeyPair| {
        format!(
            "{}\n[[members]]\ncountry = \"POL\"\n\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2020-01-01\"\n",
            accord::consortium::canonical_toml(&node.consortium()),
            accord::hex::encode(key.public_key().as_ref())
        )
    };
    // FRA (hostile) squats first; DEU proposes the real accession.
    fra.propose(&adding(fra, &squatter)).expect("FRA proposes its document");
    let (version, digest) = deu.propose(&adding(deu, &pol_key)).expect("DEU proposes");
    let squatted_approval = |digest: [u8; 32]| {
        sign_governance(
            member("POL"),
            &Governance::Approval { version, digest },
            EntryParams {
                head: None,
                created_at: now(),
                audience: Vec::new(),
                key: &squatter,
            },
        )
    };
    let pull_all = |node: &Arc<Node>| {
        let node = node.clone();
        async move {
            for peer in ["DEU", "FRA", "ITA", "ESP", "POL"] {
                if member(peer) != node.country() {
                    let _ = node.syncer().pull_from(member(peer)).await;
                }
            }
        }
    };
    for node in &nodes {
        pull_all(node).await;
    }
    // Before any quorum, no proposal gives POL a key: the squatter's approval of its own
    // document is refused.
    let refused = deu.accept(squatted_approval(digest)).unwrap_err().to_string();
    assert!(refused.contains("POL"), "{refused}");
    assert!(
        pol.approve(version, digest).is_err(),
        "POL cannot approve before the quorum"
    );
    // ITA and ESP approve the real accession: DEU, ITA and ESP are three of four.
    for node in [&nodes[2], &nodes[3]] {
        node.approve(version, digest).expect("approve");
    }
    for _ in 0..2 {
        for node in &nodes {
            pull_all(node).await;
        }
    }
    // The squatter's key signs nothing in POL's feed, whatever it approves.
    let squatting_digest = fra
        .governance()
        .pending
        .iter()
        .map(|p| p.digest)
        .find(|d| *d != digest)
        .expect("FRA's document is pending");
    for d in [digest, squatting_digest] {
        let refused = deu.accept(squatted_approval(d)).unwrap_err().to_string();
        assert!(refused.contains("signature"), "{refused}");
    }
    assert_eq!(deu.head(member("POL")).unwrap(), None);
    // POL's own approval verifies and completes the accession everywhere.
    pol.approve(version, digest).expect("POL approves under its own key");
    for _ in 0..2 {
        for node in &nodes {
            pull_all(node).await;
        }
    }
    let agreed: Vec<(u64, String)> = nodes.iter().map(|n| version_and_view(n)).collect();
    assert!(agreed.iter().all(|a| *a == agreed[0] && a.0 == 2), "{agreed:?}");
    let key = deu.consortium().member(member("POL")).expect("POL is a member").keys[0].public_key;
    assert_eq!(key.as_slice(), pol_key.public_key().as_ref(), "POL's own key");
    drop(nodes);
    cluster.shutdown().await;
}

/// Real nodes whose sync loops stay quiet (they pull once at start): every delivery in these
/// tests is the test's own.
async fn quiet_cluster(
    codes: &[&str],
    peered: fn(usize, usize, usize) -> bool,
    consortium_edit: Option<fn(&str) -> String>,
) -> TestCluster {
    start_cluster_with(accord::cluster::ClusterOptions {
        consortium_edit: consortium_edit.map(|edit| std::sync::Arc::new(edit) as _),
        ..cluster_options(codes, peered, 3600)
    })
    .await
}

fn without_pol(text: &str) -> String {
    let start = text
        .find("[[members]]\ncountry = \"POL\"")
        .expect("POL in the generated document");
    let end = text[start + 1..]
        .find("[[members]]")
        .map_or(text.len(), |e| start + 1 + e);
    format!("{}{}", &text[..start], &text[end..])
}

/// `count` proposals by FRA for `version`, each a different document, chained from `head`.
fn proposals(cluster_pki: &Path, node: &Node, version: u64, count: usize) -> Vec<proto::Entry> {
    let key = signing_key(cluster_pki, member(FRA));
    let parent = node.governance().current().digest;
    let mut head: Option<Head> = None;
    (0..count)
        .map(|i| {
            let document = changed_document(node, &format!("0.{}", 300 + i));
            let entry = sign_governance(
                member(FRA),
                &Governance::Proposal {
                    version,
                    parent,
                    document,
                },
                EntryParams {
                    head,
                    created_at: now(),
                    audience: Vec::new(),
                    key: &key,
                },
            );
            head = Some(Head {
                seq: i as u64 + 1,
                digest: digest_of(&entry),
            });
            entry
        })
        .collect()
}

/// 300 proposals by one member for one version, each sent header first and then whole: the
/// headers are refused, the first few whole ones kept, the rest refused by the bound. A restart
/// reads what is kept, so it is as quick as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_first_votes_in_a_loop_are_bounded_and_a_restart_stays_quick() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let deu = cluster.running(VICTIM).clone();
    let entries = proposals(&cluster.pki, &deu, 2, 300);
    for entry in &entries {
        let refused = deu.accept(header_only(entry)).unwrap_err().to_string();
        assert!(refused.contains("without its payload"), "{refused}");
    }
    let mut kept = 0;
    for entry in &entries {
        match deu.accept(entry.clone()) {
            Ok((_, Placement::Append)) => kept += 1,
            Ok((_, placement)) => assert!(matches!(placement, Placement::Gap { .. }), "{placement:?}"),
            Err(e) => assert!(e.to_string().contains("the limit is 4"), "{e}"),
        }
    }
    assert_eq!(kept, MAX_VOTES_PER_VERSION, "the first votes kept, the rest refused");
    let held = (1..=300u64)
        .filter(|seq| deu.entry(member(FRA), *seq).unwrap().is_some())
        .count();
    assert!(held <= 8, "{held} governance entries of FRA kept for version 2");
    let pending = deu.governance().pending.len();
    assert_eq!(pending, MAX_VOTES_PER_VERSION, "each kept proposal is pending");
    drop(deu);
    cluster.stop(VICTIM).await.unwrap();
    let started = Instant::now();
    cluster.restart(VICTIM).await.unwrap();
    let deu = cluster.running(VICTIM).clone();
    eventually("the restarted node is ready", || {
        let reasons = deu.unready(now());
        reasons.is_empty().then_some(()).ok_or(format!("{reasons:?}"))
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "restart to healthy took {took:?}");
    assert_eq!(
        deu.governance().pending.len(),
        pending,
        "the same votes count after a restart"
    );
    drop(deu);
    cluster.shutdown().await;
}

/// `node`'s governance entries in feed order, whole.
fn governance_feed(node: &Node, from: Country) -> Vec<proto::Entry> {
    (1..).map_while(|seq| node.entry(from, seq).unwrap()).collect()
}

/// The same governance entries delivered to a fresh node in random orders, each either whole or
/// as its header first and its payload later, give one version and one view digest, running and
/// after a restart (proptest over orders and splits; entries that arrive before the ones they
/// follow are offered again, as sync does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_version_in_force_does_not_depend_on_order_or_split() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let cluster = quiet_cluster(&[DEU, FRA, ITA, ESP], accord::cluster::full_mesh, None).await;
    let deu = cluster.running(0).clone();
    let fra = cluster.running(1).clone();
    let ita = cluster.running(2).clone();
    let sync = |node: &Arc<Node>, from: &'static str| {
        let node = node.clone();
        async move { node.syncer().pull_from(member(from)).await.expect("pull") }
    };
    // Version 2 by DEU with FRA and ITA (three of four); then version 3 by FRA with DEU and
    // ITA: the entries cross versions and feeds, and a vote on version 3 arriving before
    // version 2 is in force must still count once it is.
    let (v2, d2) = deu.propose(&changed_document(&deu, "0.25")).unwrap();
    sync(&fra, DEU).await;
    sync(&ita, DEU).await;
    fra.approve(v2, d2).unwrap();
    ita.approve(v2, d2).unwrap();
    sync(&deu, FRA).await;
    sync(&deu, ITA).await;
    sync(&fra, ITA).await;
    assert_eq!(deu.governance().current().version, 2);
    let (v3, d3) = fra.propose(&changed_document(&fra, "0.3")).unwrap();
    sync(&deu, FRA).await;
    sync(&ita, FRA).await;
    deu.approve(v3, d3).unwrap();
    ita.approve(v3, d3).unwrap();
    sync(&deu, ITA).await;
    let expected = version_and_view(&deu);
    assert_eq!(expected.0, 3, "version 3 in force where every vote is held");
    let mut entries = Vec::new();
    for from in [DEU, FRA, ITA] {
        entries.extend(governance_feed(&deu, member(from)));
    }
    assert_eq!(entries.len(), 6);
    let esp_config = std::fs::read_to_string(cluster.dir.path().join("esp/node.toml")).unwrap();

    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    let case = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let strategy = (
        Just((0..entries.len()).collect::<Vec<usize>>()).prop_shuffle(),
        proptest::collection::vec(any::<bool>(), entries.len()),
    );
    runner
        .run(&strategy, |(order, split)| {
            let n = case.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let case_dir = cluster.dir.path().join(format!("case-{n}"));
            std::fs::create_dir_all(&case_dir).unwrap();
            let config_path = case_dir.join("node.toml");
            std::fs::write(&config_path, &esp_config).unwrap();
            let open = || Node::open(accord::config::NodeConfig::load(&config_path).unwrap()).unwrap();
            let node = open();
            // Each entry's deliveries: its header first where split, then the whole entry;
            // offered in the shuffled order, again and again until every one is placed.
            let mut queue: Vec<(usize, bool)> = Vec::new();
            for &i in &order {
                if split[i] {
                    queue.push((i, false));
                }
            }
            for &i in &order {
                queue.push((i, true));
            }
            let mut placed = vec![false; entries.len()];
            for _round in 0..entries.len() + 1 {
                for &(i, whole) in &queue {
                    if placed[i] {
                        continue;
                    }
                    let entry = if whole {
                        entries[i].clone()
                    } else {
                        header_only(&entries[i])
                    };
                    if let Ok((_, Placement::Append | Placement::Replay)) = node.accept(entry) {
                        prop_assert!(whole, "a header alone was placed");
                        placed[i] = true;
                    }
                }
            }
            prop_assert!(placed.iter().all(|p| *p), "every entry placed: {placed:?}");
            prop_assert_eq!(&version_and_view(&node), &expected, "running");
            drop(node);
            let reopened = open();
            prop_assert_eq!(&version_and_view(&reopened), &expected, "after a restart");
            Ok(())
        })
        .unwrap();
    drop((deu, fra, ita));
    cluster.shutdown().await;
}
