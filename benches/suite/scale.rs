//! Issue 31: one node's costs as the consortium grows to 10, 30, 100 and 193 members, in
//! process. Each size runs in a child process (its own peak RSS): every member signs a yearly
//! `flows` dataset with its own key naming every other member as a partner (4 cells per
//! partner and direction), the node accepts them all, and the consortium asks for modelled
//! estimates. Measured per size: the view with its estimates (time, rows, the child's peak
//! RSS), `status` with the view kept, the view refresh after one new entry (one member's
//! revision, refreshed as a daemon refreshes the view it keeps: only the pairs the revision
//! touches are computed again), and a quiet exchange summary against reading every head. The figures go into
//! BENCHMARKS.md with the exponent fitted between 30 and 193 members.

use std::path::Path;
use std::time::Instant;

use accord::config::NodeConfig;
use accord::dataset::{Dataset, Head};
use accord::model::{Cell, CellValue, Country, Cube, Period};
use accord::node::Node;
use ring::signature::Ed25519KeyPair;

use super::{line, num, run_child, section, thousands, Rng};

const SIZES: [usize; 4] = [10, 30, 100, 193];

pub fn run(fx: &mut super::Fixture) {
    section("one node as the consortium grows (issue 31): 10, 30, 100, 193 members");
    let mut results = Vec::new();
    for n in SIZES {
        let dir = fx.dir.path().join(format!("scale-{n}"));
        let r = run_child(
            "scale",
            &[&n.to_string(), dir.to_str().expect("utf-8 path"), &fx.year.to_string()],
        );
        line(
            &format!("{n} members"),
            format!(
                "view {} rows + estimates {:.0} ms (peak RSS {:.0} MiB); status {:.2} ms; refresh after one entry {:.0} ms; heads read {:.2} ms vs summary {:.4} ms",
                thousands(num(&r, "rows")),
                num(&r, "view_ms"),
                num(&r, "peak_mib"),
                num(&r, "status_ms"),
                num(&r, "refresh_ms"),
                num(&r, "heads_ms"),
                num(&r, "summary_ms"),
            ),
        );
        results.push((n, r));
    }
    let (small, large) = (&results[1], &results[3]);
    let exponent =
        |key: &str| (num(&large.1, key) / num(&small.1, key)).ln() / ((large.0 as f64) / (small.0 as f64)).ln();
    line(
        "fitted exponent, 30 to 193 members (1 = linear, 2 = as the pairs)",
        format!(
            "view {:.2}, refresh {:.2}, status {:.2}, heads read {:.2}, peak RSS {:.2}",
            exponent("view_ms"),
            exponent("refresh_ms"),
            exponent("status_ms"),
            exponent("heads_ms"),
            exponent("peak_mib"),
        ),
    );
}

/// The child: `n`, the directory, the year.
pub fn child_scale(args: &[String]) -> serde_json::Value {
    let n: usize = args[0].parse().expect("size");
    let dir = Path::new(&args[1]);
    let year: i32 = args[2].parse().expect("year");
    let members: Vec<Country> = Country::all_iso().take(n).collect();
    let (config_path, _) = super::daemon_view::site(dir, &members);
    // Estimates on, the first three members as reference.
    let consortium_path = dir.join("pki/consortium.toml");
    let text = std::fs::read_to_string(&consortium_path).expect("consortium.toml");
    let reference: Vec<String> = members[..3].iter().map(|c| format!("\"{c}\"")).collect();
    let estimates = format!(
        "[estimates]\nmethod = \"imem-lite\"\nreference = [{}]\n\n",
        reference.join(", ")
    );
    let at = text.find("[[members]]").expect("members");
    std::fs::write(&consortium_path, format!("{}{estimates}{}", &text[..at], &text[at..])).expect("consortium.toml");

    let node = Node::open(NodeConfig::load(&config_path).expect("node.toml")).expect("open node");
    let mut heads: Vec<Option<Head>> = vec![None; n];
    for (i, head) in heads.iter_mut().enumerate() {
        *head = Some(publish(&node, dir, &members, i, year, None, 1));
    }
    node.flush().expect("flush");
    let base = super::peak_rss_mib();
    // As on a daemon: a thread keeps the view, refreshing it after each new entry; `view`
    // waits for the computation under way.
    let started = Instant::now();
    let _maintainer = node.maintain_view().expect("view thread");
    let view = node.view().expect("view");
    let view_ms = started.elapsed().as_secs_f64() * 1e3;
    let rows = view.rows.len();
    drop(view);
    let started = Instant::now();
    let reps = 20;
    for _ in 0..reps {
        std::hint::black_box(node.status().expect("status"));
    }
    let status_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(reps);
    // One member revises: the view is computed again.
    heads[1] = Some(publish(&node, dir, &members, 1, year, heads[1], 2));
    let started = Instant::now();
    std::hint::black_box(node.view().expect("view"));
    let refresh_ms = started.elapsed().as_secs_f64() * 1e3;
    let peak_mib = super::peak_rss_mib().max(base);
    let started = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(node.heads().expect("heads"));
    }
    let heads_ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(reps);
    let feeds: &dyn accord::exchange::Feeds = &*node;
    let started = Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(feeds.feeds_summary());
    }
    let summary_ms = started.elapsed().as_secs_f64() * 1e3 / 1000.0;
    serde_json::json!({
        "members": n, "rows": rows, "view_ms": view_ms, "status_ms": status_ms, "refresh_ms": refresh_ms,
        "peak_mib": peak_mib, "heads_ms": heads_ms, "summary_ms": summary_ms,
    })
}

/// Member `i`'s yearly `flows` dataset, signed with its key and accepted; its head.
fn publish(node: &Node, dir: &Path, members: &[Country], i: usize, year: i32, head: Option<Head>, seed: u64) -> Head {
    let member = members[i];
    let pkcs8 = std::fs::read(dir.join("pki").join(format!("{}.sign.pk8", member.lower()))).expect("signing key");
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).expect("Ed25519 key");
    let mut rng = Rng((i as u64) << 16 | seed);
    let mut cells = Vec::new();
    for (j, partner) in members.iter().enumerate() {
        if j == i {
            continue;
        }
        for direction in ["IN", "OUT"] {
            for (citizenship, sex) in [(member, "F"), (member, "M"), (*partner, "F"), (*partner, "M")] {
                let value = if rng.below(10) == 0 {
                    CellValue::Confidential
                } else {
                    CellValue::Value(5 + rng.below(496))
                };
                cells.push(Cell {
                    key: vec![
                        direction.to_string(),
                        partner.to_string(),
                        citizenship.to_string(),
                        sex.to_string(),
                        "Y25-29".to_string(),
                    ],
                    value,
                });
            }
        }
    }
    cells.sort_by(|a, b| a.key.cmp(&b.key));
    cells.dedup_by(|a, b| a.key == b.key);
    let dataset = Dataset {
        publisher: member,
        cube: Cube::Flows,
        period: Period::Year(year),
        definition: node.consortium().definition,
        disclosure: node.consortium().disclosure,
        cells,
        unreported: Default::default(),
    };
    super::daemon_view::accept_signed(node, &dataset, &key, head)
}
