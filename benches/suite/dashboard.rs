//! Issue 18: the dashboard at consortium scale. One node holds 30 members' 12 monthly `flows`
//! datasets (1,000 cells each, signed with each member's key), a view of about 300,000 rows;
//! `accord serve` runs as a child process with `dashboard_listen`. Measured: the weight of each
//! page (HTML, and the assets it loads), the server's time to answer (the first flows page
//! after start computes the view), and the time to first render in headless Chromium as the
//! page itself reports it (`performance.now()` when its script has drawn the page). Skipped,
//! with a line saying so, when Chromium is not installed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use accord::config::NodeConfig;
use accord::model::{Country, Period};
use accord::node::Node;

use super::daemon_view::{site, Daemon, MONTHS};

/// A node of `members` (the first is this node) whose `node.toml` has `dashboard_listen` on a
/// free loopback port, and `extra` lines: its config path and the dashboard's port.
pub(super) fn dashboard_site(dir: &Path, members: &[Country], extra: &str) -> (std::path::PathBuf, u16) {
    let (config_path, _) = site(dir, members);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let toml = std::fs::read_to_string(&config_path).expect("node.toml");
    std::fs::write(
        &config_path,
        format!("dashboard_listen = \"127.0.0.1:{port}\"\n{extra}{toml}"),
    )
    .expect("node.toml");
    (config_path, port)
}
use super::{line, section, thousands, Fixture};

const MEMBERS: usize = 30;
const CELLS: usize = 1_000;

pub fn run(fx: &mut Fixture) {
    section("dashboard (issue 18): 30 members, 12 monthly flows datasets each");
    let dir = fx.dir.path().join("dashboard");
    let members: Vec<Country> = Country::all_iso().take(MEMBERS).collect();
    let (config_path, port) = dashboard_site(&dir, &members, "");
    let (rows, fill_secs) = super::timed(|| fill(&config_path, &dir, &members, fx.year));
    line(
        "store",
        format!(
            "{} entries of {} cells in {fill_secs:.1} s: a view of {} rows",
            MEMBERS * usize::from(MONTHS),
            thousands(CELLS as f64),
            thousands(rows as f64)
        ),
    );
    let mut daemon = Daemon::start(&dir, &config_path);
    let month = Period::Month(fx.year, MONTHS).to_string();
    let (a, b) = (members[0], members[1]);
    let pages = [
        (
            "flows, first after start (computes the view)",
            format!("/flows?period={month}"),
        ),
        (
            "flows, the 30 x 30 matrix and every pair",
            format!("/flows?period={month}"),
        ),
        (
            "flows, one pair with series and breakdowns",
            format!("/flows?period={month}&origin={a}&destination={b}"),
        ),
        ("overview", "/".to_string()),
    ];
    for (what, path) in &pages {
        let started = Instant::now();
        let body = get(port, path);
        let secs = started.elapsed().as_secs_f64();
        line(
            &format!("{what}: HTML, server time"),
            format!("{:.0} KB, {:.0} ms", body.len() as f64 / 1e3, secs * 1e3),
        );
    }
    let assets: usize = [
        "/assets/dashboard.css",
        "/assets/dashboard.js",
        "/assets/chart.js/chart.umd.min.js",
    ]
    .iter()
    .map(|p| get(port, p).len())
    .sum();
    line(
        "assets (CSS, script, Chart.js; cached an hour)",
        format!("{:.0} KB", assets as f64 / 1e3),
    );
    match chromium() {
        None => line("time to first render", "skipped: chromium not installed"),
        Some(browser) => {
            for (what, path) in &pages[1..] {
                let ms = rendered_ms(&browser, &format!("http://127.0.0.1:{port}{path}"));
                line(
                    &format!("{what}: time to first render"),
                    match ms {
                        Some(ms) => format!("{ms:.0} ms (from navigation start until the page's script has drawn it)"),
                        None => "the page did not report it".to_string(),
                    },
                );
            }
        }
    }
    daemon.stop();
}

/// `GET path` on the loopback listener at `port`; the body of a 200 answer.
pub(super) fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the dashboard");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_string()
}

fn chromium() -> Option<std::path::PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// Loads `url` in headless Chromium and reads the time the page reports it finished drawing
/// (`data-rendered-ms` on `<body>`).
fn rendered_ms(browser: &Path, url: &str) -> Option<f64> {
    let profile = tempfile::tempdir().expect("profile");
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .ok()?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let at = dom.find("data-rendered-ms=\"")? + "data-rendered-ms=\"".len();
    dom[at..].split('"').next()?.parse().ok()
}

/// Signs every member's monthly datasets and accepts them in the node's store (as the daemon
/// view bench does); returns the number of rows in the view they make.
fn fill(config_path: &Path, dir: &Path, members: &[Country], year: i32) -> usize {
    super::daemon_view::fill_cells(config_path, dir, members, year, CELLS);
    let node = Node::open(NodeConfig::load(config_path).expect("node.toml")).expect("open node");
    node.view().expect("view").rows.len()
}
