//! Issue 28: `accord ingest` of a million records through a running daemon, beside the same
//! command on the store directly. Through the daemon, the CLI validates the file and streams it
//! in batches; the daemon stages each batch on disk as it arrives and moves the file into the
//! records once its end has arrived. The daemon's resident memory is sampled every 10 ms.
//! Target: the daemon grows by less than 100 MB while it takes the file. Then the daemon
//! publishes the year and 100 revisions of it (issue 27): its RSS after them under 450 MB.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::daemon_view::{rss_mib, site, Daemon};
use super::{country, line, section, thousands, verdict, Fixture};

const BIN: &str = env!("CARGO_BIN_EXE_accord");

pub fn run(fx: &mut Fixture) {
    section("ingest through a running daemon (issue 28): 1M records");
    let (file, rows) = fx.records();
    let members = [country("DEU"), country("FRA")];

    // The direct path: no daemon, the CLI opens the store.
    let direct_dir = fx.dir.path().join("daemon-ingest-direct");
    let (direct_config, _) = site(&direct_dir, &members);
    let (direct_peak, direct_secs) = ingest_sampling(&direct_dir, &direct_config, &file, None);
    line(
        "accord ingest on the store (no daemon)",
        format!(
            "{direct_secs:.1} s ({} rows/s); the CLI's peak RSS {:.0} MB",
            thousands(rows as f64 / direct_secs),
            direct_peak.cli * 1.048_576
        ),
    );

    let dir = fx.dir.path().join("daemon-ingest");
    let (config, _) = site(&dir, &members);
    let mut daemon = Daemon::start(&dir, &config);
    let started = rss_mib(daemon.pid());
    let (peak, secs) = ingest_sampling(&dir, &config, &file, Some(daemon.pid()));
    let after = rss_mib(daemon.pid());
    let revisions = publish_revisions(&dir, &config, fx.year, daemon.pid());
    daemon.stop();
    let mb = |mib: f64| mib * 1.048_576;
    line(
        "accord ingest through the daemon",
        format!(
            "{secs:.1} s ({} rows/s) = {:.2}x the direct path; the CLI's peak RSS {:.0} MB",
            thousands(rows as f64 / secs),
            secs / direct_secs,
            mb(peak.cli)
        ),
    );
    let growth = mb(peak.daemon - started);
    line(
        "daemon RSS: started / peak / after",
        format!("{:.0} / {:.0} / {:.0} MB", mb(started), mb(peak.daemon), mb(after)),
    );
    line(
        "TARGET daemon RSS growth < 100 MB",
        format!("{growth:.0} MB -> {}", verdict(growth < 100.0)),
    );
    // Issue 27: the same daemon then publishes the year and revises it, each publication
    // audited against all before it.
    let Revisions {
        first,
        median,
        peak,
        held,
    } = revisions;
    line(
        &format!(
            "publish flows {} through the daemon, then {REVISIONS} revisions",
            fx.year
        ),
        format!(
            "first {:.0} ms, revisions median {:.0} ms; daemon RSS peak {:.0} MB, after them {:.0} MB",
            first * 1e3,
            median * 1e3,
            mb(peak),
            mb(held)
        ),
    );
    line(
        &format!("TARGET daemon RSS after {REVISIONS} revisions < 450 MB"),
        format!("{:.0} MB -> {}", mb(held), verdict(mb(held) < 450.0)),
    );
}

/// Revisions of the year published through the daemon.
const REVISIONS: usize = 100;

/// Seconds of the first publication and the median revision; the daemon's peak and final RSS
/// in MiB.
struct Revisions {
    first: f64,
    median: f64,
    peak: f64,
    held: f64,
}

/// Publishes `flows` for `year` through the daemon `pid`, then [`REVISIONS`] times again, with
/// `accord publish` as an operator runs it.
fn publish_revisions(dir: &Path, config: &Path, year: i32, pid: u32) -> Revisions {
    let mut secs = Vec::new();
    let mut peak = rss_mib(pid);
    for _ in 0..=REVISIONS {
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(["publish", "--config"])
            .arg(config)
            .args(["--cube", "flows", "--period", &year.to_string()])
            .current_dir(dir)
            .output()
            .expect("accord publish");
        assert!(
            out.status.success(),
            "publish: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        secs.push(started.elapsed().as_secs_f64());
        peak = peak.max(rss_mib(pid));
    }
    let first = secs.remove(0);
    secs.sort_by(f64::total_cmp);
    Revisions {
        first,
        median: secs[secs.len() / 2],
        peak,
        held: rss_mib(pid),
    }
}

/// Peak resident memory of the CLI and the daemon, in MiB.
struct Peak {
    cli: f64,
    daemon: f64,
}

/// Runs `accord ingest` on `file`, sampling its RSS and the daemon's (when one runs) every
/// 10 ms; the peaks and the seconds the command took.
fn ingest_sampling(dir: &Path, config: &Path, file: &Path, daemon: Option<u32>) -> (Peak, f64) {
    let log = dir.join("ingest.log");
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("ingest")
        .arg("--config")
        .arg(config)
        .arg(file)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("ingest log"))
        .spawn()
        .expect("accord ingest");
    let pid = child.id();
    let mut peak = Peak { cli: 0.0, daemon: 0.0 };
    let sample = |peak: &mut Peak| {
        peak.cli = peak.cli.max(rss_mib(pid));
        if let Some(d) = daemon {
            peak.daemon = peak.daemon.max(rss_mib(d));
        }
    };
    while child.try_wait().expect("try_wait").is_none() {
        sample(&mut peak);
        std::thread::sleep(Duration::from_millis(10));
    }
    sample(&mut peak);
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "accord ingest failed: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    (peak, started.elapsed().as_secs_f64())
}
