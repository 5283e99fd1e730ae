//! What the hostile-peer tests share: a cluster with a victim and a member that turns hostile,
//! clients that misbehave at the TLS layer, entries signed by hand, and a malicious member's
//! `Exchange` server that serves whatever a test scripts.

use super::SettledStatus;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use accord::cluster::{full_mesh, LocalCluster};
use accord::dataset::envelope::sha256;
use accord::dataset::publish::{sign_entry, EntryParams};
use accord::dataset::{Dataset, EntryHeader, Head};
use accord::exchange::sync::{self, PeerSync};
use accord::model::Country;
use accord::model::{Cell, CellValue, Cube, Period};
use accord::node::Node;
use accord::proto;
use accord::proto::exchange_client::ExchangeClient;
use accord::proto::exchange_server::{Exchange, ExchangeServer};
use accord::tls::{self, TlsFiles};
use ring::signature::Ed25519KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::cluster::{start_cluster, TestCluster};
use super::eventually;

// ------------------------------------------------------------------ members and clusters

pub const DEU: &str = "DEU";
pub const FRA: &str = "FRA";
pub const ITA: &str = "ITA";
pub const ESP: &str = "ESP";

pub fn member(code: &str) -> Country {
    Country::parse(code).expect("a member code")
}

/// Node 0 is the node under attack and node 1 the member that turns hostile.
pub const VICTIM: usize = 0;
pub const HOSTILE: usize = 1;

/// Every node peers with every other, except that the hostile member does not list the victim:
/// so it never announces to the victim, and the victim's daemon pulls from it only once, at
/// start. Every later pull from it is the test's own, whose outcome is then the test's to read.
pub fn mesh_without_hostile_announces(i: usize, j: usize, n: usize) -> bool {
    full_mesh(i, j, n) && !(i == HOSTILE && j == VICTIM)
}

/// Real nodes of `codes`, node 0 the victim and node 1 the member that turns hostile, peered
/// by [`mesh_without_hostile_announces`]; the long sync interval keeps the daemons' own sync
/// loops from pulling during a test (they pull once at start and when a peer announces).
/// Returns once the victim's daemon has finished its first pull from every peer.
pub async fn start_hostile_cluster(codes: &[&str]) -> TestCluster {
    let cluster = start_cluster(codes, mesh_without_hostile_announces, 3600).await;
    let victim = cluster.running(VICTIM);
    eventually("the victim's first pull from every peer", || {
        let status = victim.settled_status().map_err(|e| e.to_string())?;
        match status.peers.iter().find(|p| p.last_attempt.is_none()) {
            Some(p) => Err(format!("no attempt yet with {}", p.country)),
            None => Ok(()),
        }
    })
    .await;
    cluster
}

pub fn heads(node: &Node) -> Vec<(Country, Head)> {
    node.heads().expect("heads readable")
}

/// The TLS files `accord certs` issued to `code` in the cluster's PKI.
pub fn member_files(pki: &Path, code: Country) -> TlsFiles {
    TlsFiles {
        ca: pki.join("ca.pem"),
        cert: pki.join(format!("{}.pem", code.lower())),
        key: pki.join(format!("{}.key", code.lower())),
        crls: Vec::new(),
    }
}

// ------------------------------------------------------------------ clients

/// A status with its hidden transport causes (rustls puts the real reason in the source chain).
pub fn describe(status: &Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// An Exchange client over `config` to the member `server` listening on `addr`.
pub fn dial(config: Arc<ClientConfig>, addr: SocketAddr, server: Country) -> ExchangeClient<Channel> {
    let name = format!("{}.accord", server.lower());
    let channel = tls::channel(&format!("https://{addr}"), Some(&name), config, server).expect("channel");
    ExchangeClient::new(channel)
}

pub async fn call_heads(client: &mut ExchangeClient<Channel>) -> Result<Vec<proto::Head>, String> {
    client
        .heads(proto::HeadsRequest::default())
        .await
        .map(|r| r.into_inner().heads)
        .map_err(|s| describe(&s))
}

/// A client that trusts the consortium CA but presents no certificate at all.
pub fn client_without_certificate(pki: &Path) -> Arc<ClientConfig> {
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
pub async fn assert_serves_honest_peer(cluster: &TestCluster, target: usize, honest: usize) {
    let honest_node = cluster.running(honest);
    let target_country = cluster.nodes[target].country;
    let peer = honest_node
        .config()
        .peers
        .iter()
        .find(|p| p.country == target_country)
        .expect("honest node peers with the target")
        .clone();
    let mut client = sync::client(&honest_node.config().tls, &peer).expect("honest client");
    let served = call_heads(&mut client)
        .await
        .expect("the node still serves an honest member");
    let served: Vec<(String, u64, Vec<u8>)> = served.into_iter().map(|h| (h.publisher, h.seq, h.digest)).collect();
    let held: Vec<(String, u64, Vec<u8>)> = heads(cluster.running(target))
        .into_iter()
        .map(|(p, h)| (p.to_string(), h.seq, h.digest.to_vec()))
        .collect();
    assert_eq!(served, held, "heads served to the honest member");
}

pub fn last_error(node: &Node, peer: &str) -> Option<String> {
    let status = node.settled_status().expect("status");
    status
        .peers
        .into_iter()
        .find(|p| p.country == peer)
        .expect("peer listed in status")
        .last_error
}

// ------------------------------------------------------------------ entries signed by hand

pub fn signing_key(pki: &Path, code: Country) -> Ed25519KeyPair {
    let bytes = std::fs::read(pki.join(format!("{}.sign.pk8", code.lower()))).expect("signing key readable");
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&bytes).expect("Ed25519 key")
}

/// A one-cell flows dataset of `publisher` under the consortium's definition and disclosure.
pub fn dataset(node: &Node, publisher: Country, value: u64) -> Dataset {
    let consortium = node.consortium();
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
        unreported: Default::default(),
    }
}

/// A genuine seq-1 entry of `publisher` (signed with its real key, created now) holding one
/// flows cell of `value`.
pub fn first_entry(cluster: &LocalCluster, node: &Node, publisher: Country, value: u64) -> proto::Entry {
    signed(
        &dataset(node, publisher, value),
        &signing_key(&cluster.pki, publisher),
        None,
        now(),
    )
}

/// `dataset` signed with `key` as the entry after `head` (seq 1 when `None`).
pub fn signed(dataset: &Dataset, key: &Ed25519KeyPair, head: Option<Head>, created_at: i64) -> proto::Entry {
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

pub fn header_of(entry: &proto::Entry) -> EntryHeader {
    EntryHeader::decode(&entry.envelope.as_ref().expect("envelope").payload).expect("header decodes")
}

pub fn digest_of(entry: &proto::Entry) -> [u8; 32] {
    sha256(&entry.envelope.as_ref().expect("envelope").payload)
}

/// The head a server advertises for a feed ending at `entry`.
pub fn head_at(entry: &proto::Entry) -> proto::Head {
    let header = header_of(entry);
    proto::Head {
        publisher: header.publisher.to_string(),
        seq: header.seq,
        digest: digest_of(entry).to_vec(),
    }
}

/// A time inside the keys' validity window (certs are valid from today).
pub fn now() -> i64 {
    accord::date::unix_now()
}

// ------------------------------------------------------------------ a malicious member's server

/// What the malicious server says: its heads, and the entries it streams for any Fetch
/// (whatever range was asked for).
#[derive(Default)]
pub struct Script {
    heads: Vec<proto::Head>,
    entries: Vec<proto::Entry>,
    /// Heads never answers: every pull from this member hangs.
    stalled: bool,
    /// Attestations never answers (Heads does): a pull hangs while it reads this member's notes.
    notes_stalled: bool,
    /// Attestations has been asked for.
    notes_asked: bool,
}

pub struct MaliciousExchange {
    script: Arc<Mutex<Script>>,
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<proto::Entry, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for MaliciousExchange {
    async fn attestations(
        &self,
        _: Request<proto::AttestationsRequest>,
    ) -> Result<Response<proto::AttestationsResponse>, Status> {
        let stalled = {
            let mut script = self.script.lock().unwrap_or_else(|p| p.into_inner());
            script.notes_asked = true;
            script.notes_stalled
        };
        if stalled {
            std::future::pending::<()>().await;
        }
        Ok(Response::new(proto::AttestationsResponse::default()))
    }

    async fn heads(&self, _: Request<proto::HeadsRequest>) -> Result<Response<proto::HeadsResponse>, Status> {
        let (heads, stalled) = {
            let script = self.script.lock().unwrap_or_else(|p| p.into_inner());
            (script.heads.clone(), script.stalled)
        };
        if stalled {
            std::future::pending::<()>().await;
        }
        Ok(Response::new(proto::HeadsResponse {
            heads,
            ..Default::default()
        }))
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
pub struct MaliciousMember {
    script: Arc<Mutex<Script>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl MaliciousMember {
    /// Stops cluster node `x` and serves our own Exchange on its address with its certificate.
    pub async fn replace(cluster: &mut LocalCluster, x: usize) -> MaliciousMember {
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

    pub fn serve(&self, heads: Vec<proto::Head>, entries: Vec<proto::Entry>) {
        *self.script.lock().unwrap_or_else(|p| p.into_inner()) = Script {
            heads,
            entries,
            ..Script::default()
        };
    }

    /// From now on, answer Heads but never Attestations.
    pub fn stall_notes(&self) {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).notes_stalled = true;
    }

    /// Whether a pull has asked for this member's attestations.
    pub fn notes_asked(&self) -> bool {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).notes_asked
    }

    /// From now on, never answer Heads.
    pub fn stall(&self) {
        self.script.lock().unwrap_or_else(|p| p.into_inner()).stalled = true;
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server ran");
    }
}

/// Asserts a pull refused the attack: nothing appended, no fork, a reason containing `reason`.
pub fn assert_rejected(sync: &PeerSync, reason: &str) {
    assert_eq!(sync.appended, 0, "{sync:?}");
    assert_eq!(sync.forks, 0, "{sync:?}");
    assert!(
        sync.rejected.iter().any(|r| r.detail.contains(reason)),
        "expected a rejection naming {reason:?}: {sync:?}"
    );
}
