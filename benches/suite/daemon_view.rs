//! Issue 12: `accord view --format csv` through a running daemon, for a view of more than
//! 100 MB. One node holds 10 members x 12 monthly `flows` datasets of 6,000 cells each
//! (signed with each member's key and accepted before the daemon starts); `accord serve` runs as
//! a child process (waited for until its log says it started, its entries indexed); `accord
//! view` runs against it twice (the first computes the view, the second
//! is served from the view the daemon keeps) while the daemon's resident memory is sampled
//! every 10 ms. Target: the view arrives whole (it once failed past the 40 MiB message limit)
//! and the daemon grows by less than 200 MB while serving it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use accord::config::NodeConfig;
use accord::dataset::publish::{sign_entry, EntryParams};
use accord::dataset::{Dataset, Head, Placement};
use accord::date::unix_now;
use accord::model::{Country, Cube, Period};
use accord::node::Node;
use ring::signature::Ed25519KeyPair;

use super::{flows_cells, line, section, thousands, verdict, Fixture};

const MEMBERS: usize = 10;
pub(super) const MONTHS: u8 = 12;
const CELLS: usize = 6_000;
const BIN: &str = env!("CARGO_BIN_EXE_accord");

pub fn run(fx: &mut Fixture) {
    section("view through a running daemon (issue 12): a view of more than 100 MB");
    let dir = fx.dir.path().join("daemon-view");
    let members: Vec<Country> = Country::all_iso().take(MEMBERS).collect();
    let (config_path, _) = site(&dir, &members);

    let (_, fill_secs) = super::timed(|| fill(&config_path, &dir, &members, fx.year));
    line(
        "store",
        format!(
            "{} entries of {} cells accepted in {fill_secs:.1} s",
            MEMBERS * usize::from(MONTHS),
            thousands(CELLS as f64)
        ),
    );

    let mut daemon = Daemon::start(&dir, &config_path);
    let started = rss_mib(daemon.pid());
    // First view after start: the daemon computes the view (and keeps it) while serving it.
    let (first_bytes, first_peak, first_secs) = view_while_sampling(&dir, daemon.pid());
    let holding_view = rss_mib(daemon.pid());
    // Second view: served from the view the daemon holds, rendered into the stream.
    let (out_bytes, peak, secs) = view_while_sampling(&dir, daemon.pid());
    assert_eq!(first_bytes, out_bytes, "the same view twice");
    let mb = |mib: f64| mib * 1.048_576;
    line(
        "view --format csv through the daemon",
        format!(
            "{:.0} MB of CSV: first {first_secs:.1} s (computes the view), then {secs:.1} s",
            out_bytes as f64 / 1e6
        ),
    );
    line(
        "daemon RSS: started / peak in first view / after",
        format!(
            "{:.0} / {:.0} / {:.0} MB",
            mb(started),
            mb(first_peak),
            mb(holding_view)
        ),
    );
    let first_growth = mb(first_peak - started);
    let growth = mb(peak - holding_view);
    line(
        "daemon RSS growth: first view (computes it) / second",
        format!("{first_growth:.0} MB / {growth:.0} MB"),
    );
    line(
        "TARGET view >= 100 MB, daemon growth < 200 MB",
        verdict(out_bytes >= 100_000_000 && first_growth < 200.0 && growth < 200.0),
    );
    daemon.stop();
}

/// A PKI for `members` under `dir/pki` and `dir/node.toml` for the first of them, listening on
/// a free port of 127.0.0.1. Returns the config path and the port.
pub(super) fn site(dir: &Path, members: &[Country]) -> (std::path::PathBuf, u16) {
    pki(dir, members);
    let me = members[0];
    let lower = me.lower();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let toml = format!(
        "country = \"{me}\"\ndata_dir = \"data\"\nlisten = \"127.0.0.1:{port}\"\nconsortium = \"pki/consortium.toml\"\n\n\
         [tls]\nca = \"pki/ca.pem\"\ncert = \"pki/{lower}.pem\"\nkey = \"pki/{lower}.key\"\ncrls = []\n\n\
         [signing]\nkey = \"pki/{lower}.sign.pk8\"\n"
    );
    let config_path = dir.join("node.toml");
    std::fs::write(&config_path, toml).expect("node.toml");
    (config_path, port)
}

/// The example PKI and consortium of `members` in `<dir>/pki`.
pub(super) fn pki(dir: &Path, members: &[Country]) {
    accord::certs::generate(&accord::certs::CertsOptions {
        out: dir.join("pki"),
        countries: members.to_vec(),
        days: 30,
        force: true,
    })
    .expect("generate PKI");
}

/// Signs every member's twelve monthly datasets with its key and accepts them in `me`'s store.
pub(super) fn fill(config_path: &Path, dir: &Path, members: &[Country], year: i32) {
    fill_cells(config_path, dir, members, year, CELLS);
}

/// [`fill`] with datasets of `cells` cells.
pub(super) fn fill_cells(config_path: &Path, dir: &Path, members: &[Country], year: i32, cells: usize) {
    let config = NodeConfig::load(config_path).expect("node.toml");
    let node = Node::open(config).expect("open node");
    for (i, member) in members.iter().enumerate() {
        let pkcs8 = std::fs::read(dir.join("pki").join(format!("{}.sign.pk8", member.lower()))).expect("signing key");
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).expect("Ed25519 key");
        let mut head: Option<Head> = None;
        for month in 1..=MONTHS {
            let own = member.to_string();
            let cells = flows_cells(cells, (i as u64) << 8 | u64::from(month))
                .into_iter()
                .filter(|c| c.key[1] != own)
                .collect();
            let dataset = Dataset {
                publisher: *member,
                cube: Cube::Flows,
                period: Period::Month(year, month),
                definition: node.consortium().definition,
                disclosure: node.consortium().disclosure,
                cells,
                unreported: Default::default(),
            };
            head = Some(accept_signed(&node, &dataset, &key, head));
        }
    }
    node.flush().expect("flush");
}

/// Signs `dataset` after `head` with `key`, has `node` accept it as the next entry of the
/// publisher's feed, and returns the new head.
pub(super) fn accept_signed(node: &Node, dataset: &Dataset, key: &Ed25519KeyPair, head: Option<Head>) -> Head {
    let entry = sign_entry(
        dataset,
        EntryParams {
            head,
            created_at: unix_now(),
            audience: Vec::new(),
            key,
        },
    );
    let (verified, placement) = node.accept(entry).expect("entry accepted");
    assert_eq!(placement, Placement::Append);
    Head {
        seq: verified.header().seq,
        digest: verified.digest(),
    }
}

/// Runs `accord view --format csv`, counting its output, while sampling the daemon's RSS.
/// Returns the bytes of CSV, the peak RSS in MiB and the seconds the view took.
fn view_while_sampling(dir: &Path, pid: u32) -> (u64, f64, f64) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["view", "--config", "node.toml", "--format", "csv"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("accord view");
    let mut stdout = child.stdout.take().expect("stdout");
    let counter = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()).expect("read view"));
    let mut peak = rss_mib(pid);
    while child.try_wait().expect("try_wait").is_none() {
        peak = peak.max(rss_mib(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "accord view failed: {status}");
    let bytes = counter.join().expect("counter");
    (bytes, peak.max(rss_mib(pid)), started.elapsed().as_secs_f64())
}

pub(super) fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `accord serve` as a child process, killed when dropped.
pub(super) struct Daemon(Child);

impl Daemon {
    /// Starts the daemon and waits until it has started (its stored entries verified and
    /// indexed, its log says "node started"), so what follows measures the view alone.
    pub(super) fn start(dir: &Path, config: &Path) -> Daemon {
        let log = dir.join("serve.log");
        let out = std::fs::File::create(&log).expect("daemon log");
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(config)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdout(out.try_clone().expect("daemon log"))
            .stderr(out)
            .spawn()
            .expect("accord serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("node started")
        {
            assert!(Instant::now() < deadline, "the daemon never said it started");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon(child)
    }

    pub(super) fn pid(&self) -> u32 {
        self.0.id()
    }

    pub(super) fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
