//! Issue 13: the attacks of the attack suite (`tests/it/attacks.rs`) at full size, against `accord
//! serve` as a child process, measuring what the tests cannot time: a member's health check
//! while 2,000 stranger sockets are held and reopened from 16 loopback addresses; the daemon's
//! threads, `status` latency, another member's entries and SIGTERM while one member holds 50
//! connections of 16 Fetch streams it never reads; RSS and `/metrics` after 500k heads of
//! unknown publishers; store growth after 60 conflicting seq-1 headers with 5 MB payloads.
//! The hostile member is a gRPC server in this process holding that member's real certificate
//! and signing key; the daemon pulls from it when `accord sync` asks.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord::dataset::envelope::sha256;
use accord::dataset::publish::{sign_entry, EntryParams};
use accord::dataset::{Dataset, EntryHeader, Head};
use accord::date::unix_now;
use accord::model::{Country, Cube, Period};
use accord::proto;
use accord::proto::exchange_client::ExchangeClient;
use accord::proto::exchange_server::{Exchange, ExchangeServer};
use accord::tls::{self, TlsFiles};
use ring::signature::Ed25519KeyPair;
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::daemon_view::{fill, rss_mib, site, Daemon};
use super::{flows_cells, line, section, thousands, verdict, Fixture};

const BIN: &str = env!("CARGO_BIN_EXE_accord");
const STRANGERS: usize = 2_000;
const SOURCES: usize = 16;
const STRANGER_SECONDS: u64 = 30;
const FORK_ROUNDS: u64 = 60;
/// Cells of one conflicting entry: about 5 MB encoded.
const FORK_CELLS: usize = 170_000;
const UNKNOWN_ROUNDS: usize = 50;
const UNKNOWN_PER_ROUND: usize = 10_000;

pub fn run(fx: &mut Fixture) {
    section("attacks at full size (issue 13), against `accord serve`");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    strangers(fx, &runtime);
    unread_fetch_streams(fx, &runtime);
    unknown_publishers(fx, &runtime);
    forks(fx, &runtime);
}

/// Members of every scenario: the node, the hostile member, an honest member, two publishers.
fn members() -> Vec<Country> {
    Country::all_iso().take(5).collect()
}

struct Site {
    dir: PathBuf,
    config: PathBuf,
    port: u16,
    metrics: u16,
    members: Vec<Country>,
}

impl Site {
    /// `site()` plus a peer (`peer`, served by this process on `peer_port`), metrics on a free
    /// port and no timed sync (each round is `accord sync`).
    fn new(fx: &Fixture, name: &str, peer: Country, peer_port: u16) -> Site {
        let dir = fx.dir.path().join(name);
        let members = members();
        let (config, port) = site(&dir, &members);
        let metrics = free_port();
        let text = std::fs::read_to_string(&config).expect("node.toml");
        let text = format!(
            "metrics_listen = \"127.0.0.1:{metrics}\"\n{text}\n[sync]\ninterval_secs = 86400\n\n\
             [[peers]]\ncountry = \"{peer}\"\nendpoint = \"https://127.0.0.1:{peer_port}\"\ntls_name = \"{}.accord\"\n",
            peer.lower()
        );
        std::fs::write(&config, text).expect("node.toml");
        Site {
            dir,
            config,
            port,
            metrics,
            members,
        }
    }

    fn files(&self, member: Country) -> TlsFiles {
        let lower = member.lower();
        TlsFiles {
            ca: self.dir.join("pki/ca.pem"),
            cert: self.dir.join(format!("pki/{lower}.pem")),
            key: self.dir.join(format!("pki/{lower}.key")),
            crls: Vec::new(),
        }
    }

    fn signing_key(&self, member: Country) -> Ed25519KeyPair {
        let pkcs8 = std::fs::read(self.dir.join(format!("pki/{}.sign.pk8", member.lower()))).expect("signing key");
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).expect("Ed25519 key")
    }

    /// A client of the node as `member`, on a connection of its own (opened at the first call).
    fn client(&self, member: Country) -> ExchangeClient<tonic::transport::Channel> {
        let me = self.members[0];
        let config = tls::client_config(&self.files(member), me).expect("client config");
        let name = format!("{}.accord", me.lower());
        let channel =
            tls::channel(&format!("https://127.0.0.1:{}", self.port), Some(&name), config, me).expect("channel");
        ExchangeClient::new(channel).max_decoding_message_size(accord::exchange::MAX_MESSAGE_BYTES)
    }

    /// Runs an `accord` command against the daemon; its stdout, or a panic with its stderr.
    fn accord(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("run accord");
        assert!(
            out.status.success(),
            "accord {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.accord(&["status", "--format", "json"])).expect("status JSON")
    }

    /// `GET /metrics` over plain HTTP/1.1; the body.
    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.metrics)).expect("metrics port");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("response");
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn threads(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .map(|v| v.trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            dir_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------------ strangers

fn strangers(fx: &Fixture, runtime: &tokio::runtime::Runtime) {
    let site = Site::new(fx, "strangers", members()[1], free_port());
    fill(&site.config, &site.dir, &site.members, fx.year);
    let mut daemon = Daemon::start(&site.dir, &site.config);
    let pid = daemon.pid();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], site.port).into();
    let honest = site.members[2];
    let publisher = site.members[3];

    let (checks, pulls, reopened, peak_threads) = runtime.block_on(async {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reopened = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Each stranger holds its socket until the node drops it, then opens another at once.
        let mut holders = Vec::new();
        for i in 0..STRANGERS {
            let source = std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % SOURCES) as u8);
            let (stop, reopened) = (stop.clone(), reopened.clone());
            holders.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                    socket.bind((source, 0).into()).expect("bind a loopback source address");
                    match socket.connect(addr).await {
                        Ok(mut stream) => {
                            let mut buf = [0u8; 64];
                            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
                            reopened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let config = tls::client_config(&site.files(honest), site.members[0]).expect("client config");
        let name = format!("{}.accord", site.members[0].lower());
        let endpoint = format!("https://127.0.0.1:{}", site.port);
        let (mut checks, mut pulls, mut peak_threads) = (Vec::new(), Vec::new(), 0);
        let deadline = Instant::now() + Duration::from_secs(STRANGER_SECONDS);
        let mut n = 0;
        while Instant::now() < deadline {
            n += 1;
            peak_threads = peak_threads.max(threads(pid));
            // A health check on a new connection each time: it needs a handshake slot.
            let channel = tls::channel(&endpoint, Some(&name), config.clone(), site.members[0]).expect("channel");
            let started = Instant::now();
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
                .await;
            checks.push((started.elapsed(), answer.is_ok()));
            if n % 10 == 0 {
                // A pull as a member's sync does it: Heads, then Fetch of one feed to its head.
                let started = Instant::now();
                let mut client =
                    ExchangeClient::new(channel).max_decoding_message_size(accord::exchange::MAX_MESSAGE_BYTES);
                let mut fetched = 0;
                if client.heads(proto::HeadsRequest::default()).await.is_ok() {
                    let request = proto::FetchRequest {
                        publisher: publisher.to_string(),
                        from_seq: 1,
                        to_seq: 12,
                        ..Default::default()
                    };
                    if let Ok(stream) = client.fetch(request).await {
                        let mut stream = stream.into_inner();
                        while let Ok(Some(_)) = stream.message().await {
                            fetched += 1;
                        }
                    }
                }
                pulls.push((started.elapsed(), fetched == 12));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in holders {
            h.abort();
        }
        (
            checks,
            pulls,
            reopened.load(std::sync::atomic::Ordering::Relaxed),
            peak_threads,
        )
    });
    daemon.stop();

    let answered = checks.iter().filter(|c| c.1).count();
    let mut times: Vec<Duration> = checks.iter().map(|c| c.0).collect();
    times.sort();
    let max_ms = times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let pulled = pulls.iter().filter(|p| p.1).count();
    let pull_max = pulls.iter().map(|p| p.0.as_secs_f64()).fold(0.0, f64::max);
    line(
        &format!("{STRANGERS} stranger sockets from {SOURCES} addresses, {STRANGER_SECONDS} s"),
        format!(
            "{} connections dropped by the node and reopened",
            thousands(reopened as f64)
        ),
    );
    line(
        "health checks on a new connection each",
        format!(
            "{answered} of {} answered; p50 {:.1} ms, p99 {:.1} ms, max {max_ms:.1} ms",
            checks.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        ),
    );
    line(
        "pulls (Heads + Fetch of 12 entries)",
        format!("{pulled} of {} complete; slowest {pull_max:.2} s", pulls.len()),
    );
    line("daemon threads (peak)", peak_threads);
    line(
        "target: every check within 1 s, every pull completes",
        verdict(answered == checks.len() && max_ms < 1000.0 && pulled == pulls.len()),
    );
}

// ------------------------------------------------------------------------ a hostile peer

#[derive(Default)]
struct Script {
    heads: Vec<proto::Head>,
    entries: Vec<proto::Entry>,
}

struct Hostile(Arc<Mutex<Script>>);

type EntryStream = Pin<Box<dyn Stream<Item = Result<proto::Entry, Status>> + Send>>;

#[tonic::async_trait]
impl Exchange for Hostile {
    async fn attestations(
        &self,
        _: Request<proto::AttestationsRequest>,
    ) -> Result<Response<proto::AttestationsResponse>, Status> {
        Ok(Response::new(proto::AttestationsResponse::default()))
    }

    async fn heads(&self, _: Request<proto::HeadsRequest>) -> Result<Response<proto::HeadsResponse>, Status> {
        let heads = self.0.lock().unwrap().heads.clone();
        Ok(Response::new(proto::HeadsResponse {
            heads,
            ..Default::default()
        }))
    }

    type FetchStream = EntryStream;

    async fn fetch(&self, _: Request<proto::FetchRequest>) -> Result<Response<EntryStream>, Status> {
        let entries = self.0.lock().unwrap().entries.clone();
        Ok(Response::new(Box::pin(tokio_stream::iter(entries.into_iter().map(Ok)))))
    }

    async fn announce(&self, _: Request<proto::AnnounceRequest>) -> Result<Response<proto::AnnounceResponse>, Status> {
        Ok(Response::new(proto::AnnounceResponse {}))
    }
}

/// Serves `Hostile` as `member` (its real certificate) on `port`, on `runtime`.
fn serve_hostile(runtime: &tokio::runtime::Runtime, site: &Site, member: Country, port: u16) -> Arc<Mutex<Script>> {
    let script = Arc::new(Mutex::new(Script::default()));
    let config = tls::server_config(&site.files(member)).expect("server config");
    let service = ExchangeServer::new(Hostile(script.clone()))
        .max_encoding_message_size(accord::exchange::MAX_MESSAGE_BYTES)
        .max_decoding_message_size(accord::exchange::MAX_MESSAGE_BYTES);
    runtime.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the hostile port");
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tls::incoming(listener, config)),
        );
    });
    script
}

fn sign(site: &Site, dataset: &Dataset, head: Option<Head>) -> proto::Entry {
    sign_entry(
        dataset,
        EntryParams {
            head,
            created_at: unix_now(),
            audience: Vec::new(),
            key: &site.signing_key(dataset.publisher),
        },
    )
}

fn dataset_of(site: &Site, publisher: Country, period: Period, cells: Vec<accord::model::Cell>) -> Dataset {
    let consortium = accord::consortium::Consortium::load(&site.dir.join("pki/consortium.toml")).expect("consortium");
    let own = publisher.to_string();
    Dataset {
        publisher,
        cube: Cube::Flows,
        period,
        definition: consortium.definition,
        disclosure: consortium.disclosure,
        cells: cells.into_iter().filter(|c| c.key[1] != own).collect(),
        unreported: Default::default(),
    }
}

fn head_of(entry: &proto::Entry) -> proto::Head {
    let envelope = entry.envelope.as_ref().expect("envelope");
    let header = EntryHeader::decode(&envelope.payload).expect("header");
    proto::Head {
        publisher: header.publisher.to_string(),
        seq: header.seq,
        digest: sha256(&envelope.payload).to_vec(),
    }
}

// ------------------------------------------------------------------------ unread Fetch streams

fn unread_fetch_streams(fx: &Fixture, runtime: &tokio::runtime::Runtime) {
    let all = members();
    let (attacker, publisher, newcomer) = (all[1], all[3], all[4]);
    let peer_port = free_port();
    let site = Site::new(fx, "unread", newcomer, peer_port);
    // Every member but the newcomer has 12 entries of about 0.18 MB at the node.
    fill(&site.config, &site.dir, &site.members[..4], fx.year);
    let script = serve_hostile(runtime, &site, newcomer, peer_port);
    let mut daemon = Daemon::start(&site.dir, &site.config);
    let pid = daemon.pid();
    let before = threads(pid);

    let (held, refused) = runtime.block_on(async {
        let mut held = Vec::new();
        let mut refused = 0;
        for _ in 0..50 {
            let client = site.client(attacker);
            for _ in 0..16 {
                let mut c = client.clone();
                let request = proto::FetchRequest {
                    publisher: publisher.to_string(),
                    from_seq: 1,
                    to_seq: 12,
                    ..Default::default()
                };
                match c.fetch(request).await {
                    Ok(stream) => held.push((c, stream)),
                    Err(_) => refused += 1,
                }
            }
        }
        (held, refused)
    });
    let mut peak = threads(pid);
    let mut status_ms = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        site.status();
        status_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        peak = peak.max(threads(pid));
    }
    // The newcomer's entries arrive while the streams are held: one per sync round.
    let mut head = None;
    let mut arrived = 0;
    for month in 1..=3u8 {
        let entry = sign(
            &site,
            &dataset_of(
                &site,
                newcomer,
                Period::Month(fx.year, month),
                flows_cells(2_000, month.into()),
            ),
            head,
        );
        let h = head_of(&entry);
        head = Some(Head {
            seq: h.seq,
            digest: h.digest.clone().try_into().expect("32 bytes"),
        });
        *script.lock().unwrap() = Script {
            heads: vec![h],
            entries: vec![entry],
        };
        let out = site.accord(&["sync"]);
        if out.contains(&format!("{newcomer}: 1 new entries")) {
            arrived += 1;
        }
        peak = peak.max(threads(pid));
    }
    let started = Instant::now();
    daemon.stop();
    let stop_secs = started.elapsed().as_secs_f64();
    drop(held);

    let status_max = status_ms.iter().cloned().fold(0.0, f64::max);
    line(
        "50 connections x 16 Fetch streams never read",
        format!("{} streams refused or closed", thousands(refused as f64)),
    );
    line(
        "daemon threads",
        format!("{before} before, {peak} at most while the streams are held"),
    );
    line("`accord status` meanwhile", format!("slowest of 5: {status_max:.0} ms"));
    line("another member's entries meanwhile", format!("{arrived} of 3 arrived"));
    line("SIGTERM to exit, streams still held", format!("{stop_secs:.2} s"));
    line(
        "target: threads < 64, status < 1 s, entries arrive, stop < 5 s",
        verdict(peak < 64 && status_max < 1000.0 && arrived == 3 && stop_secs < 5.0),
    );
}

// ------------------------------------------------------------------------ unknown publishers

fn unknown_publishers(fx: &Fixture, runtime: &tokio::runtime::Runtime) {
    let hostile = members()[1];
    let peer_port = free_port();
    let site = Site::new(fx, "unknown", hostile, peer_port);
    fill(&site.config, &site.dir, &site.members[..2], fx.year);
    let script = serve_hostile(runtime, &site, hostile, peer_port);
    let mut daemon = Daemon::start(&site.dir, &site.config);
    let pid = daemon.pid();
    // One round with nothing to say, so the daemon's connection and buffers exist before.
    site.accord(&["sync"]);
    let before = rss_mib(pid);
    let mut peak = before;
    for round in 0..UNKNOWN_ROUNDS {
        let heads = (0..UNKNOWN_PER_ROUND)
            .map(|i| proto::Head {
                publisher: format!("Z{:07}", round * UNKNOWN_PER_ROUND + i),
                seq: 1,
                digest: vec![7; 32],
            })
            .collect();
        script.lock().unwrap().heads = heads;
        site.accord(&["sync"]);
        peak = peak.max(rss_mib(pid));
    }
    let metrics = site.metrics();
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("accord_datasets_rejected_total{reason=\"unknown_publisher\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    let after = rss_mib(pid);
    daemon.stop();
    let total = UNKNOWN_ROUNDS * UNKNOWN_PER_ROUND;
    line(
        &format!(
            "{} unknown-publisher heads in {UNKNOWN_ROUNDS} answers",
            thousands(total as f64)
        ),
        format!("{} counted in /metrics", thousands(counted)),
    );
    line(
        "daemon RSS",
        format!(
            "{before:.0} MB before, {peak:.0} MB peak, {after:.0} MB after (growth {:.1} MB)",
            peak - before
        ),
    );
    line("/metrics size", format!("{} bytes", thousands(metrics.len() as f64)));
    line(
        "target: growth < 50 MB, /metrics < 100 KB",
        verdict(peak - before < 50.0 && metrics.len() < 100_000 && counted as usize == total),
    );
}

// ------------------------------------------------------------------------ forks

fn forks(fx: &Fixture, runtime: &tokio::runtime::Runtime) {
    let all = members();
    let (hostile, publisher) = (all[1], all[3]);
    let peer_port = free_port();
    let site = Site::new(fx, "forks", hostile, peer_port);
    // The node holds the publisher's seq 1 and nothing else.
    let held = sign(
        &site,
        &dataset_of(&site, publisher, Period::Month(fx.year, 1), flows_cells(6_000, 1)),
        None,
    );
    {
        let config = accord::config::NodeConfig::load(&site.config).expect("node.toml");
        let node = accord::node::Node::open(config).expect("open node");
        node.accept(held).expect("seq 1 accepted");
        node.flush().expect("flush");
    }
    let script = serve_hostile(runtime, &site, hostile, peer_port);
    let mut daemon = Daemon::start(&site.dir, &site.config);
    let data = site.dir.join("data");
    let before = dir_bytes(&data);
    let cells = flows_cells(FORK_CELLS, 99);
    let (mut sent, mut detected) = (0usize, 0);
    for round in 0..FORK_ROUNDS {
        let mut cells = cells.clone();
        cells[0].value = accord::model::CellValue::Value(1_000 + round);
        let conflicting = sign(
            &site,
            &dataset_of(&site, publisher, Period::Month(fx.year, 1), cells),
            None,
        );
        sent += conflicting.payload.len();
        *script.lock().unwrap() = Script {
            heads: vec![head_of(&conflicting)],
            entries: vec![conflicting],
        };
        if site.accord(&["sync"]).contains("1 FORKS detected") {
            detected += 1;
        }
    }
    let status = site.status();
    daemon.stop();
    let after = dir_bytes(&data);
    let growth = after.saturating_sub(before) as f64 / 1e6;
    let shown = status["forks"].as_array().map_or(0, Vec::len);
    line(
        &format!("{FORK_ROUNDS} conflicting seq-1 headers"),
        format!(
            "{:.1} MB each, {:.0} MB in all; {detected} reported as forks",
            sent as f64 / FORK_ROUNDS as f64 / 1e6,
            sent as f64 / 1e6
        ),
    );
    line(
        "store on disk",
        format!(
            "{:.1} MB before, {:.1} MB after: growth {growth:.1} MB",
            before as f64 / 1e6,
            after as f64 / 1e6
        ),
    );
    line("forks shown by status", shown);
    line(
        "target: growth < 20 MB, the fork still shown",
        verdict(growth < 20.0 && shown == 1 && detected == FORK_ROUNDS as usize),
    );
}
