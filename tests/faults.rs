//! Faults: `accord serve` processes killed with SIGKILL (no shutdown, no final flush) while they
//! publish, accept entries from a peer and sync, many times over. After every restart the
//! stores must be whole: `check` finds the aggregates equal to the records, every stored entry
//! still verifies (nothing left out of the view), no feed forks, and the two nodes converge on
//! the same feeds and view digest.

mod cli_support;

use std::time::Duration;

use cli_support::{eventually, last_year, Daemon, Member, Site};

/// Waits until the daemon says it started (a killed daemon leaves its old socket file behind,
/// so the file alone proves nothing).
fn wait_for_socket(member: &Member, daemon: &Daemon) {
    eventually(&format!("{} daemon started", member.code), || {
        let log = daemon.log();
        if log.contains("node started") && member.socket().exists() {
            Ok(())
        } else {
            Err(log)
        }
    });
}

/// The feeds of a status as (publisher, seq, digest), sorted.
fn feeds(status: &serde_json::Value) -> Vec<(String, u64, String)> {
    let mut out: Vec<_> = status["feeds"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["publisher"].as_str().unwrap_or_default().to_string(),
                        f["seq"].as_u64().unwrap_or_default(),
                        f["digest"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn nodes_killed_while_publishing_and_syncing_restart_whole_and_converge() {
    let (site, [deu, fra]) = Site::two_members(9);
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("ingest --config {} records/fra.csv", fra.config));
    let year = last_year();
    for round in 0..6u64 {
        let mut d = site.start(&deu);
        let mut f = site.start(&fra);
        wait_for_socket(&deu, &d);
        wait_for_socket(&fra, &f);
        // Publishes through both daemons (each announced to the other, which pulls at once),
        // and the kill lands somewhere among them: a different point every round.
        std::thread::scope(|scope| {
            for member in [&deu, &fra] {
                let site = &site;
                scope.spawn(move || {
                    for month in 1..=12u8 {
                        let _ = site.run(&format!(
                            "publish --config {} --cube flows --period {year}-{month:02}",
                            member.config
                        ));
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(10 + 30 * round));
            d.kill();
            f.kill();
        });
    }

    // Restarted once more, both nodes are whole and converge.
    let d = site.start(&deu);
    let f = site.start(&fra);
    wait_for_socket(&deu, &d);
    wait_for_socket(&fra, &f);
    for member in [&deu, &fra] {
        site.ok(&format!("check --config {}", member.config));
        let status = site.status(&member.config);
        assert_eq!(status["forks"], serde_json::json!([]), "{}: {status}", member.code);
        assert_eq!(status["left_out"], serde_json::json!([]), "{}: {status}", member.code);
    }
    eventually("both nodes hold the same feeds and view", || {
        let (a, b) = (site.status(&deu.config), site.status(&fra.config));
        if feeds(&a) == feeds(&b) && a["view_digest"] == b["view_digest"] && !feeds(&a).is_empty() {
            // Of the 72 publishes a member started, how many the kills let finish.
            eprintln!("feeds after the kills: {:?}", feeds(&a));
            Ok(())
        } else {
            Err(format!(
                "DEU {:?}\nFRA {:?}\n{}\n{}",
                feeds(&a),
                feeds(&b),
                d.log(),
                f.log()
            ))
        }
    });
}
