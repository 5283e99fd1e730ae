//! Issue 30: SDMX REST on a 27-member view. One node holds 27 members' 12 monthly `flows`
//! datasets (1,000 cells each, signed with each member's key); `accord serve` runs as a child
//! process with `dashboard_listen`. Measured: a one-pair query (every measure, every month of
//! one origin and destination) answered 200 times after a warm-up, its median and p99 (target:
//! p99 under 50 ms); the whole view as SDMX-CSV and as StructureSpecificData, streamed, with
//! the daemon's resident memory sampled while it answers (target: bounded, not growing with
//! the answer); the same one-pair query `asOf` a moment after the last entry (a view computed
//! afresh from the store); and what the store spends on acceptance times.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use accord::config::NodeConfig;
use accord::model::Country;
use accord::node::Node;

use super::daemon_view::{rss_mib, Daemon};
use super::{line, section, thousands, verdict, Fixture};

const MEMBERS: usize = 27;
const CELLS: usize = 1_000;
const QUERIES: usize = 200;

pub fn run(fx: &mut Fixture) {
    section("SDMX REST (issue 30): 27 members, 12 monthly flows datasets each");
    let dir = fx.dir.path().join("sdmx");
    let members: Vec<Country> = Country::all_iso().take(MEMBERS).collect();
    let (config_path, port) = super::dashboard::dashboard_site(&dir, &members, "sdmx_max_observations = 5000000\n");
    let ((rows, entries), fill_secs) = super::timed(|| {
        super::daemon_view::fill_cells(&config_path, &dir, &members, fx.year, CELLS);
        let node = Node::open(NodeConfig::load(&config_path).expect("node.toml")).expect("open node");
        let entries = node.heads().expect("heads").iter().map(|(_, h)| h.seq).sum::<u64>();
        (node.view().expect("view").rows.len(), entries)
    });
    line(
        "store",
        format!(
            "{entries} entries of {} cells in {fill_secs:.1} s: a view of {} rows",
            thousands(CELLS as f64),
            thousands(rows as f64)
        ),
    );
    let after_fill = accord::date::format_instant_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64,
    );
    let mut daemon = Daemon::start(&dir, &config_path);
    let (a, b) = (members[0], members[1]);
    let pair = format!("/sdmx/2.1/data/MIG_FLOWS_MIRROR/M.{a}.{b}....");
    // The first query after start computes the view; the rest read the view the node keeps.
    let (first, first_ms) = timed_get(port, &pair);
    line(
        "one pair, first query after start (computes the view)",
        format!("{first_ms:.0} ms, {} observations", first.matches("<Obs ").count()),
    );
    let mut times: Vec<f64> = (0..QUERIES).map(|_| timed_get(port, &pair).1).collect();
    times.sort_by(f64::total_cmp);
    let (median, p99) = (times[QUERIES / 2], times[QUERIES * 99 / 100]);
    line(
        &format!("one pair ({a} to {b}, all measures, 12 months), {QUERIES} queries"),
        format!(
            "median {median:.1} ms, p99 {p99:.1} ms (target p99 < 50 ms: {})",
            verdict(p99 < 50.0)
        ),
    );
    for (what, path) in [
        (
            "whole view, SDMX-CSV",
            "/sdmx/2.1/data/MIG_FLOWS_MIRROR/all?format=csvdata",
        ),
        (
            "whole view, StructureSpecificData",
            "/sdmx/2.1/data/MIG_FLOWS_MIRROR/all",
        ),
    ] {
        let before = rss_mib(daemon.pid());
        let (bytes, peak, secs) = streamed(port, path, daemon.pid());
        line(
            what,
            format!(
                "{:.0} MB in {secs:.1} s; daemon RSS {before:.0} MiB before, peak {peak:.0} MiB (+{:.0} MiB while answering)",
                bytes as f64 / 1e6,
                peak - before
            ),
        );
    }
    let as_of = format!("{pair}?asOf={after_fill}");
    let mut as_of_times: Vec<f64> = (0..5).map(|_| timed_get(port, &as_of).1).collect();
    as_of_times.sort_by(f64::total_cmp);
    line(
        "one pair asOf a past moment (the view as of then, computed from the store)",
        format!("median {:.0} ms over 5 queries", as_of_times[2]),
    );
    line(
        "acceptance times kept for vintages",
        format!(
            "{entries} entries x 21 bytes (13-byte key, 8-byte time) = {:.1} KB",
            entries as f64 * 21.0 / 1e3
        ),
    );
    daemon.stop();
}

/// `GET path`: the body and the milliseconds until it was read whole.
fn timed_get(port: u16, path: &str) -> (String, f64) {
    let started = Instant::now();
    let body = super::dashboard::get(port, path);
    (body, started.elapsed().as_secs_f64() * 1e3)
}

/// Reads `path` to its end while sampling the daemon's RSS every 10 ms: bytes, peak MiB, seconds.
fn streamed(port: u16, path: &str, pid: u32) -> (u64, f64, f64) {
    let started = Instant::now();
    let path = path.to_string();
    let reader = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("request");
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
        }
        total
    });
    let mut peak = rss_mib(pid);
    while !reader.is_finished() {
        peak = peak.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let bytes = reader.join().expect("reader");
    (bytes, peak.max(rss_mib(pid)), started.elapsed().as_secs_f64())
}
