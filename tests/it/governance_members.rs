//! Members joining and leaving a consortium through versions (SPEC §11), across real nodes:
//! a member-to-be approves the version adding it and then publishes to all; a removed member's
//! earlier entries stay and its later ones are refused.

use accord::cluster::full_mesh;
use accord::hex;
use accord::model::{Cube, Period};
use accord::node::PublishRequest;

use crate::support::cluster::{
    cluster_options, ingest_synthetic, publish_and_announce, start_cluster, start_cluster_with,
};
use crate::support::governance::{all_agree, states};
use crate::support::{eventually, last_year};

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
    let cluster = start_cluster_with(accord::cluster::ClusterOptions {
        consortium_edit: Some(std::sync::Arc::new(without_pol)),
        ..cluster_options(&["DEU", "FRA", "ITA", "ESP", "POL"], full_mesh, 1)
    })
    .await;
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
    let refused = pol
        .publish(PublishRequest::new(Cube::Flows, period))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("POL"), "a non-member cannot publish: {refused}");

    // ESP proposes version 2 with POL and its signing key.
    let key_file = std::fs::read(cluster.pki.join("pol.sign.pk8")).expect("POL's key");
    let key = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&key_file).expect("key");
    let esp = cluster.running(3);
    let document = format!(
        "{}\n[[members]]\ncountry = \"POL\"\n\n[[members.keys]]\npublic_key = \"{}\"\nvalid_from = \"2020-01-01\"\n",
        accord::consortium::canonical_toml(&esp.consortium()),
        hex::encode(key.public_key().as_ref())
    );
    let (version, digest) = esp.propose(&document).expect("ESP proposes");
    assert_eq!(version, 2);
    esp.syncer().announce_all().await;
    for i in [0, 1] {
        let node = cluster.running(i);
        eventually("the approver holds the proposal", || {
            let pending = node.governance().pending.len();
            (pending == 1).then_some(()).ok_or(format!("{pending} pending"))
        })
        .await;
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    eventually("three of four approvals everywhere, POL's still missing", || {
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
    })
    .await;
    // POL, a member-to-be, has the members' feeds as signed headers only.
    let deu_entry = pol
        .entry(accord::model::Country::parse("DEU").unwrap(), 1)
        .expect("read")
        .expect("POL holds DEU's first entry");
    assert!(!deu_entry.has_payload, "no data reaches a member-to-be");

    pol.approve(2, digest).expect("POL approves");
    pol.syncer().announce_all().await;
    eventually("version 2 in force everywhere", || all_agree(&cluster, 2, &[])).await;
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
    eventually("POL's dataset in every view, one view digest", || {
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
    eventually("POL fetched the payloads it lacked", || {
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
    let v2 = accord::consortium::canonical_toml(&deu.consortium());
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
        eventually("the approver holds the proposal", || {
            let pending = node.governance().pending.len();
            (pending == 1).then_some(()).ok_or(format!("{pending} pending"))
        })
        .await;
        node.approve(3, digest).expect("approve version 3");
        node.syncer().announce_all().await;
    }
    eventually("version 3 in force on all five", || all_agree(&cluster, 3, &[])).await;
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
    eventually("genesis views agree", || all_agree(&cluster, 1, &[])).await;
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
    let document = accord::consortium::canonical_toml(&deu.consortium());
    let at = document.find("\n[[members]]\ncountry = \"ITA\"").expect("ITA");
    let end = document[at + 1..]
        .find("\n[[members]]")
        .map_or(document.len(), |next| at + 1 + next);
    let without_ita = format!("{}{}", &document[..at], &document[end..]);
    let (_, digest) = deu.propose(&without_ita).expect("propose");
    deu.syncer().announce_all().await;
    for i in [1, 3] {
        let node = cluster.running(i);
        eventually("the approver holds the proposal", || {
            (node.governance().pending.len() == 1)
                .then_some(())
                .ok_or("not yet".to_string())
        })
        .await;
        node.approve(2, digest).expect("approve");
        node.syncer().announce_all().await;
    }
    let members = [0, 1, 3];
    eventually("version 2 in force on the members", || {
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
