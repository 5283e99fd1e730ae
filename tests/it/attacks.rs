//! Attacks on a node's resources by a member holding a real certificate, against real nodes
//! over mutual TLS on 127.0.0.1: forks replayed with large payloads, Heads answers naming
//! publishers that do not exist, and a peer that never answers. Each test asserts the node keeps
//! what it must (the evidence, the counts) and nothing more, and goes on serving and syncing with
//! honest members. Attacks on authenticity (forged, tampered, replayed entries) are in
//! `hostile.rs`; attacks on governance (votes header first, squatting proposals, votes
//! in a loop, arrival orders and splits) in `attacks/governance.rs`.

mod backup;
mod governance;
mod listeners;

use accord::model::{Cube, Period};
use accord::node::PublishRequest;
use accord::proto;
use accord::tls;

use crate::support::hostile::*;
use crate::support::{eventually, raise_file_limit};

/// A member replays conflicting seq-1 headers of another publisher, each with a large payload:
/// the first conflict is kept as evidence (the signed header alone) and still shown; the others
/// are reported as forks but add nothing to the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_forks_with_large_payloads_do_not_grow_the_store() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let ita = cluster.running(2).clone();
    let held = ita
        .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    let syncer = node.syncer();
    syncer.pull_from(member(ITA)).await.expect("pull from ITA");
    let key = signing_key(&cluster.pki, member(ITA));
    let cells = large_cells(ITA);
    let before = node.status().unwrap().store_bytes;
    let (rounds, mut sent) = (20u64, 0usize);
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    for round in 0..rounds {
        let mut big = dataset(&node, member(ITA), 1);
        big.cells = cells.clone();
        big.cells[0].value = accord::model::CellValue::Value(100 + round);
        let conflicting = signed(&big, &key, None, now());
        sent += conflicting.payload.len();
        evil.serve(vec![head_at(&conflicting)], vec![conflicting]);
        let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_eq!((sync.forks, sync.appended), (1, 0), "round {round}: {sync:?}");
    }
    node.flush().unwrap();
    let status = node.status().unwrap();
    let growth = status.store_bytes.saturating_sub(before);
    assert!(sent > 15 << 20, "the attack sent {sent} bytes of payload");
    assert!(
        growth < (sent / 8) as u64,
        "store grew by {growth} bytes for {sent} bytes of conflicting payloads"
    );
    assert_eq!(status.equivocating, vec![ITA.to_string()]);
    assert_eq!(status.forks.len(), 1, "one piece of evidence: {:?}", status.forks);
    assert_eq!(status.forks[0].held, accord::hex::encode(&held.digest));
    evil.stop().await;
    drop((node, ita, syncer));
    cluster.shutdown().await;
}

/// A member answers Heads with feeds of publishers that do not exist: a few thousand are counted
/// (a handful kept with their text, none stored); half a million do not even get read, the
/// answer being over the limit for Heads. Either way the node keeps nothing of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_publisher_heads_are_counted_not_kept() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let syncer = node.syncer();
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    let junk = |n: usize| -> Vec<proto::Head> {
        (0..n)
            .map(|i| proto::Head {
                publisher: format!("Z{i:07}"),
                seq: 1,
                digest: vec![7; 32],
            })
            .collect()
    };

    evil.serve(junk(5_000), Vec::new());
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_eq!(sync.rejected_total(), 5_000, "every one counted");
    assert_eq!(sync.rejected.len(), accord::exchange::sync::MAX_REJECTIONS_KEPT);
    assert!(
        sync.rejected.iter().all(|r| r.detail.len() < 64),
        "{:?}",
        sync.rejected[0]
    );
    let metrics = node.metrics().render();
    assert!(
        metrics.contains("accord_datasets_rejected_total{reason=\"unknown_publisher\"} 5000"),
        "{metrics}"
    );
    assert!(!metrics.contains("Z000"), "a peer's text became a label");

    evil.serve(junk(500_000), Vec::new());
    let refused = syncer
        .pull_from(member(FRA))
        .await
        .expect_err("an oversized Heads answer is refused");
    let refused = refused.to_string();
    assert!(
        refused.contains("peer FRA") && refused.contains("the limit is: 1048576 bytes"),
        "the refusal names the peer and the limit: {refused}"
    );
    assert!(node.metrics().render().len() < 4096, "metrics stay small");
    assert_eq!(heads(&node), Vec::new(), "nothing stored");
    evil.stop().await;
    drop((node, syncer));
    cluster.shutdown().await;
}

/// A member that never answers (its Heads hangs) while the victim pulls from it: the victim's
/// daemon still pulls from everyone else at once (pulls run side by side, each with a deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_does_not_hold_up_the_others() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let ita = cluster.running(2).clone();
    let deu_addr = cluster.nodes[VICTIM].addr;
    let pki = cluster.pki.clone();
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    evil.stall();
    // FRA announces: DEU's daemon starts a pull from FRA that will not end before its deadline.
    let config = tls::client_config(&member_files(&pki, member(FRA)), member(DEU)).expect("client config");
    let mut fra_to_deu = dial(config, deu_addr, member(DEU));
    fra_to_deu
        .announce(proto::AnnounceRequest { heads: Vec::new() })
        .await
        .expect("announce accepted");

    // ITA publishes and announces: DEU's daemon pulls from ITA meanwhile.
    let published = ita
        .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    ita.syncer().announce_all().await;
    eventually("DEU holds ITA's new entry while the pull from FRA hangs", || match node
        .head(member(ITA))
        .map_err(|e| e.to_string())?
    {
        Some(h) if h.digest == published.digest => Ok(()),
        other => Err(format!("DEU holds ITA at {other:?}")),
    })
    .await;
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop((node, ita, fra_to_deu));
    // The victim first: its daemon drops the hanging pull at once, which frees the stalled server.
    cluster.shutdown().await;
    evil.stop().await;
}

/// A member whose Attestations answer never comes, while a pull reading its notes holds the
/// turn (`sync::NotesTurn`): the victim's pull from an honest member still reads that member's
/// new note, after waiting for the turn at most `TURN_WAIT`, well before the stalled request's
/// own timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stalls_its_notes_does_not_hold_up_the_others() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let ita = cluster.running(2).clone();
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    evil.stall_notes();
    ita.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    ita.attest_if_changed(accord::date::unix_now())
        .expect("ITA attests its new state");

    let syncer = std::sync::Arc::new(node.syncer());
    let stalled = {
        let syncer = syncer.clone();
        tokio::spawn(async move { syncer.pull_from(member(FRA)).await })
    };
    eventually("the pull from FRA waits for FRA's notes", || {
        evil.notes_asked().then_some(()).ok_or("not asked yet".to_string())
    })
    .await;
    // The request to FRA times out after 30 s; the pull from ITA waits for the turn 2 s.
    let from_ita = tokio::time::timeout(std::time::Duration::from_secs(15), syncer.pull_from(member(ITA)))
        .await
        .expect("the pull from ITA is not held up by FRA's stalled notes")
        .expect("the pull from ITA succeeds");
    assert!(from_ita.notes_read >= 1, "ITA's new note was read: {from_ita:?}");
    stalled.abort();
    drop((node, ita, syncer));
    cluster.shutdown().await;
    evil.stop().await;
}

/// Strangers open hundreds of TCP connections to the victim from 16 loopback addresses and never
/// start TLS. Accepting never waits for them: a member still connects, gets answers and pulls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_holding_sockets_do_not_lock_members_out() {
    raise_file_limit();
    let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let ita = cluster.running(2).clone();
    let addr = cluster.nodes[VICTIM].addr;
    let mut strangers = Vec::new();
    for i in 0..600u32 {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % 16) as u8);
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind((source, 0).into()).expect("bind a loopback source address");
        strangers.push(socket.connect(addr).await.expect("the node accepts the connection"));
    }

    // A member's Heads still answers, and a member still pulls a new entry from the victim.
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    let published = node
        .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    let pulled = ita.syncer().pull_from(member(DEU)).await.expect("ITA pulls from DEU");
    assert_eq!(pulled.appended, 1, "{pulled:?}");
    assert_eq!(ita.head(member(DEU)).unwrap().map(|h| h.digest), Some(published.digest));
    drop(strangers);
    drop((node, ita));
    cluster.shutdown().await;
}

/// A member opens 50 connections of 16 Fetch streams each over a feed of large entries and never
/// reads them. Its connections past its share are closed after the handshake; it gets at most
/// its share of streams (the rest are refused, naming the limit),
/// each holding at most two entries and no thread (the streams are async tasks); the victim
/// answers another member, still publishes, and stops (closing what it cannot finish).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_streams_that_are_never_read_cost_a_bounded_buffer() {
    let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    // DEU holds 12 of ITA's entries of about 0.9 MB each, so a stream never read fills its window.
    let key = signing_key(&cluster.pki, member(ITA));
    let mut head = None;
    for month in 1..=12u8 {
        let mut big = dataset(&node, member(ITA), 1);
        big.period = Period::Month(2023, month);
        big.cells = large_cells(ITA);
        let entry = signed(&big, &key, head, now());
        let (verified, _) = node.accept(entry).expect("ITA's entry accepted");
        head = Some(accord::dataset::Head {
            seq: verified.header().seq,
            digest: verified.digest(),
        });
    }

    let config = tls::client_config(&member_files(&cluster.pki, member(FRA)), member(DEU)).expect("client config");
    let addr = cluster.nodes[VICTIM].addr;
    let mut open = Vec::new();
    let mut refused = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..50 {
        let client = dial(config.clone(), addr, member(DEU));
        connections.push(client.clone());
        for _ in 0..16 {
            let mut c = client.clone();
            let request = proto::FetchRequest {
                publisher: ITA.to_string(),
                from_seq: 1,
                to_seq: 12,
                ..Default::default()
            };
            match c.fetch(request).await {
                Ok(stream) => open.push((c, stream)),
                Err(status) => refused.push(status),
            }
        }
    }
    assert!(
        !open.is_empty() && open.len() <= accord::exchange::server::MAX_FETCH_STREAMS_PER_MEMBER,
        "{} streams open",
        open.len()
    );
    // Past its streams, a stream is refused naming the limit; past its connections, the
    // connection is closed after the handshake and every call on it fails (how the client words
    // that depends on timing: transport error, cancelled, unavailable).
    let by_limit = refused
        .iter()
        .filter(|s| s.code() == tonic::Code::ResourceExhausted && s.message().contains("max_fetch_streams_per_member"))
        .count();
    let closed = refused.len() - by_limit;
    assert_eq!(
        closed,
        (50 - accord::tls::MAX_CONNECTIONS_PER_MEMBER) * 16,
        "every connection past the member's share is closed"
    );
    assert!(by_limit > 0, "the stream limit met");
    // Another member is served, and the node's own work goes on.
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    let own = node
        .publish(PublishRequest::new(Cube::Flows, Period::Year(2022)))
        .expect("publish");
    assert_eq!(own.seq, 1);
    assert!(node.status().is_ok());
    drop(node);
    cluster.shutdown().await;
    drop((open, connections));
}

/// About 30,000 distinct `flows` cells (about 0.9 MB encoded), sorted.
fn large_cells(publisher: &str) -> Vec<accord::model::Cell> {
    let partners: Vec<String> = accord::model::Country::all_iso()
        .filter(|c| c.as_str() != publisher)
        .take(40)
        .map(|c| c.to_string())
        .collect();
    let mut cells = Vec::new();
    for partner in &partners {
        for citizenship in &partners {
            for sex in ["F", "M"] {
                for band in [
                    "Y20-24", "Y25-29", "Y30-34", "Y35-39", "Y40-44", "Y45-49", "Y50-54", "Y55-59", "Y60-64",
                ] {
                    cells.push(accord::model::Cell {
                        key: ["OUT", partner, citizenship, sex, band].map(String::from).to_vec(),
                        value: accord::model::CellValue::Value(7),
                    });
                }
            }
        }
    }
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    cells
}
