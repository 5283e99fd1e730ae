//! The dashboard (SPEC §13) in a real browser: a three-member cluster converges, DEU serves the
//! dashboard, and headless Chromium (Debian's `chromium`; `.ci/run` installs it) loads each
//! page. From the rendered DOM: the matrix has one cell per pair with the reconciled figures of
//! `accord view`, a confidential pair reads `C` (never 0), the digest shown is `status`'s, and
//! the page's script ran (charts drawn). Screenshots go to `target/dashboard-screenshots/`.
//! `/api/view` is `accord view --format json` byte for byte (the CLI through the admin socket).

use crate::support::SettledStatus;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use accord::cluster::full_mesh;
use accord::model::{Cube, Period};
use accord::node::Node;
use accord::record::EventType;

use crate::support::cluster::{
    cluster_options, countries, ingest_synthetic, publish_and_announce, start_cluster_with, synthetic_records,
};
use crate::support::http;
use crate::support::{eventually, last_year};

/// `GET path` with `host`; (status line, headers in lower case, body).
fn get(addr: std::net::SocketAddr, path: &str, host: &str) -> (String, String, String) {
    let answer = http::get(addr, path, host, &[]);
    (answer.status_line, answer.head.to_lowercase(), answer.body)
}

fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("headless Chromium is needed: apt-get install chromium (.ci/run installs it)");
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the rendered DOM; saves
/// a screenshot too.
fn render(url: &str, screenshot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1400,1000",
        "--virtual-time-budget=10000",
    ];
    let run = |extra: &str| {
        Command::new(chromium())
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(extra)
            .arg(url)
            .output()
            .expect("run chromium")
    };
    let shot = run(&format!("--screenshot={}", screenshot.display()));
    assert!(
        shot.status.success() && screenshot.exists(),
        "screenshot of {url}: {}",
        String::from_utf8_lossy(&shot.stderr)
    );
    let dom = run("--dump-dom");
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    String::from_utf8(dom.stdout).unwrap()
}

/// The value of attribute `name` in the tag text `tag`.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[start..].split('"').next()?.to_string())
}

/// Every matrix cell in a rendered page: (origin, destination) → its text.
fn matrix_cells(dom: &str) -> BTreeMap<(String, String), String> {
    let mut cells = BTreeMap::new();
    for chunk in dom.split("<td ").skip(1) {
        let tag = &chunk[..chunk.find('>').unwrap()];
        let (Some(origin), Some(destination)) = (attribute(tag, "data-origin"), attribute(tag, "data-destination"))
        else {
            continue;
        };
        let link = &chunk[chunk.find("<a ").unwrap()..];
        let text = &link[link.find('>').unwrap() + 1..link.find("</a>").unwrap()];
        cells.insert((origin, destination), text.to_string());
    }
    cells
}

/// The reconciled figure of each pair total in `accord view --format json` output.
fn json_totals(json: &str) -> BTreeMap<(String, String), String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["citizenship"] == "_T" && r["sex"] == "_T" && r["age_band"] == "_T")
        .map(|r| {
            let key = (
                r["origin"].as_str().unwrap().to_string(),
                r["destination"].as_str().unwrap().to_string(),
            );
            let text = match (r["reconciled"].as_u64(), r["reconciled_status"].as_str().unwrap()) {
                (Some(n), "") => n.to_string(),
                (None, "") => "M".to_string(),
                (_, status) => status.to_string(),
            };
            (key, text)
        })
        .collect()
}

fn totals_of(config: &Path, period: Period) -> BTreeMap<(String, String), String> {
    json_totals(&accord_view(
        config,
        &["--cube", "flows", "--period", &period.to_string()],
    ))
}

fn accord_view(config: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_accord"))
        .args(["view", "--config"])
        .arg(config)
        .args(["--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_view_of_accord_view_in_a_real_browser() {
    // Every node runs as `accord serve` does, with `dashboard_listen` in its node.toml.
    // The consortium asks for modelled estimates (SPEC §15), anchored on DEU.
    let cluster = start_cluster_with(accord::cluster::ClusterOptions {
        dashboard: true,
        consortium_edit: Some(std::sync::Arc::new(|text: &str| {
            format!("{text}\n[estimates]\nmethod = \"imem-lite\"\nreference = [\"DEU\"]\n")
        })),
        ..cluster_options(&["DEU", "FRA", "ITA"], full_mesh, 1)
    })
    .await;
    let year = last_year();
    for i in cluster.running_indices() {
        let node = cluster.running(i);
        ingest_synthetic(node, year, 600, 11 + i as u64);
        for period in [
            Period::Year(year),
            Period::Month(year, 1),
            Period::Month(year, 2),
            Period::Month(year, 3),
        ] {
            publish_and_announce(node, Cube::Flows, period, &[]).await;
        }
        publish_and_announce(node, Cube::Asylum, Period::Year(year), &[]).await;
        publish_and_announce(node, Cube::Permits, Period::Year(year), &[]).await;
    }
    // A month of the year before with two moves from DEU to ITA, as both report them: below
    // the threshold, so both sides are confidential and so is the pair.
    let quiet = Period::Month(year - 1, 5);
    for (i, me, partner, kind) in [
        (0, "DEU", "ITA", EventType::Emigration),
        (2, "ITA", "DEU", EventType::Immigration),
    ] {
        let node = cluster.running(i);
        let mut records: Vec<_> = synthetic_records(countries(&[me])[0], &countries(&[partner]), year - 1, 8, 77)
            .into_iter()
            .filter(|r| r.event_type == kind)
            .collect();
        for r in &mut records {
            r.event_date.month = 5;
        }
        assert_eq!(node.ingest(&records).unwrap().stored, 2);
        publish_and_announce(node, Cube::Flows, quiet, &[]).await;
    }
    eventually("every node holds 20 entries and one view", || {
        let digests: std::collections::BTreeSet<_> = cluster
            .running_indices()
            .into_iter()
            .map(|i| {
                let n = cluster.running(i);
                (
                    n.heads().unwrap().iter().map(|(_, h)| h.seq).sum::<u64>(),
                    n.view_digest().unwrap(),
                )
            })
            .collect();
        (digests.len() == 1 && digests.iter().next().unwrap().0 == 20)
            .then_some(())
            .ok_or(format!("{digests:?}"))
    })
    .await;

    let deu: Arc<Node> = cluster.running(0).clone();
    let addr = cluster.nodes[0].dashboard.expect("DEU serves its dashboard");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let config = cluster.nodes[0].config_path.clone();
    let status = deu.settled_status().unwrap();

    let tasks = tokio::task::spawn_blocking(move || {
        // Overview: the digest and the consortium version of `status`.
        let dom = render(
            &format!("http://127.0.0.1:{}/", addr.port()),
            &shots.join("overview.png"),
        );
        assert!(
            dom.contains(&format!("id=\"view-digest\">{}<", status.view_digest)),
            "{dom}"
        );
        assert!(dom.contains("data-rendered=\"1\""), "the page's script ran");
        for member in ["DEU", "FRA", "ITA"] {
            assert!(dom.contains(&format!("<td>{member}</td>")), "feed of {member} listed");
        }

        // Flows for the year: one cell per pair, each the reconciled figure of `accord view`.
        let period = year.to_string();
        let dom = render(
            &format!("http://127.0.0.1:{}/flows?period={period}", addr.port()),
            &shots.join("flows.png"),
        );
        assert!(dom.contains(&format!("id=\"view-digest\">{}<", status.view_digest)));
        let cells = matrix_cells(&dom);
        let totals = json_totals(&accord_view(&config, &["--cube", "flows", "--period", &period]));
        assert_eq!(cells, totals, "the matrix is the view's pair totals, one cell per pair");
        assert!(cells.len() >= 4, "most pairs of three members move people: {cells:?}");

        // A month with a pair and its breakdown chosen.
        let month = Period::Month(year, 1).to_string();
        let dom = render(
            &format!(
                "http://127.0.0.1:{}/flows?period={month}&origin=DEU&destination=FRA",
                addr.port()
            ),
            &shots.join("flows-month.png"),
        );
        let cells = matrix_cells(&dom);
        let totals = json_totals(&accord_view(&config, &["--cube", "flows", "--period", &month]));
        assert_eq!(cells.len(), 1, "origin and destination chosen: {cells:?}");
        for (pair, text) in &cells {
            assert_eq!(Some(text), totals.get(pair), "{pair:?}");
        }
        assert!(dom.contains("id=\"series\""), "the monthly series table of DEU to FRA");
        let months = (1..=3)
            .filter(|m| totals_of(&config, Period::Month(year, *m)).contains_key(&("DEU".into(), "FRA".into())))
            .count();
        assert_eq!(
            dom.matches(&format!("<td>{year}-0")).count(),
            months,
            "one series line per month published"
        );
        assert!(dom.contains("id=\"by-citizenship\""), "the breakdown by citizenship");
        assert!(dom.contains("id=\"by-age-band\""), "the breakdown by age band");
        // The pair's picture: both reports, the rule's figure and the estimate of `accord view`.
        let pair: serde_json::Value = serde_json::from_str(&accord_view(
            &config,
            &[
                "--cube",
                "flows",
                "--period",
                &month,
                "--origin",
                "DEU",
                "--destination",
                "FRA",
            ],
        ))
        .unwrap();
        let total = pair["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["citizenship"] == "_T")
            .expect("the pair total");
        let estimate = format!(
            "estimate {} [{}, {}]",
            total["estimate"], total["estimate_lower"], total["estimate_upper"]
        );
        assert!(total["estimate"].is_u64(), "{total}");
        assert!(
            dom.contains("id=\"pair-picture\"") && dom.contains(&estimate),
            "the picture shows {estimate}"
        );
        // The quiet month: the confidential pair reads C, never 0.
        let dom = render(
            &format!("http://127.0.0.1:{}/flows?period={quiet}", addr.port()),
            &shots.join("flows-confidential.png"),
        );
        let cells = matrix_cells(&dom);
        let totals = json_totals(&accord_view(
            &config,
            &["--cube", "flows", "--period", &quiet.to_string()],
        ));
        assert_eq!(cells, totals);
        assert_eq!(
            cells.get(&("DEU".to_string(), "ITA".to_string())).map(String::as_str),
            Some("C"),
            "{cells:?}"
        );
        assert!(!cells.values().any(|t| t == "0"), "no confidential pair shows as 0");

        // Asylum and permits: every publisher's figure side by side, as `accord view` has them.
        for cube in ["asylum", "permits"] {
            let dom = render(
                &format!("http://127.0.0.1:{}/side?cube={cube}", addr.port()),
                &shots.join(format!("{cube}.png")),
            );
            assert!(dom.contains(&format!("id=\"view-digest\">{}<", status.view_digest)));
            let v: serde_json::Value =
                serde_json::from_str(&accord_view(&config, &["--cube", cube, "--period", &period])).unwrap();
            let rows = v["side_by_side"].as_array().unwrap().len();
            let shown = dom.split("<tbody>").nth(1).unwrap().matches("<tr>").count();
            assert_eq!(
                shown,
                rows.min(accord::dashboard::ROWS_PER_PAGE),
                "{cube}: one line per row"
            );
            assert!(
                dom.contains("<th>DEU</th><th>FRA</th><th>ITA</th>"),
                "{cube}: one column per publisher"
            );
        }

        // /api/view is `accord view --format json` for the same filters, byte for byte.
        for (query, args) in [
            ("cube=flows", vec!["--cube", "flows"]),
            (
                &format!("cube=flows&period={period}&origin=DEU") as &str,
                vec!["--cube", "flows", "--period", &period, "--origin", "DEU"],
            ),
            ("cube=asylum", vec!["--cube", "asylum"]),
        ] {
            let (line, head, body) = get(addr, &format!("/api/view?{query}"), "127.0.0.1");
            assert_eq!(line, "HTTP/1.1 200 OK");
            assert!(head.contains("content-type: application/json"));
            assert_eq!(body, accord_view(&config, &args), "{query}");
        }
        // A download is the CSV of what the page shows.
        let (line, head, body) = get(
            addr,
            &format!("/download?cube=flows&period={period}&format=csv"),
            "localhost",
        );
        assert_eq!(line, "HTTP/1.1 200 OK");
        assert!(head.contains("content-disposition: attachment"));
        assert!(body.starts_with("origin,destination,period,"));
        // Another host name (DNS rebinding) is refused; answers carry a strict CSP.
        let (line, _, _) = get(addr, "/api/status", "attacker.example:80");
        assert_eq!(line, "HTTP/1.1 421 Misdirected Request");
        let (line, head, body) = get(addr, "/api/status", "127.0.0.1");
        assert_eq!(line, "HTTP/1.1 200 OK");
        assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self'"));
        assert!(head.contains("cache-control: no-store"), "data is never cached");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["view_digest"], status.view_digest);
        let (_, head, _) = get(addr, "/assets/chart.js/chart.umd.min.js", "localhost");
        assert!(head.contains("cache-control: private, max-age=3600"), "{head}");
        let (line, _, _) = get(addr, "/flows?period=not-a-period", "127.0.0.1");
        assert_eq!(line, "HTTP/1.1 400 Bad Request");
        // A group of members: the matrix keeps those listed, in the order asked for.
        let columns = |query: &str| {
            let (line, _, body) = get(addr, &format!("/flows?period={period}&{query}"), "127.0.0.1");
            assert_eq!(line, "HTTP/1.1 200 OK", "{query}: {body}");
            let matrix = body.split("id=\"matrix\"").nth(1).expect("a matrix");
            let head = matrix.split("</thead>").next().unwrap_or_default();
            head.split("<th scope=\"col\">")
                .skip(1)
                .map(|c| c.split('<').next().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(columns("members=ITA,DEU"), ["DEU", "ITA"]);
        let mut by_size = columns("sort=size");
        by_size.sort();
        assert_eq!(by_size, columns(""), "every member, another order");
        assert_eq!(columns("sort=asymmetry&members=DEU"), ["DEU"]);
        for bad in ["sort=largest", "members=D3U"] {
            let (line, _, _) = get(addr, &format!("/flows?{bad}"), "127.0.0.1");
            assert_eq!(line, "HTTP/1.1 400 Bad Request", "{bad}");
        }
    });
    tasks.await.unwrap();
    cluster.shutdown().await;
}

#[test]
fn the_embedded_chart_library_is_the_pinned_release() {
    let digest = accord::hex::encode(&accord::dataset::envelope::sha256(accord::dashboard::CHART_JS));
    assert_eq!(
        digest,
        accord::dashboard::CHART_JS_SHA256,
        "Chart.js {}",
        accord::dashboard::CHART_JS_VERSION
    );
}

#[test]
fn only_loopback_host_names_are_answered() {
    for host in [
        "localhost",
        "localhost:9402",
        "127.0.0.1:9402",
        "[::1]:9402",
        "127.0.0.2",
    ] {
        assert!(accord::dashboard::loopback_host(host), "{host}");
    }
    for host in [
        "",
        "example.org",
        "10.0.0.1:9402",
        "localhost.example.org",
        "[2001:db8::1]:80",
    ] {
        assert!(!accord::dashboard::loopback_host(host), "{host}");
    }
}
