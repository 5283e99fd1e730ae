//! Issue 13: load from members. One node (`accord serve`, a child process) holds 5 members x 12
//! monthly `flows` datasets of 6,000 cells (60 entries, about 0.18 MB each); four other members'
//! clients, over mutual TLS, call it as fast as they can for 60 s: three Heads for every Fetch of
//! one member's 12 entries (about 2 MB), each Fetch read to the end. Reports throughput, p50/p99
//! latency per call and the daemon's resident memory, sampled every 100 ms.

use std::time::{Duration, Instant};

use accord::exchange::MAX_MESSAGE_BYTES;
use accord::model::Country;
use accord::proto;
use accord::proto::exchange_client::ExchangeClient;
use accord::tls::{self, TlsFiles};

use super::daemon_view::{fill, rss_mib, site, Daemon};
use super::{line, section, thousands, verdict, Fixture};

const SECONDS: u64 = 60;
/// Members in the consortium: the node and the four calling it.
const MEMBERS: usize = 5;
/// The node's resident memory must stay under this while it serves.
const MEMORY_BUDGET_MB: f64 = 300.0;

pub fn run(fx: &mut Fixture) {
    section("load (issue 13): 4 members' clients, Heads and Fetch mixed, 60 s");
    let dir = fx.dir.path().join("load");
    let members: Vec<Country> = Country::all_iso().take(MEMBERS).collect();
    let (config_path, port) = site(&dir, &members);
    fill(&config_path, &dir, &members, fx.year);
    let mut daemon = Daemon::start(&dir, &config_path);
    let pid = daemon.pid();
    let started = rss_mib(pid);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let me = members[0];
    let (heads, fetches, bytes, peak) = runtime.block_on(async {
        let sampler = tokio::spawn(async move {
            let mut peak = 0.0f64;
            while Instant::now() < deadline {
                peak = peak.max(rss_mib(pid));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        });
        let mut callers = Vec::new();
        for (i, caller) in members[1..].iter().enumerate() {
            let files = TlsFiles {
                ca: dir.join("pki/ca.pem"),
                cert: dir.join(format!("pki/{}.pem", caller.lower())),
                key: dir.join(format!("pki/{}.key", caller.lower())),
                crls: Vec::new(),
            };
            let config = tls::client_config(&files, me).expect("client config");
            let name = format!("{}.accord", me.lower());
            let channel = tls::channel(&format!("https://127.0.0.1:{port}"), Some(&name), config, me).expect("channel");
            let mut client = ExchangeClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
            let publishers = members.clone();
            callers.push(tokio::spawn(async move {
                let (mut heads, mut fetches, mut bytes) = (Vec::new(), Vec::new(), 0u64);
                let mut n = i;
                while Instant::now() < deadline {
                    n += 1;
                    let started = Instant::now();
                    if n % 4 == 0 {
                        let request = proto::FetchRequest {
                            publisher: publishers[n / 4 % publishers.len()].to_string(),
                            from_seq: 1,
                            to_seq: 12,
                            ..Default::default()
                        };
                        let mut stream = client.fetch(request).await.expect("fetch").into_inner();
                        while let Some(entry) = stream.message().await.expect("entry") {
                            bytes += (entry.payload.len() + 200) as u64;
                        }
                        fetches.push(started.elapsed());
                    } else {
                        client.heads(proto::HeadsRequest::default()).await.expect("heads");
                        heads.push(started.elapsed());
                    }
                }
                (heads, fetches, bytes)
            }));
        }
        let (mut heads, mut fetches, mut bytes) = (Vec::new(), Vec::new(), 0u64);
        for caller in callers {
            let (h, f, b) = caller.await.expect("caller");
            heads.extend(h);
            fetches.extend(f);
            bytes += b;
        }
        (heads, fetches, bytes, sampler.await.expect("sampler"))
    });
    let (heads_n, fetch_n) = (heads.len(), fetches.len());
    line(
        "calls in 60 s",
        format!(
            "{} Heads + {} Fetch = {:.0} calls/s; {:.0} MB/s of entries",
            thousands(heads_n as f64),
            thousands(fetch_n as f64),
            (heads_n + fetch_n) as f64 / SECONDS as f64,
            bytes as f64 / 1e6 / SECONDS as f64
        ),
    );
    line("Heads latency p50 / p99", percentiles(heads));
    line("Fetch (12 entries, ~2 MB) latency p50 / p99", percentiles(fetches));
    let mb = |mib: f64| mib * 1.048_576;
    line(
        "daemon RSS started / peak under load",
        format!("{:.0} / {:.0} MB", mb(started), mb(peak)),
    );
    line(
        &format!("TARGET daemon RSS under load < {MEMORY_BUDGET_MB:.0} MB"),
        verdict(mb(peak) < MEMORY_BUDGET_MB),
    );
    daemon.stop();
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no samples".into();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!("{:.2} / {:.2} ms", at(0.5), at(0.99))
}
