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

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use accord::certs;
use accord::cluster::{full_mesh, ClusterOptions, LocalCluster};
use accord::config::Peer;
use accord::dataset::envelope::sha256;
use accord::dataset::publish::{sign_entry, EntryParams};
use accord::dataset::{Cell, CellValue, Cube, Dataset, EntryHeader, Head, Limits, Period};
use accord::exchange::sync::{self, PeerSync, Syncer};
use accord::exchange::MAX_MESSAGE_BYTES;
use accord::node::Node;
use accord::proto;
use accord::proto::exchange_client::ExchangeClient;
use accord::proto::exchange_server::{Exchange, ExchangeServer};
use accord::record::Country;
use accord::tls::{self, TlsFiles};
use ring::signature::Ed25519KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

// ------------------------------------------------------------------ members and clusters

const DEU: &str = "DEU";
const FRA: &str = "FRA";
const ITA: &str = "ITA";
const ESP: &str = "ESP";

fn member(code: &str) -> Country {
    Country::parse(code).expect("a member code")
}

/// Node 0 is the node under attack and node 1 the member that turns hostile.
const VICTIM: usize = 0;
const HOSTILE: usize = 1;

/// Every node peers with every other, except that the hostile member does not list the victim:
/// so it never announces to the victim, and the victim's daemon pulls from it only once, at
/// start. Every later pull from it is the test's own, whose outcome is then the test's to read.
fn mesh_without_hostile_announces(i: usize, j: usize, n: usize) -> bool {
    full_mesh(i, j, n) && !(i == HOSTILE && j == VICTIM)
}

/// Real nodes; the long sync interval keeps the daemons' own sync loops from pulling during a
/// test (they pull once at start and when a peer announces). Returns once the victim's daemon
/// has finished its first pull from every peer.
async fn start_cluster(dir: &Path, codes: &[&str]) -> LocalCluster {
    let options = ClusterOptions {
        countries: codes.iter().map(|c| member(c)).collect(),
        peered: mesh_without_hostile_announces,
        sync_interval_secs: 3600,
        consortium_edit: None,
    };
    let cluster = LocalCluster::start(dir, &options).await.expect("cluster starts");
    let victim = running(&cluster, VICTIM);
    eventually("the victim's first pull from every peer", || {
        let status = victim.status().map_err(|e| e.to_string())?;
        match status.peers.iter().find(|p| p.last_attempt.is_none()) {
            Some(p) => Err(format!("no attempt yet with {}", p.country)),
            None => Ok(()),
        }
    })
    .await;
    cluster
}

fn running(cluster: &LocalCluster, i: usize) -> Arc<Node> {
    cluster.node(i).cloned().expect("node is running")
}

fn heads(node: &Node) -> Vec<(Country, Head)> {
    node.store.heads().expect("heads readable")
}

/// The TLS files `accord certs` issued to `code` in the cluster's PKI.
fn member_files(pki: &Path, code: Country) -> TlsFiles {
    TlsFiles {
        ca: pki.join("ca.pem"),
        cert: pki.join(format!("{}.pem", code.lower())),
        key: pki.join(format!("{}.key", code.lower())),
        crls: Vec::new(),
    }
}

// ------------------------------------------------------------------ eventually and logs

/// Polls `check` every 50 ms for up to 30 s; fails with the last reason it gave.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(value) => return value,
            Err(last) if tokio::time::Instant::now() >= deadline => panic!("{what}: still not true after 30 s: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Everything the nodes in this test binary log (all tests share it; each looks for lines
/// only its own attack produces).
#[derive(Clone)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

fn capture_logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer(Arc::default());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(buffer.clone())
            .try_init();
        buffer
    })
}

/// Waits until one log line contains every one of `needles`.
async fn assert_logged(needles: &[&str]) {
    let logs = capture_logs();
    eventually(&format!("a log line containing {needles:?}"), || {
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        match text.lines().find(|line| needles.iter().all(|n| line.contains(n))) {
            Some(_) => Ok(()),
            None => {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                Err(format!("last lines (newest first):\n{}", tail.join("\n")))
            }
        }
    })
    .await;
}

// ------------------------------------------------------------------ clients

/// A status with its hidden transport causes (rustls puts the real reason in the source chain).
fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// An Exchange client over `config` to the member `server` listening on `addr`.
fn dial(config: Arc<ClientConfig>, addr: SocketAddr, server: Country) -> ExchangeClient<Channel> {
    let name = format!("{}.accord", server.lower());
    let channel = tls::channel(&format!("https://{addr}"), Some(&name), config, server).expect("channel");
    ExchangeClient::new(channel)
}

async fn call_heads(client: &mut ExchangeClient<Channel>) -> Result<Vec<proto::Head>, String> {
    client
        .heads(proto::HeadsRequest {})
        .await
        .map(|r| r.into_inner().heads)
        .map_err(|s| describe(&s))
}

/// A client that trusts the consortium CA but presents no certificate at all.
fn client_without_certificate(pki: &Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.join("ca.pem")).expect("ca.pem readable") {
        roots
            .add(cert.expect("CA certificate parses"))
            .expect("CA certificate accepted");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Asserts that node `target` still answers an honest member (`honest`), through the client
/// the honest node itself uses, and that what it serves is what it holds.
async fn assert_serves_honest_peer(cluster: &LocalCluster, target: usize, honest: usize) {
    let honest_node = running(cluster, honest);
    let target_country = cluster.nodes[target].country;
    let peer = honest_node
        .config
        .peers
        .iter()
        .find(|p| p.country == target_country)
        .expect("honest node peers with the target")
        .clone();
    let mut client = sync::client(&honest_node, &peer).expect("honest client");
    let served = call_heads(&mut client)
        .await
        .expect("the node still serves an honest member");
    let served: Vec<(String, u64, Vec<u8>)> = served.into_iter().map(|h| (h.publisher, h.seq, h.digest)).collect();
    let held: Vec<(String, u64, Vec<u8>)> = heads(&running(cluster, target))
        .into_iter()
        .map(|(p, h)| (p.to_string(), h.seq, h.digest.to_vec()))
        .collect();
    assert_eq!(served, held, "heads served to the honest member");
}

fn last_error(node: &Node, peer: &str) -> Option<String> {
    let status = node.status().expect("status");
    status
        .peers
        .into_iter()
        .find(|p| p.country == peer)
        .expect("peer listed in status")
        .last_error
}

// ------------------------------------------------------------------ entries signed by hand

fn signing_key(pki: &Path, code: Country) -> Ed25519KeyPair {
    let bytes = std::fs::read(pki.join(format!("{}.sign.pk8", code.lower()))).expect("signing key readable");
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes).expect("Ed25519 key")
}

/// A one-cell flows dataset of `publisher` under the consortium's definition and disclosure.
fn dataset(node: &Node, publisher: Country, value: u64) -> Dataset {
    let consortium = &node.config.consortium;
    Dataset {
        publisher,
        cube: Cube::Flows,
        period: Period::Year(2023),
        definition: consortium.definition,
        disclosure: consortium.disclosure,
        cells: vec![Cell {
            key: ["IN", "DEU", "DEU", "F", "Y20-24"].map(String::from).to_vec(),
            value: CellValue::Value(value),
        }],
    }
}

/// `dataset` signed with `key` as the entry after `head` (seq 1 when `None`).
fn signed(dataset: &Dataset, key: &Ed25519KeyPair, head: Option<Head>, created_at: i64) -> proto::Entry {
    sign_entry(
        dataset,
        EntryParams {
            head,
            created_at,
            audience: Vec::new(),
            key,
        },
    )
}

fn header_of(entry: &proto::Entry) -> EntryHeader {
    EntryHeader::decode(&entry.envelope.as_ref().expect("envelope").payload).expect("header decodes")
}

fn digest_of(entry: &proto::Entry) -> [u8; 32] {
    sha256(&entry.envelope.as_ref().expect("envelope").payload)
}

/// The head a server advertises for a feed ending at `entry`.
fn head_at(entry: &proto::Entry) -> proto::Head {
    let header = header_of(entry);
    proto::Head {
        publisher: header.publisher.to_string(),
        seq: header.seq,
        digest: digest_of(entry).to_vec(),
    }
}

/// A time inside the keys' validity window (certs are valid from today).
fn now() -> i64 {
    accord::date::unix_now()
}

// ------------------------------------------------------------------ a malicious member's server

/// What the malicious server says: its heads, and the entries it streams for any Fetch
/// (whatever range was asked for).
#[derive(Default)]
struct Script {
    heads: Vec<proto::Head>,
    entries: Vec<proto::Entry>,
}

struct MaliciousExchange {
    script: Arc<Mutex<Script>>,
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<proto::Entry, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for MaliciousExchange {
    async fn heads(&self, _: Request<proto::HeadsRequest>) -> Result<Response<proto::HeadsResponse>, Status> {
        let heads = self.script.lock().unwrap_or_else(|p| p.into_inner()).heads.clone();
        Ok(Response::new(proto::HeadsResponse { heads }))
    }

    type FetchStream = EntryStream;

    async fn fetch(&self, _: Request<proto::FetchRequest>) -> Result<Response<EntryStream>, Status> {
        let entries = self.script.lock().unwrap_or_else(|p| p.into_inner()).entries.clone();
        Ok(Response::new(Box::pin(tokio_stream::iter(entries.into_iter().map(Ok)))))
    }

    async fn announce(&self, _: Request<proto::AnnounceRequest>) -> Result<Response<proto::AnnounceResponse>, Status> {
        Ok(Response::new(proto::AnnounceResponse {}))
    }
}

/// A malicious server holding a member's real certificate, on that member's address.
struct MaliciousMember {
    script: Arc<Mutex<Script>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl MaliciousMember {
    /// Stops cluster node `x` and serves our own Exchange on its address with its certificate.
    async fn replace(cluster: &mut LocalCluster, x: usize) -> MaliciousMember {
        cluster.stop(x).await.expect("stop the honest node");
        let files = member_files(&cluster.pki, cluster.nodes[x].country);
        let listener = TcpListener::bind(cluster.nodes[x].addr)
            .await
            .expect("rebind the member's address");
        let config = tls::server_config(&files).expect("server config from the member's certificate");
        let script = Arc::new(Mutex::new(Script::default()));
        let service = ExchangeServer::new(MaliciousExchange { script: script.clone() });
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(tls::incoming(listener, config), async move {
                let _ = stopped.await;
            });
        MaliciousMember {
            script,
            stop,
            task: tokio::spawn(server),
        }
    }

    fn serve(&self, heads: Vec<proto::Head>, entries: Vec<proto::Entry>) {
        *self.script.lock().unwrap_or_else(|p| p.into_inner()) = Script { heads, entries };
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server ran");
    }
}

/// Asserts a pull refused the attack: nothing appended, no fork, a reason containing `reason`.
fn assert_rejected(sync: &PeerSync, reason: &str) {
    assert_eq!(sync.appended, 0, "{sync:?}");
    assert_eq!(sync.forks, 0, "{sync:?}");
    assert!(
        sync.rejected.iter().any(|r| r.contains(reason)),
        "expected a rejection naming {reason:?}: {sync:?}"
    );
}

// ------------------------------------------------------------------ TLS: who may connect

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_a_certificate_is_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    node.publish(Cube::Flows, Period::Year(2023), Vec::new())
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
    assert_logged(&["TLS handshake failed", "no certificates"]).await;

    assert_eq!(heads(&node), before, "nothing stored");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    node.publish(Cube::Flows, Period::Year(2023), Vec::new())
        .expect("publish");
    let before = heads(&node);

    // Same member SAN as FRA's real certificate, issued by a CA the consortium does not trust.
    let foreign = certs::generate_foreign_ca(&dir.path().join("foreign"), member(FRA)).expect("foreign CA");
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
    assert_logged(&["TLS handshake failed", "UnknownIssuer"]).await;

    assert_eq!(heads(&node), before, "nothing stored");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificate_is_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    running(&cluster, VICTIM)
        .publish(Cube::Flows, Period::Year(2023), Vec::new())
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
    let node = running(&cluster, VICTIM);
    let before = heads(&node);

    call_heads(&mut dial(fra_config, cluster.nodes[VICTIM].addr, member(DEU)))
        .await
        .expect_err("a revoked certificate is refused");
    assert_logged(&["TLS handshake failed", "Revoked"]).await;

    // FRA's own node is refused too, and DEU (a client checking CRLs) refuses FRA's server.
    let fra = running(&cluster, HOSTILE);
    let deu_as_seen_by_fra = Peer {
        country: member(DEU),
        endpoint: format!("https://{}", cluster.nodes[VICTIM].addr),
        tls_name: Some("deu.accord".to_string()),
    };
    let mut fra_client = sync::client(&fra, &deu_as_seen_by_fra).expect("client");
    let fra_pull = sync::pull(&fra, &deu_as_seen_by_fra, &mut fra_client).await;
    assert!(fra_pull.is_err(), "{fra_pull:?}");
    drop((fra, fra_client));
    let deu_pull = Syncer::new(node.clone()).pull_from(member(FRA)).await;
    let reason = deu_pull
        .expect_err("DEU refuses FRA's revoked server certificate")
        .to_string();
    assert!(reason.contains("Revoked"), "{reason}");
    let recorded = last_error(&node, FRA).expect("last error recorded");
    assert!(recorded.contains("Revoked"), "{recorded}");

    assert_eq!(heads(&node), before, "nothing stored");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    Syncer::new(node.clone())
        .pull_from(member(ITA))
        .await
        .expect("DEU still pulls from ITA");
    drop(node);
    cluster.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ a malicious member's server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_serving_a_dataset_as_another_publisher_is_rejected() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    let before = heads(&node);
    let fra_key = signing_key(&cluster.pki, member(FRA));
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    let syncer = Syncer::new(node.clone());

    // A header claiming ITA, signed with FRA's key.
    let as_ita = signed(&dataset(&node, member(ITA), 7), &fra_key, None, now());
    evil.serve(vec![head_at(&as_ita)], vec![as_ita]);
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_rejected(&sync, "ITA seq 1: signature does not verify: publisher ITA");
    let recorded = last_error(&node, FRA).expect("reason recorded for FRA");
    assert!(recorded.contains("signature does not verify"), "{recorded}");
    assert_logged(&["peer=FRA", "publisher=ITA", "rejected", "signature does not verify"]).await;

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
    assert!(node.status().unwrap().forks.is_empty());
    evil.stop().await;

    // The node still syncs with the honest publisher.
    let published = running(&cluster, 2)
        .publish(Cube::Flows, Period::Year(2023), Vec::new())
        .unwrap();
    syncer.pull_from(member(ITA)).await.expect("pull from ITA");
    assert_eq!(
        node.store.head(member(ITA)).unwrap().map(|h| h.digest),
        Some(published.digest)
    );
    drop((node, syncer));
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_relayed_envelope_is_rejected() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    let before = heads(&node);
    // A genuine ITA entry (signed with ITA's key) that only the relaying member holds.
    let genuine = signed(
        &dataset(&node, member(ITA), 42),
        &signing_key(&cluster.pki, member(ITA)),
        None,
        now(),
    );
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    let syncer = Syncer::new(node.clone());

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
    assert_logged(&["peer=FRA", "publisher=ITA", "rejected", "payload digest does not match"]).await;

    // The untampered entry relayed by the same member is accepted: relaying itself is fine.
    evil.serve(vec![head_at(&genuine)], vec![genuine.clone()]);
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_eq!(sync.appended, 1, "{sync:?}");
    assert_eq!(last_error(&node, FRA), None);
    assert_eq!(node.store.entry(member(ITA), 1).unwrap(), Some(genuine));
    evil.stop().await;
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop((node, syncer));
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_old_seq_changes_nothing() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    let ita = running(&cluster, 2);
    ita.publish(Cube::Flows, Period::Year(2023), Vec::new()).unwrap();
    let second = ita.publish(Cube::Flows, Period::Year(2022), Vec::new()).unwrap();
    drop(ita);
    let syncer = Syncer::new(node.clone());
    syncer.pull_from(member(ITA)).await.expect("pull from ITA");
    assert_eq!(node.store.head(member(ITA)).unwrap().map(|h| h.seq), Some(2));
    let old = node.store.entry(member(ITA), 1).unwrap().expect("ITA seq 1 held");
    let before = heads(&node);
    let view_before = node.status().unwrap().view_digest;
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
        let want = PeerSync {
            rejected,
            ..PeerSync::default()
        };
        assert_eq!(sync, want, "replay advertised as {advertised:?}");
        assert_eq!(heads(&node), before, "nothing stored");
        let status = node.status().unwrap();
        assert!(status.forks.is_empty() && status.equivocating.is_empty(), "{status:?}");
        assert_eq!(status.view_digest, view_before);
    }
    assert_eq!(node.store.entry(member(ITA), 1).unwrap(), Some(old));
    assert_logged(&["peer=FRA", "publisher=ITA", "seq=3", "sent ITA seq 1 instead"]).await;
    evil.stop().await;
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop((node, syncer));
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_feed_is_detected_and_other_feeds_are_unaffected() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA, ESP]).await;
    let node = running(&cluster, VICTIM);
    let ita = running(&cluster, 2);
    let esp = running(&cluster, 3);
    let held = ita.publish(Cube::Flows, Period::Year(2023), Vec::new()).unwrap();
    esp.publish(Cube::Flows, Period::Year(2023), Vec::new()).unwrap();
    let syncer = Syncer::new(node.clone());
    syncer.pull_from(member(ITA)).await.expect("pull from ITA");
    syncer.pull_from(member(ESP)).await.expect("pull from ESP");
    assert_eq!(
        node.store.head(member(ITA)).unwrap().map(|h| h.digest),
        Some(held.digest)
    );
    let before = heads(&node);
    let view_before = node.status().unwrap().view_digest;

    // ITA's key signs a second, different seq 1, and FRA relays it.
    let conflicting = signed(
        &dataset(&node, member(ITA), 999),
        &signing_key(&cluster.pki, member(ITA)),
        None,
        now(),
    );
    assert_ne!(digest_of(&conflicting), held.digest);
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    evil.serve(vec![head_at(&conflicting)], vec![conflicting.clone()]);
    let sync = syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_eq!(sync.forks, 1, "{sync:?}");
    assert_eq!(sync.appended, 0, "{sync:?}");
    assert_logged(&["peer=FRA", "publisher=ITA", "publisher equivocates"]).await;

    let status = node.status().unwrap();
    assert_eq!(status.equivocating, vec![ITA.to_string()]);
    assert_eq!(status.forks.len(), 1, "{:?}", status.forks);
    let fork = &status.forks[0];
    assert_eq!((fork.publisher.as_str(), fork.seq), (ITA, 1));
    assert_eq!(fork.held, accord::hex::encode(&held.digest));
    assert_eq!(fork.conflicting, accord::hex::encode(&digest_of(&conflicting)));
    // Not resolved silently: the held entry stays, the view does not move.
    assert_eq!(heads(&node), before);
    assert_eq!(status.view_digest, view_before);
    // A second pull of the same evidence adds no second fork record.
    syncer.pull_from(member(FRA)).await.expect("pull completes");
    assert_eq!(node.status().unwrap().forks.len(), 1);
    evil.stop().await;

    // Other feeds go on: ESP and DEU extend, and ESP's new entry reaches DEU.
    let esp_next = esp.publish(Cube::Flows, Period::Year(2022), Vec::new()).unwrap();
    let sync = syncer.pull_from(member(ESP)).await.expect("pull from ESP");
    assert_eq!(
        node.store.head(member(ESP)).unwrap().map(|h| (h.seq, h.digest)),
        Some((2, esp_next.digest)),
        "{sync:?}"
    );
    let own = node.publish(Cube::Flows, Period::Year(2022), Vec::new()).unwrap();
    assert_eq!(own.seq, 1);
    let status = node.status().unwrap();
    assert_eq!(status.equivocating, vec![ITA.to_string()]);
    assert_serves_honest_peer(&cluster, VICTIM, 3).await;
    drop((node, ita, esp, syncer));
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_from_a_member_are_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let mut cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    let before = heads(&node);
    let genuine = signed(
        &dataset(&node, member(ITA), 5),
        &signing_key(&cluster.pki, member(ITA)),
        None,
        now(),
    );
    let evil = MaliciousMember::replace(&mut cluster, HOSTILE).await;
    let syncer = Syncer::new(node.clone());

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
    cluster.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_to_a_node_is_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    node.publish(Cube::Flows, Period::Year(2023), Vec::new()).unwrap();
    let before = heads(&node);

    // FRA (a member, so past TLS) announces a head whose digest is over the message limit.
    let config = tls::client_config(&member_files(&cluster.pki, member(FRA)), member(DEU)).unwrap();
    let mut client = dial(config, cluster.nodes[VICTIM].addr, member(DEU));
    let oversized = proto::AnnounceRequest {
        heads: vec![proto::Head {
            publisher: FRA.to_string(),
            seq: 1,
            digest: vec![0; MAX_MESSAGE_BYTES + 1],
        }],
    };
    let status = client
        .announce(oversized)
        .await
        .expect_err("an oversized request is refused");
    let error = describe(&status);
    assert!(error.contains(&MAX_MESSAGE_BYTES.to_string()), "{error}");

    assert_eq!(heads(&node), before, "nothing stored");
    call_heads(&mut client)
        .await
        .expect("the same member is served afterwards");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ who answers at an endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_answering_for_another_member_is_refused() {
    capture_logs();
    let dir = TempDir::new().unwrap();
    let cluster = start_cluster(dir.path(), &[DEU, FRA, ITA]).await;
    let node = running(&cluster, VICTIM);
    running(&cluster, 2)
        .publish(Cube::Flows, Period::Year(2023), Vec::new())
        .unwrap();
    let before = heads(&node);

    // DEU expects FRA, but ITA's real node answers at the endpoint (with a name ITA's certificate
    // is valid for, so only the member check can refuse it).
    let mut peer = node
        .config
        .peers
        .iter()
        .find(|p| p.country == member(FRA))
        .unwrap()
        .clone();
    peer.endpoint = format!("https://{}", cluster.nodes[2].addr);
    peer.tls_name = Some("ita.accord".to_string());
    let mut client = sync::client(&node, &peer).expect("client");
    let error = sync::pull(&node, &peer, &mut client)
        .await
        .expect_err("the client refuses a server naming another member")
        .to_string();
    assert!(error.contains("names member ITA, expected FRA"), "{error}");
    let recorded = last_error(&node, FRA).expect("reason recorded for FRA");
    assert!(recorded.contains("names member ITA"), "{recorded}");
    assert_eq!(heads(&node), before, "nothing stored");

    // DEU still syncs with ITA at ITA's own endpoint, and serves ITA.
    let sync = Syncer::new(node.clone())
        .pull_from(member(ITA))
        .await
        .expect("pull from ITA");
    assert!(node.store.head(member(ITA)).unwrap().is_some(), "{sync:?}");
    assert_serves_honest_peer(&cluster, VICTIM, 2).await;
    drop(node);
    cluster.shutdown().await.unwrap();
}
