//! Hostile peers against real nodes over real mutual TLS on 127.0.0.1 (SPEC §4, §5). Each test
//! plays one attack: a client without a certificate, with a certificate from another CA or with
//! a revoked one; a consortium member whose server (our own `Exchange` implementation holding
//! that member's real certificate) serves entries claiming another publisher, tampered relayed
//! envelopes, replays of old seqs, a forked feed or oversized messages; and a member's node
//! answering at the endpoint configured for another member. Each attack must be refused with a
//! reason the operator can read (the error, `PeerSync.rejected`, `status().peers[..].last_error`,
//! the log), must store nothing, and must leave the node serving and syncing with honest peers.
//! These are the promises a member makes to the others, so they are tested end to end rather
//! than only in the unit tests of `dataset` and `tls`.

use crate::support::SettledStatus;
use accord::certs;
use accord::config::Peer;
use accord::dataset::Limits;
use accord::exchange::sync::{self, PeerSync};
use accord::exchange::{Feeds, RejectReason, Rejection};
use accord::exchange::{MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES};
use accord::model::{Cube, Period};
use accord::node::PublishRequest;
use accord::proto;
use accord::tls::{self, TlsFiles};

use crate::support::hostile::*;
use crate::support::logs::with_logs;

// ------------------------------------------------------------------ TLS: who may connect

#[test]
fn client_without_a_certificate_is_refused() {
    with_logs(|logs| async move {
        let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        let node = cluster.running(VICTIM).clone();
        node.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .expect("publish");
        let before = heads(&node);

        let mut anonymous = dial(
            client_without_certificate(&cluster.pki),
            cluster.nodes[VICTIM].addr,
            member(DEU),
        );
        // The client may see the alert or just a reset (TLS 1.3 refuses after its Finished); the
        // node's reason is in its log.
        call_heads(&mut anonymous)
            .await
            .expect_err("a client without certificate is refused");
        logs.assert_logged(&["TLS handshake failed", "no certificates"]).await;

        assert_eq!(heads(&node), before, "nothing stored");
        assert_serves_honest_peer(&cluster, VICTIM, 2).await;
        drop(node);
        cluster.shutdown().await;
    });
}

#[test]
fn certificate_from_another_ca_is_refused() {
    with_logs(|logs| async move {
        let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        let node = cluster.running(VICTIM).clone();
        node.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .expect("publish");
        let before = heads(&node);

        // Same member SAN as FRA's real certificate, issued by a CA the consortium does not trust.
        let foreign = certs::generate_foreign_ca(&cluster.dir.path().join("foreign"), member(FRA)).expect("foreign CA");
        let files = TlsFiles {
            ca: cluster.pki.join("ca.pem"),
            cert: foreign.cert,
            key: foreign.key,
            crls: Vec::new(),
        };
        let config = tls::client_config(&files, member(DEU)).expect("client config");
        let mut impostor = dial(config, cluster.nodes[VICTIM].addr, member(DEU));
        call_heads(&mut impostor)
            .await
            .expect_err("a certificate from another CA is refused");
        logs.assert_logged(&["TLS handshake failed", "UnknownIssuer"]).await;

        assert_eq!(heads(&node), before, "nothing stored");
        assert_serves_honest_peer(&cluster, VICTIM, 2).await;
        drop(node);
        cluster.shutdown().await;
    });
}

#[test]
fn revoked_certificate_is_refused() {
    with_logs(|logs| async move {
        let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        cluster
            .running(VICTIM)
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .expect("publish");
        let fra_config = tls::client_config(&member_files(&cluster.pki, member(FRA)), member(DEU)).expect("config");
        call_heads(&mut dial(fra_config.clone(), cluster.nodes[VICTIM].addr, member(DEU)))
            .await
            .expect("before revocation FRA is served");

        // Revoke FRA's certificate and restart DEU with the CRL in its [tls] crls.
        let crl = cluster.pki.join("crl.pem");
        certs::revoke(&cluster.pki, &cluster.pki.join("fra.pem"), &crl).expect("revoke");
        let config_path = cluster.nodes[VICTIM].config_path.clone();
        let text = std::fs::read_to_string(&config_path).unwrap();
        assert!(text.contains("crls = []"), "{text}");
        std::fs::write(&config_path, text.replace("crls = []", "crls = [\"../pki/crl.pem\"]")).unwrap();
        cluster.stop(VICTIM).await.expect("stop DEU");
        cluster.restart(VICTIM).await.expect("restart DEU with the CRL");
        let node = cluster.running(VICTIM).clone();
        let before = heads(&node);

        call_heads(&mut dial(fra_config, cluster.nodes[VICTIM].addr, member(DEU)))
            .await
            .expect_err("a revoked certificate is refused");
        logs.assert_logged(&["TLS handshake failed", "Revoked"]).await;

        // FRA's own node is refused too, and DEU (a client checking CRLs) refuses FRA's server.
        let fra = cluster.running(HOSTILE).clone();
        let deu_as_seen_by_fra = Peer {
            country: member(DEU),
            endpoint: format!("https://{}", cluster.nodes[VICTIM].addr),
            tls_name: Some("deu.accord".to_string()),
        };
        let mut fra_client = sync::client(&fra.config().tls, &deu_as_seen_by_fra).expect("client");
        let fra_pull = sync::pull(
            &(fra.clone() as std::sync::Arc<dyn Feeds>),
            &deu_as_seen_by_fra,
            &mut fra_client,
        )
        .await;
        assert!(fra_pull.is_err(), "{fra_pull:?}");
        drop((fra, fra_client));
        let deu_pull = node.syncer().pull_from(member(FRA)).await;
        let reason = deu_pull
            .expect_err("DEU refuses FRA's revoked server certificate")
            .to_string();
        assert!(reason.contains("Revoked"), "{reason}");
        let recorded = last_error(&node, FRA).expect("last error recorded");
        assert!(recorded.contains("Revoked"), "{recorded}");

        assert_eq!(heads(&node), before, "nothing stored");
        assert_serves_honest_peer(&cluster, VICTIM, 2).await;
        node.syncer()
            .pull_from(member(ITA))
            .await
            .expect("DEU still pulls from ITA");
        drop(node);
        cluster.shutdown().await;
    });
}

// ------------------------------------------------------------------ a malicious member's server

#[test]
fn member_serving_a_dataset_as_another_publisher_is_rejected() {
    with_logs(|logs| async move {
        let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        let node = cluster.running(VICTIM).clone();
        let before = heads(&node);
        let fra_key = signing_key(&cluster.pki, member(FRA));
        let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
        let syncer = node.syncer();

        // A header claiming ITA, signed with FRA's key.
        let as_ita = signed(&dataset(&node, member(ITA), 7), &fra_key, None, now());
        evil.serve(vec![head_at(&as_ita)], vec![as_ita]);
        let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_rejected(&sync, "ITA seq 1: signature does not verify: publisher ITA");
        let recorded = last_error(&node, FRA).expect("reason recorded for FRA");
        assert!(recorded.contains("signature does not verify"), "{recorded}");
        logs.assert_logged(&["peer=FRA", "publisher=ITA", "rejected", "signature does not verify"])
            .await;

        // FRA's own, validly signed header over a dataset that names ITA as its publisher.
        let ita_payload = signed(&dataset(&node, member(ITA), 7), &fra_key, None, now());
        let mut header = header_of(&ita_payload);
        header.publisher = member(FRA);
        let mismatched = proto::Entry {
            envelope: Some(accord::dataset::envelope::sign(header.encode(), &fra_key)),
            ..ita_payload
        };
        evil.serve(vec![head_at(&mismatched)], vec![mismatched]);
        let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_rejected(&sync, "dataset publisher \"ITA\" does not match header \"FRA\"");

        assert_eq!(heads(&node), before, "nothing stored");
        assert!(node.settled_status().unwrap().forks.is_empty());
        evil.stop().await;

        // The node still syncs with the honest publisher.
        let published = cluster
            .running(2)
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .unwrap();
        syncer.pull_from(member(ITA)).await.expect("pull from ITA");
        assert_eq!(
            node.head(member(ITA)).unwrap().map(|h| h.digest),
            Some(published.digest)
        );
        drop((node, syncer));
        cluster.shutdown().await;
    });
}

#[test]
fn tampered_relayed_envelope_is_rejected() {
    with_logs(|logs| async move {
        let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        let node = cluster.running(VICTIM).clone();
        let before = heads(&node);
        // A genuine ITA entry (signed with ITA's key) that only the relaying member holds.
        let genuine = first_entry(&cluster, &node, member(ITA), 42);
        let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
        let syncer = node.syncer();

        let mut payload_flipped = genuine.clone();
        let last = payload_flipped.payload.len() - 1;
        payload_flipped.payload[last] ^= 0x01;

        let mut header_changed = genuine.clone();
        let mut header = header_of(&genuine);
        header.created_at -= 86_400;
        header_changed.envelope.as_mut().unwrap().payload = header.encode();

        let mut signature_flipped = genuine.clone();
        signature_flipped.envelope.as_mut().unwrap().signatures[0].sig[0] ^= 0x80;

        for (what, tampered, reason) in [
            (
                "payload byte",
                payload_flipped,
                "payload digest does not match the header",
            ),
            (
                "header field",
                header_changed,
                "signature does not verify: publisher ITA",
            ),
            (
                "signature byte",
                signature_flipped,
                "signature does not verify: publisher ITA",
            ),
        ] {
            evil.serve(vec![head_at(&tampered)], vec![tampered]);
            let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
            assert_rejected(&sync, reason);
            let recorded = last_error(&node, FRA).unwrap_or_default();
            assert!(recorded.contains(reason), "{what}: {recorded}");
            assert_eq!(heads(&node), before, "{what}: nothing stored");
        }
        logs.assert_logged(&["peer=FRA", "publisher=ITA", "rejected", "payload digest does not match"])
            .await;

        // The untampered entry relayed by the same member is accepted: relaying itself is fine.
        evil.serve(vec![head_at(&genuine)], vec![genuine.clone()]);
        let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_eq!(sync.appended, 1, "{sync:?}");
        assert_eq!(last_error(&node, FRA), None);
        assert_eq!(node.entry(member(ITA), 1).unwrap(), Some(genuine));
        evil.stop().await;
        assert_serves_honest_peer(&cluster, VICTIM, 2).await;
        drop((node, syncer));
        cluster.shutdown().await;
    });
}

#[test]
fn replayed_old_seq_changes_nothing() {
    with_logs(|logs| async move {
        let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
        let node = cluster.running(VICTIM).clone();
        let ita = cluster.running(2).clone();
        ita.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .unwrap();
        let second = ita
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2022)))
            .unwrap();
        drop(ita);
        let syncer = node.syncer();
        syncer.pull_from(member(ITA)).await.expect("pull from ITA");
        assert_eq!(node.head(member(ITA)).unwrap().map(|h| h.seq), Some(2));
        let old = node.entry(member(ITA), 1).unwrap().expect("ITA seq 1 held");
        let before = heads(&node);
        let view_before = node.settled_status().unwrap().view_digest;
        let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;

        // Seq 1 again, identical bytes: advertised as the head it is, as a different head at the
        // seq held (to force a fetch), and as a new seq 3.
        let honest_head = head_at(&old);
        let disputed_head = proto::Head {
            seq: second.seq,
            digest: vec![0xAA; 32],
            ..honest_head.clone()
        };
        let newer_head = proto::Head {
            seq: 3,
            digest: vec![0xBB; 32],
            ..honest_head.clone()
        };
        // Asked for seq 2 or 3, the peer answers with seq 1: refused, naming what was sent.
        let expected = [
            vec![],
            vec!["ITA seq 2: peer FRA sent ITA seq 1 instead".to_string()],
            vec!["ITA seq 3: peer FRA sent ITA seq 1 instead".to_string()],
        ];
        for (advertised, rejected) in [honest_head, disputed_head, newer_head].into_iter().zip(expected) {
            evil.serve(vec![advertised.clone()], vec![old.clone()]);
            let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
            let mut want = PeerSync::default();
            for detail in rejected {
                want.reject(Rejection {
                    reason: RejectReason::UnrequestedEntry,
                    detail,
                });
            }
            assert_eq!(sync, want, "replay advertised as {advertised:?}");
            assert_eq!(heads(&node), before, "nothing stored");
            let status = node.settled_status().unwrap();
            assert!(status.forks.is_empty() && status.equivocating.is_empty(), "{status:?}");
            assert_eq!(status.view_digest, view_before);
        }
        assert_eq!(node.entry(member(ITA), 1).unwrap(), Some(old));
        logs.assert_logged(&["peer=FRA", "publisher=ITA", "seq=3", "sent ITA seq 1 instead"])
            .await;
        evil.stop().await;
        assert_serves_honest_peer(&cluster, VICTIM, 2).await;
        drop((node, syncer));
        cluster.shutdown().await;
    });
}

#[test]
fn forked_feed_is_detected_and_other_feeds_are_unaffected() {
    with_logs(|logs| async move {
        let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA, ESP]).await;
        let node = cluster.running(VICTIM).clone();
        let ita = cluster.running(2).clone();
        let esp = cluster.running(3).clone();
        let held = ita
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .unwrap();
        esp.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
            .unwrap();
        let syncer = node.syncer();
        syncer.pull_from(member(ITA)).await.expect("pull from ITA");
        syncer.pull_from(member(ESP)).await.expect("pull from ESP");
        assert_eq!(node.head(member(ITA)).unwrap().map(|h| h.digest), Some(held.digest));
        let before = heads(&node);
        let view_before = node.settled_status().unwrap().view_digest;

        // ITA's key signs a second, different seq 1, and FRA relays it.
        let conflicting = first_entry(&cluster, &node, member(ITA), 999);
        assert_ne!(digest_of(&conflicting), held.digest);
        let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
        evil.serve(vec![head_at(&conflicting)], vec![conflicting.clone()]);
        let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_eq!(sync.forks, 1, "{sync:?}");
        assert_eq!(sync.appended, 0, "{sync:?}");
        logs.assert_logged(&["peer=FRA", "publisher=ITA", "publisher equivocates"])
            .await;

        let status = node.settled_status().unwrap();
        assert_eq!(status.equivocating, vec![ITA.to_string()]);
        assert_eq!(status.forks.len(), 1, "{:?}", status.forks);
        let fork = &status.forks[0];
        assert_eq!((fork.publisher.as_str(), fork.seq), (ITA, 1));
        assert_eq!(fork.held, accord::hex::encode(&held.digest));
        assert_eq!(fork.conflicting, accord::hex::encode(&digest_of(&conflicting)));
        // Not resolved silently: the held entry stays in the feed, and the view leaves ITA's
        // entries from the fork on out, naming why (SPEC §12), whichever branch a node holds.
        assert_eq!(heads(&node), before);
        assert_ne!(status.view_digest, view_before);
        assert!(
            status
                .left_out
                .iter()
                .any(|l| l.starts_with("ITA seq 1: ITA signed two different entries for seq 1")),
            "{:?}",
            status.left_out
        );
        assert!(node.view().unwrap().inputs.keys().all(|(p, _, _)| p.as_str() != ITA));
        // A second pull of the same evidence adds no second fork record.
        syncer.pull_from(member(FRA)).await.expect("pull completes");
        assert_eq!(node.settled_status().unwrap().forks.len(), 1);
        evil.stop().await;

        // Other feeds go on: ESP and DEU extend, and ESP's new entry reaches DEU.
        let esp_next = esp
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2022)))
            .unwrap();
        let sync = syncer.pull_from(member(ESP)).await.expect("pull from ESP");
        assert_eq!(
            node.head(member(ESP)).unwrap().map(|h| (h.seq, h.digest)),
            Some((2, esp_next.digest)),
            "{sync:?}"
        );
        let own = node
            .publish(PublishRequest::new(Cube::Flows, Period::Year(2022)))
            .unwrap();
        assert_eq!(own.seq, 1);
        let status = node.settled_status().unwrap();
        assert_eq!(status.equivocating, vec![ITA.to_string()]);
        assert_serves_honest_peer(&cluster, VICTIM, 3).await;
        drop((node, ita, esp, syncer));
        cluster.shutdown().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_from_a_member_are_refused() {
    let mut cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    let before = heads(&node);
    let genuine = first_entry(&cluster, &node, member(ITA), 5);
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    let syncer = node.syncer();

    // A payload over the dataset limit, inside the gRPC message limit: refused by verification.
    let max_payload = Limits::default().max_payload_bytes as usize;
    assert!(max_payload + 1024 < MAX_MESSAGE_BYTES);
    let mut big = genuine.clone();
    big.payload = vec![0; max_payload + 1];
    evil.serve(vec![head_at(&big)], vec![big]);
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_rejected(&sync, "over the limit 33554432 (max_payload_bytes)");
    assert_eq!(heads(&node), before, "nothing stored");

    // A message over the gRPC limit: the stream is cut, the error names the limit.
    let mut huge = genuine.clone();
    huge.payload = vec![0; MAX_MESSAGE_BYTES + 1];
    evil.serve(vec![head_at(&huge)], vec![huge]);
    let error = syncer
        .pull_from(member(FRA))
        .await
        .expect_err("an oversized message fails the pull")
        .to_string();
    let limit = MAX_MESSAGE_BYTES.to_string();
    assert!(error.contains("too large") && error.contains(&limit), "{error}");
    let recorded = last_error(&node, FRA).expect("reason recorded");
    assert!(recorded.contains(&limit), "{recorded}");
    assert_eq!(heads(&node), before, "nothing stored");

    // The same member relaying the genuine entry is then accepted over the same channel.
    evil.serve(vec![head_at(&genuine)], vec![genuine]);
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_eq!(sync.appended, 1, "{sync:?}");
    evil.stop().await;
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop((node, syncer));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_to_a_node_is_refused() {
    let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    node.publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    let before = heads(&node);

    // FRA (a member, so past TLS) announces a head whose digest is over the request limit.
    let config = tls::client_config(&member_files(&cluster.pki, member(FRA)), member(DEU)).unwrap();
    let mut client = dial(config, cluster.nodes[VICTIM].addr, member(DEU));
    let oversized = proto::AnnounceRequest {
        heads: vec![proto::Head {
            publisher: FRA.to_string(),
            seq: 1,
            digest: vec![0; MAX_REQUEST_BYTES + 1],
        }],
    };
    let status = client
        .announce(oversized)
        .await
        .expect_err("an oversized request is refused");
    let error = describe(&status);
    assert!(error.contains(&MAX_REQUEST_BYTES.to_string()), "{error}");

    assert_eq!(heads(&node), before, "nothing stored");
    call_heads(&mut client)
        .await
        .expect("the same member is served afterwards");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await;
}

/// A Fetch naming a long junk publisher is refused, and the reply quotes only a bounded part of
/// it (an echo that grows with the request would outgrow the caller's metadata limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_publisher_is_refused_with_a_bounded_reply() {
    let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let config = tls::client_config(&member_files(&cluster.pki, member(FRA)), member(DEU)).unwrap();
    let mut client = dial(config, cluster.nodes[VICTIM].addr, member(DEU));
    let request = proto::FetchRequest {
        publisher: "Z".repeat(100_000),
        from_seq: 1,
        to_seq: 1,
        ..Default::default()
    };
    let status = client.fetch(request).await.expect_err("junk publisher");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", describe(&status));
    assert!(
        status.message().starts_with("publisher: not a country code: \"ZZZZ"),
        "{}",
        status.message()
    );
    assert!(status.message().len() < 100, "{} bytes", status.message().len());
    // A Fetch by digest names one entry by a 32-byte SHA-256; anything else is refused, and a
    // digest the node holds under no entry and no evidence gets an empty answer.
    for (digest, to_seq, why) in [
        (vec![7; 31], 1, "digest: 31 bytes, not 32"),
        (vec![7; 32], 3, "from_seq must equal to_seq"),
    ] {
        let request = proto::FetchRequest {
            publisher: "FRA".into(),
            from_seq: 1,
            to_seq,
            digest,
        };
        let status = client.fetch(request).await.expect_err(why);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", describe(&status));
        assert!(status.message().contains(why), "{}", status.message());
    }
    let request = proto::FetchRequest {
        publisher: "FRA".into(),
        from_seq: 1,
        to_seq: 1,
        digest: vec![7; 32],
    };
    let mut stream = client.fetch(request).await.expect("a well-formed request").into_inner();
    assert!(stream.message().await.unwrap().is_none(), "no entry has that digest");
    call_heads(&mut client).await.expect("served afterwards");
    cluster.shutdown().await;
}

// ------------------------------------------------------------------ who answers at an endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_answering_for_another_member_is_refused() {
    let cluster = start_hostile_cluster(&[DEU, FRA, ITA]).await;
    let node = cluster.running(VICTIM).clone();
    cluster
        .running(2)
        .publish(PublishRequest::new(Cube::Flows, Period::Year(2023)))
        .unwrap();
    let before = heads(&node);

    // DEU expects FRA, but ITA's real node answers at the endpoint (with a name ITA's certificate
    // is valid for, so only the member check can refuse it).
    let mut peer = node
        .config()
        .peers
        .iter()
        .find(|p| p.country == member(FRA))
        .unwrap()
        .clone();
    peer.endpoint = format!("https://{}", cluster.nodes[2].addr);
    peer.tls_name = Some("ita.accord".to_string());
    let mut client = sync::client(&node.config().tls, &peer).expect("client");
    let error = sync::pull(&(node.clone() as std::sync::Arc<dyn Feeds>), &peer, &mut client)
        .await
        .expect_err("the client refuses a server naming another member")
        .to_string();
    assert!(error.contains("names member ITA, expected FRA"), "{error}");
    let recorded = last_error(&node, FRA).expect("reason recorded for FRA");
    assert!(recorded.contains("names member ITA"), "{recorded}");
    assert_eq!(heads(&node), before, "nothing stored");

    // DEU still syncs with ITA at ITA's own endpoint, and serves ITA.
    let sync = node.syncer().pull_from(member(ITA)).await.expect("pull from ITA");
    assert!(node.head(member(ITA)).unwrap().is_some(), "{sync:?}");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await;
}

/// SPEC §10 entry sanity, as a member with its real signing key would try it: a seq 2 dated
/// before seq 1 (an old key's "old" entry made today), an entry from the future, and one dated
/// before its period began. Each is signed correctly and chains; each is refused by the node,
/// with nothing stored and the reason named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_with_impossible_times_are_refused() {
    let cluster = start_hostile_cluster(&[DEU, FRA]).await;
    let node = cluster.running(0).clone();
    let fra = member(FRA);
    let key = signing_key(&cluster.pki, fra);
    // The key's window opens at midnight UTC of the day the consortium was made: the backdated
    // entry must stay inside it however soon after midnight this runs.
    let opens = node.consortium().member(fra).expect("FRA is a member").keys[0].valid_from;
    while now() <= opens {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let signed_at = now();
    let first = signed(&dataset(&node, fra, 7), &key, None, signed_at);
    let (_, placement) = node.accept(first.clone()).expect("seq 1 accepted");
    assert_eq!(placement, accord::dataset::Placement::Append);
    let head = node.head(fra).unwrap();

    let backdated = signed(&dataset(&node, fra, 8), &key, head, (signed_at - 3_600).max(opens));
    let (_, placement) = node.accept(backdated).expect("verifies on its own");
    assert!(
        matches!(placement, accord::dataset::Placement::Backdated { .. }),
        "{placement:?}"
    );
    assert_eq!(node.head(fra).unwrap(), head, "nothing appended");

    let future = signed(&dataset(&node, fra, 8), &key, head, now() + 600);
    let err = node.accept(future).expect_err("from the future");
    assert!(err.to_string().contains("ahead of this node's clock"), "{err}");

    let mut early = dataset(&node, fra, 8);
    let next_year = accord::date::Date::today().year + 1;
    early.period = Period::Year(next_year);
    let err = node
        .accept(signed(&early, &key, head, now()))
        .expect_err("before its period");
    assert!(
        err.to_string()
            .contains(&format!("before its period {next_year} began")),
        "{err}"
    );
    assert_eq!(node.head(fra).unwrap(), head, "nothing appended");
    drop(node);
    cluster.shutdown().await;
}
