//! Issue 28: `accord ingest` of a million records through a running daemon, beside the same
//! command on the store directly. Through the daemon, the CLI validates the file and streams it
//! in batches; the daemon stages each batch on disk as it arrives and moves the file into the
//! records once its end has arrived. The daemon's resident memory is sampled every 10 ms.
//! Target: the daemon grows by less than 100 MB while it takes the file.

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
