//! Cluster convergence (SPEC §5): real nodes in one process, on 127.0.0.1 over mutual TLS, each
//! running the full daemon (Exchange server, sync loop, announcements). The tests never pull on
//! a node's behalf: after a publish they at most announce, as the admin socket does, and then
//! wait for the daemons to converge by themselves. They check what an operator relies on: every node
//! ends up with every publisher's feed at the same head and the same view digest; feeds relay
//! unchanged through members that never connect to the publisher; a restricted audience gets the
//! payload while everyone else gets the same signed header without it, and the chain continues;
//! a node that was down catches up on restart and loses nothing; `status` reports all of it.
//!
//! Each test states whether it relies on announcements (a sync interval of an hour, so the
//! periodic pull cannot be what converged) or on the periodic pull alone (no announcement).

use crate::support::SettledStatus;
use std::collections::BTreeMap;

use accord::cluster::{full_mesh, line};
use accord::hex;
use accord::model::Country;
use accord::model::{Cube, Period};
use accord::node::{PublishRequest, Published};
use prost::Message;

use crate::support::cluster::{
    all_hold_heads, expected_heads, heads_of, ingest_synthetic, publish_and_announce, start_cluster, TestCluster,
};
use crate::support::{eventually, last_year};

/// A sync interval long enough that only announcements (and the pull every node makes at start)
/// can explain convergence within a test's deadline.
const ANNOUNCE_ONLY: u64 = 3600;

/// A short sync interval: the periodic pull does the work.
const PERIODIC: u64 = 1;

/// Records per node: enough for non-trivial cubes, few enough to keep the tests quick.
const RECORDS: usize = 300;

/// `Ok` when every running node's view digest, and the digest its `status` reports, are one value.
fn views_agree(cluster: &TestCluster) -> Result<(), String> {
    let mut digests = BTreeMap::new();
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let view = hex::encode(
            &node
                .view()
                .map_err(|e| format!("{}: view: {e}", node.country()))?
                .digest(),
        );
        let status = node
            .settled_status()
            .map_err(|e| format!("{}: status: {e}", node.country()))?;
        if status.view_digest != view {
            return Err(format!(
                "{}: status view_digest {} but view().digest() {view}",
                node.country(),
                status.view_digest
            ));
        }
        digests.insert(node.country().to_string(), view);
    }
    let distinct: std::collections::BTreeSet<_> = digests.values().collect();
    if distinct.len() == 1 {
        Ok(())
    } else {
        Err(format!("view digests differ: {digests:?}"))
    }
}

/// The stored entry `publisher`/`seq` on node `i`, encoded exactly as kept (and relayed).
fn entry_bytes(cluster: &TestCluster, i: usize, publisher: Country, seq: u64) -> Option<Vec<u8>> {
    let node = cluster.running(i);
    node.entry(publisher, seq)
        .unwrap_or_else(|e| panic!("{}: entry {publisher} {seq}: {e}", node.country()))
        .map(|e| e.encode_to_vec())
}

/// Ingests records into every node and publishes `cubes` for last year on each, announcing after
/// each publish when `announce` is set. Returns every publication.
async fn ingest_and_publish_everywhere(cluster: &TestCluster, cubes: &[Cube], announce: bool) -> Vec<Published> {
    let period = Period::Year(last_year());
    let mut published = Vec::new();
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, last_year(), RECORDS, 1);
        for &cube in cubes {
            let p = if announce {
                publish_and_announce(node, cube, period, &[]).await
            } else {
                node.publish(PublishRequest::new(cube, period))
                    .unwrap_or_else(|e| panic!("{}: publish {cube}: {e}", node.country()))
            };
            published.push(p);
        }
    }
    published
}

/// SPEC §5 and §8: three members in a full mesh, each publishing flows and asylum, converge on
/// every feed at the same head and compute the same common view, by announcements alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_mesh_of_three_converges_on_every_feed_and_view() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA"], full_mesh, ANNOUNCE_ONLY).await;
    let published = ingest_and_publish_everywhere(&cluster, &[Cube::Flows, Cube::Asylum], true).await;
    let expected = expected_heads(&published);
    assert_eq!(expected.len(), 3, "one feed per member");
    assert!(
        expected.values().all(|(seq, _)| *seq == 2),
        "two entries per feed: {expected:?}"
    );

    eventually("every node holds every feed at the publisher's head", || {
        all_hold_heads(&cluster, &expected)
    })
    .await;
    eventually("every node computes the same view", || views_agree(&cluster)).await;

    // The agreed view is built from all six datasets, and the flows between members pair up.
    for i in cluster.running_indices() {
        let view = cluster.running(i).view().expect("view");
        assert_eq!(
            view.inputs.len(),
            6,
            "{}: inputs {:?}",
            cluster.nodes[i].country,
            view.inputs.keys()
        );
        assert!(!view.pairs.is_empty(), "{}: no mirror pairs", cluster.nodes[i].country);
    }
    cluster.shutdown().await;
}

/// SPEC §5 relay: five members in a line, each peered only with its neighbours. Every feed reaches
/// both ends through three relays, by announcements alone, and every node holds byte-identical
/// entries: relays pass entries on unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_of_five_converges_through_relays_with_identical_entries() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP", "NLD"], line, ANNOUNCE_ONLY).await;
    let peers_of = |i: usize| -> Vec<String> {
        cluster
            .running(i)
            .config()
            .peers
            .iter()
            .map(|p| p.country.to_string())
            .collect()
    };
    assert_eq!(peers_of(0), ["FRA"], "DEU reaches NLD only through relays");
    assert_eq!(peers_of(4), ["ESP"], "NLD reaches DEU only through relays");

    let published = ingest_and_publish_everywhere(&cluster, &[Cube::Flows], true).await;
    let expected = expected_heads(&published);
    eventually("every node holds every feed through relays", || {
        all_hold_heads(&cluster, &expected)
    })
    .await;

    for p in &published {
        let publisher_index = cluster
            .members()
            .iter()
            .position(|c| *c == p.publisher)
            .expect("member");
        let original = entry_bytes(&cluster, publisher_index, p.publisher, p.seq).expect("publisher holds its entry");
        for i in cluster.running_indices() {
            let held = entry_bytes(&cluster, i, p.publisher, p.seq)
                .unwrap_or_else(|| panic!("{} lacks {} seq {}", cluster.nodes[i].country, p.publisher, p.seq));
            assert!(
                held == original,
                "{} holds {} seq {} with different bytes than the publisher",
                cluster.nodes[i].country,
                p.publisher,
                p.seq
            );
        }
    }
    eventually("every node computes the same view", || views_agree(&cluster)).await;
    cluster.shutdown().await;
}

/// SPEC §4/§5 audiences, in a line DEU–FRA–ITA–ESP: DEU publishes flows for FRA only. FRA gets
/// the payload; ITA (which receives from FRA) and ESP (from ITA) get the same signed header
/// without it. The feed stays one chain: DEU's next, unrestricted entry is accepted everywhere
/// with its payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_audience_gets_payload_others_only_the_signed_header() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA", "ESP"], line, ANNOUNCE_ONLY).await;
    let [deu, fra, ..] = cluster.members()[..] else {
        unreachable!()
    };
    let period = Period::Year(last_year());
    let publisher = cluster.running(0);
    ingest_synthetic(publisher, last_year(), RECORDS, 1);
    let restricted = publish_and_announce(publisher, Cube::Flows, period, &[fra]).await;
    assert_eq!(restricted.seq, 1);

    eventually("every node holds DEU seq 1", || {
        all_hold_heads(&cluster, &expected_heads([&restricted]))
    })
    .await;
    let original = cluster
        .running(0)
        .entry(deu, 1)
        .expect("entry")
        .expect("DEU holds its entry");
    assert!(original.has_payload && !original.payload.is_empty());
    for i in 1..cluster.nodes.len() {
        let node = cluster.running(i);
        let held = node.entry(deu, 1).expect("entry").expect("held");
        assert_eq!(
            held.envelope,
            original.envelope,
            "{}: same signed header",
            node.country()
        );
        if node.country() == fra {
            assert!(held.has_payload, "FRA is in the audience");
            assert_eq!(held.payload, original.payload, "FRA holds the payload as published");
        } else {
            assert!(!held.has_payload, "{} is outside the audience", node.country());
            assert!(held.payload.is_empty(), "{} holds payload bytes", node.country());
        }
    }
    // Only FRA's view can include DEU's restricted flows.
    let inputs = |i: usize| cluster.running(i).view().expect("view").inputs.len();
    assert_eq!(inputs(1), 1, "FRA's view uses DEU's flows");
    assert_eq!(inputs(2), 0, "ITA's view cannot use a dataset it never received");

    let open = publish_and_announce(cluster.running(0), Cube::Flows, period, &[]).await;
    assert_eq!(open.seq, 2, "the restricted entry is part of the chain");
    eventually("every node accepts DEU seq 2 on top of the header-only seq 1", || {
        all_hold_heads(&cluster, &expected_heads([&restricted, &open]))
    })
    .await;
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let held = node.entry(deu, 2).expect("entry").expect("held");
        assert!(
            held.has_payload,
            "{}: unrestricted entry arrives with its payload",
            node.country()
        );
        assert!(node.forks().expect("forks").is_empty(), "{}: no fork", node.country());
    }
    eventually("every node computes the same view from the open revision", || {
        views_agree(&cluster)
    })
    .await;
    cluster.shutdown().await;
}

/// A stopped node misses publications; on restart it catches up on its own (it pulls from every
/// peer at start) and nothing it held is lost: its records, its own feed, what it had received.
/// Its next publication continues its chain and reaches the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_catches_up_and_loses_nothing() {
    let mut cluster = start_cluster(&["DEU", "FRA", "ITA"], full_mesh, ANNOUNCE_ONLY).await;
    let published = ingest_and_publish_everywhere(&cluster, &[Cube::Flows], true).await;
    let before_stop = expected_heads(&published);
    eventually("every node holds every feed before the stop", || {
        all_hold_heads(&cluster, &before_stop)
    })
    .await;

    let k = 2;
    let ita = cluster.nodes[k].country;
    let counts_before = cluster.running(k).record_counts().expect("record counts");
    let own_before = entry_bytes(&cluster, k, ita, 1).expect("ITA holds its entry");
    let received_before: Vec<_> = published
        .iter()
        .map(|p| entry_bytes(&cluster, k, p.publisher, p.seq))
        .collect();
    cluster.stop(k).await.expect("stop ITA");
    assert!(cluster.node(k).is_none());

    let period = Period::Year(last_year());
    let mut while_down = Vec::new();
    for i in cluster.running_indices() {
        while_down.push(publish_and_announce(cluster.running(i), Cube::Asylum, period, &[]).await);
    }
    let all_published: Vec<&Published> = published.iter().chain(&while_down).collect();
    let expected = expected_heads(all_published.iter().copied());
    eventually("the running nodes hold each other's new entries", || {
        all_hold_heads(&cluster, &expected)
    })
    .await;

    cluster.restart(k).await.expect("restart ITA");
    eventually("the restarted node catches up", || all_hold_heads(&cluster, &expected)).await;
    let node = cluster.running(k);
    assert_eq!(
        node.record_counts().expect("record counts"),
        counts_before,
        "records kept"
    );
    assert_eq!(entry_bytes(&cluster, k, ita, 1), Some(own_before), "own feed kept");
    let received_after: Vec<_> = published
        .iter()
        .map(|p| entry_bytes(&cluster, k, p.publisher, p.seq))
        .collect();
    assert!(
        received_after == received_before,
        "entries received before the stop kept unchanged"
    );

    let next = publish_and_announce(node, Cube::Asylum, period, &[]).await;
    assert_eq!(next.seq, 2, "the chain continues from the stored head");
    let mut all_published = all_published;
    all_published.push(&next);
    let expected = expected_heads(all_published.iter().copied());
    eventually("the others pull the restarted node's new entry", || {
        all_hold_heads(&cluster, &expected)
    })
    .await;
    eventually("every node computes the same view", || views_agree(&cluster)).await;
    cluster.shutdown().await;
}

/// SPEC §6 `status` after convergence by the periodic pull alone (nothing is announced): every
/// publisher's feed at its head, every peer synced successfully with no error, entries counted
/// once, no forks, records counted, and one view digest everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_after_periodic_convergence_reports_feeds_and_healthy_peers() {
    let cluster = start_cluster(&["DEU", "FRA", "ITA"], full_mesh, PERIODIC).await;
    let published = ingest_and_publish_everywhere(&cluster, &[Cube::Flows, Cube::Asylum], false).await;
    let expected = expected_heads(&published);
    let expected_feeds: Vec<(String, u64, String)> = expected
        .iter()
        .map(|(p, (seq, digest))| (p.clone(), *seq, hex::encode(digest)))
        .collect();

    eventually("status shows every feed and healthy peers on every node", || {
        for i in cluster.running_indices() {
            let node = cluster.running(i);
            let me = node.country().to_string();
            let status = node.settled_status().map_err(|e| format!("{me}: status: {e}"))?;
            let feeds: Vec<(String, u64, String)> = status
                .feeds
                .iter()
                .map(|f| (f.publisher.clone(), f.seq, f.digest.clone()))
                .collect();
            if feeds != expected_feeds {
                return Err(format!("{me}: feeds {feeds:?}"));
            }
            let peers: Vec<&str> = status.peers.iter().map(|p| p.country.as_str()).collect();
            let want: Vec<String> = cluster
                .members()
                .iter()
                .map(|c| c.to_string())
                .filter(|c| *c != me)
                .collect();
            if peers != want {
                return Err(format!("{me}: peers {peers:?}, want {want:?}"));
            }
            for p in &status.peers {
                if p.last_success.is_none() || p.last_error.is_some() || p.last_attempt.is_none() {
                    return Err(format!("{me}: peer {p:?}"));
                }
            }
            // A pull records what it received once it ends, after the entries are in the feeds.
            let foreign = published.iter().filter(|p| p.publisher.to_string() != me).count() as u64;
            let received: u64 = status.peers.iter().map(|p| p.entries_received).sum();
            if received < foreign {
                return Err(format!(
                    "{me}: {received} of {foreign} entries recorded as received so far"
                ));
            }
        }
        Ok(())
    })
    .await;

    for i in cluster.running_indices() {
        let node = cluster.running(i);
        let status = node.settled_status().expect("status");
        let me = status.country.clone();
        // Each foreign entry is appended once, from whichever peer delivered it first.
        let foreign = published.iter().filter(|p| p.publisher.to_string() != me).count() as u64;
        let received: u64 = status.peers.iter().map(|p| p.entries_received).sum();
        assert_eq!(
            received, foreign,
            "{me}: entries_received over peers {:?}",
            status.peers
        );
        assert!(
            status.forks.is_empty() && status.equivocating.is_empty(),
            "{me}: {status:?}"
        );
        assert_eq!(
            status.records.values().sum::<u64>(),
            RECORDS as u64,
            "{me}: {:?}",
            status.records
        );
        assert!(
            accord::report::status_text(&status).contains("last success"),
            "{me}: text status"
        );
    }
    eventually("every node computes the same view", || views_agree(&cluster)).await;
    cluster.shutdown().await;
}

/// `heads_of` reads what `status` reports: the harness's view of a node agrees with the node's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_of_matches_status_feeds() {
    let cluster = start_cluster(&["DEU", "FRA"], full_mesh, ANNOUNCE_ONLY).await;
    let node = cluster.running(0);
    assert!(heads_of(node).is_empty(), "a fresh node holds no feeds");
    ingest_synthetic(node, last_year(), 50, 7);
    let p = node
        .publish(PublishRequest::new(Cube::Permits, Period::Year(last_year())))
        .expect("publish");
    let heads = heads_of(node);
    let status = node.settled_status().expect("status");
    assert_eq!(heads.len(), 1);
    assert_eq!(status.feeds.len(), 1);
    assert_eq!(heads["DEU"], (p.seq, p.digest));
    assert_eq!(status.feeds[0].digest, hex::encode(&p.digest));
    cluster.shutdown().await;
}

/// SPEC §4: an audience member must end up with the payload. Here FRA first receives DEU's
/// restricted entry through ITA (outside the audience, so header only), then syncs with DEU
/// itself, which would send the payload. FRA must then hold it, as `Store::accept`'s replay
/// upgrade intends. Ordering is forced by restarting FRA without, then with, DEU as a peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audience_member_gets_payload_after_header_arrived_through_a_relay() {
    let mut cluster = start_cluster(&["FRA", "ITA", "DEU"], full_mesh, ANNOUNCE_ONLY).await;
    let [fra, _, deu] = cluster.members()[..] else {
        unreachable!()
    };
    let (f, i, d) = (0, 1, 2);
    cluster.stop(f).await.expect("stop FRA");
    let config_path = cluster.nodes[f].config_path.clone();
    let full_config = std::fs::read_to_string(&config_path).expect("FRA node.toml");
    let without_deu = full_config
        .split("\n[[peers]]")
        .filter(|block| !block.contains("country = \"DEU\""))
        .collect::<Vec<_>>()
        .join("\n[[peers]]");
    assert!(
        !without_deu.contains("\"DEU\"") && without_deu.contains("country = \"ITA\""),
        "edited config:\n{without_deu}"
    );
    std::fs::write(&config_path, &without_deu).expect("write FRA node.toml");

    let publisher = cluster.running(d);
    ingest_synthetic(publisher, last_year(), RECORDS, 1);
    let restricted = publish_and_announce(publisher, Cube::Flows, Period::Year(last_year()), &[fra]).await;
    eventually("ITA holds DEU's restricted entry", || {
        match heads_of(cluster.running(i)).get("DEU") {
            Some(_) => Ok(()),
            None => Err("ITA holds no DEU feed yet".to_string()),
        }
    })
    .await;

    cluster.restart(f).await.expect("restart FRA peered with ITA only");
    eventually("FRA receives DEU seq 1 through ITA", || {
        all_hold_heads(&cluster, &expected_heads([&restricted]))
    })
    .await;
    let relayed = cluster.running(f).entry(deu, 1).expect("entry").expect("held");
    assert!(
        !relayed.has_payload,
        "ITA, outside the audience, relayed the header only"
    );

    cluster.stop(f).await.expect("stop FRA");
    std::fs::write(&config_path, &full_config).expect("restore FRA node.toml");
    cluster.restart(f).await.expect("restart FRA peered with DEU again");
    eventually("FRA, in the audience, gets the payload from DEU", || {
        let node = cluster.running(f);
        let peer = node.peer_status(deu).map_err(|e| e.to_string())?;
        let held = node.entry(deu, 1).map_err(|e| e.to_string())?.ok_or("entry gone")?;
        if held.has_payload {
            Ok(())
        } else {
            Err(format!(
                "FRA holds DEU seq 1 without payload; last sync with DEU: {peer:?}"
            ))
        }
    })
    .await;
    assert_eq!(
        cluster.running(f).view().expect("view").inputs.len(),
        1,
        "FRA's view uses DEU's flows"
    );
    cluster.shutdown().await;
}

/// The consortium takes a member's key away after that member's entries were accepted: the
/// node still starts, `status` and `view` still work, and both name the entries they now leave
/// out (SPEC §4: verifiers honour the consortium's keys; a stored entry is never fatal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_whose_key_left_the_consortium_are_named_and_left_out() {
    let mut cluster = start_cluster(&["DEU", "FRA"], full_mesh, ANNOUNCE_ONLY).await;
    let (d, f) = (0, 1);
    let year = last_year();
    for i in [d, f] {
        ingest_synthetic(cluster.running(i), year, RECORDS, 7);
    }
    let deu_entry = publish_and_announce(cluster.running(d), Cube::Flows, Period::Year(year), &[]).await;
    let fra_entry = publish_and_announce(cluster.running(f), Cube::Flows, Period::Year(year), &[]).await;
    let expected = expected_heads([&deu_entry, &fra_entry]);
    eventually("both nodes hold both feeds", || all_hold_heads(&cluster, &expected)).await;
    let before = cluster.running(d).view().expect("view before");
    assert_eq!(before.inputs.len(), 2, "DEU's view holds both publishers");

    // DEU restarts on a consortium in which FRA signs with another key.
    cluster.stop(d).await.expect("stop DEU");
    let config_path = cluster.nodes[d].config_path.clone();
    let consortium = std::fs::read_to_string(cluster.pki.join("consortium.toml")).expect("consortium.toml");
    let fra_key = consortium
        .split("[[members]]")
        .find(|m| m.contains("country = \"FRA\""))
        .and_then(|m| m.split("public_key = \"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .expect("FRA's key")
        .to_string();
    let rotated = hex::encode(&[7u8; 32]);
    std::fs::write(
        config_path.with_file_name("consortium-rotated.toml"),
        consortium.replace(&fra_key, &rotated),
    )
    .expect("write rotated consortium");
    let node_toml = std::fs::read_to_string(&config_path).expect("DEU node.toml");
    std::fs::write(
        &config_path,
        node_toml.replace(
            "consortium = \"../pki/consortium.toml\"",
            "consortium = \"consortium-rotated.toml\"",
        ),
    )
    .expect("write DEU node.toml");
    cluster
        .restart(d)
        .await
        .expect("DEU starts although it holds an entry that no longer verifies");

    let node = cluster.running(d);
    let status = node.settled_status().expect("status works");
    assert_eq!(status.left_out.len(), 1, "{:?}", status.left_out);
    assert!(
        status.left_out[0].starts_with("FRA seq 1: signature does not verify"),
        "{:?}",
        status.left_out
    );
    assert!(
        accord::report::status_text(&status).contains("left out of the view"),
        "{}",
        accord::report::status_text(&status)
    );
    let after = node.view().expect("view works");
    let publishers: Vec<String> = after.inputs.keys().map(|(p, _, _)| p.to_string()).collect();
    assert_eq!(
        publishers,
        vec!["DEU".to_string()],
        "FRA's entry is left out of the view"
    );
    assert_eq!(status.view_digest, hex::encode(&after.digest()));
    assert_ne!(after.digest(), before.digest());
    cluster.shutdown().await;
}
