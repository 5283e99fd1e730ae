//! Not reported is not zero (SPEC §2), as an operator meets it: a member whose registers do not
//! count one direction or some partners publishes through its running node with
//! `--unreported`, and every output of a peer's view (CSV, JSON, the dashboard) reads those sides
//! as missing, never as zero, while the rules fall back to the other side.

use crate::support::cli::Site;
use crate::support::{eventually_blocking, last_year};

/// SPEC §2: DEU's registers do not count immigrants from FRA, so DEU publishes through its
/// running node with `--unreported IN:FRA`. On DEU (which holds FRA's feed too) every FRA to DEU
/// row reads the receiver side as `M` in CSV and JSON, the `receiving` rule falls back to FRA's
/// figure, and the dashboard's pair page shows `M` and says why.
#[test]
fn a_side_published_as_unreported_reads_missing_and_the_rule_falls_back() {
    let (site, [deu, fra]) = Site::two_members(21);
    let dashboard = crate::support::cli::free_port();
    let text = site.read(&deu.config);
    site.write(
        &deu.config,
        &format!("dashboard_listen = \"127.0.0.1:{dashboard}\"\n{text}"),
    );
    let (_deu_daemon, _fra_daemon) = (site.serve(&deu), site.serve(&fra));
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("ingest --config {} records/fra.csv", fra.config));
    let year = last_year();

    site.fails(&format!(
        "publish --config {} --cube flows --period {year} --unreported IN:DEU",
        deu.config
    ))
    .reason_has(&["--unreported", "IN:DEU", "own country"]);
    site.fails(&format!(
        "publish --config {} --cube asylum --period {year} --unreported OUT",
        deu.config
    ))
    .reason_has(&["only flows"]);
    site.ok(&format!(
        "publish --config {} --cube flows --period {year} --unreported IN:FRA",
        deu.config
    ));
    site.ok(&format!("publish --config {} --cube flows --period {year}", fra.config));
    eventually_blocking("DEU holds FRA's flows", || {
        let status = site.status(&deu.config);
        let feeds = status["feeds"].as_array().cloned().unwrap_or_default();
        if feeds.iter().any(|f| f["publisher"] == "FRA" && f["seq"] == 1) {
            Ok(())
        } else {
            Err(status.to_string())
        }
    });

    let filter = format!("--cube flows --period {year} --origin FRA --destination DEU");
    let csv = site
        .ok(&format!("view --config {} {filter} --format csv", deu.config))
        .stdout();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert!(rows.len() > 1, "FRA to DEU has rows\n{csv}");
    for row in &rows {
        // receiver_reported, receiver_status, reconciled, rule
        assert_eq!((row[8], row[9]), ("", "M"), "receiver side missing: {row:?}");
        assert_eq!(row[13], "receiving");
        if row[7].is_empty() {
            assert_eq!(row[10], row[6], "the rule falls back to the sender's figure: {row:?}");
        }
    }
    let total = rows
        .iter()
        .find(|r| r[3..6] == ["_T", "_T", "_T"])
        .expect("a pair-total row");
    assert!(
        total[6].parse::<u64>().unwrap() > 0 && total[10] == total[6],
        "{total:?}"
    );

    let json: serde_json::Value = serde_json::from_str(
        &site
            .ok(&format!("view --config {} {filter} --format json", deu.config))
            .stdout(),
    )
    .unwrap();
    let json_rows = json["rows"].as_array().unwrap();
    assert_eq!(json_rows.len(), rows.len());
    assert!(json_rows
        .iter()
        .all(|r| r["receiver_status"] == "M" && r["receiver_reported"].is_null()));

    // The other direction is reported: DEU's emigration to FRA has both sides.
    let back = site
        .ok(&format!(
            "view --config {} --cube flows --period {year} --origin DEU --destination FRA --format csv",
            deu.config
        ))
        .stdout();
    assert!(back.lines().skip(1).all(|l| l.split(',').nth(9) != Some("M")), "{back}");

    let page = crate::support::http_body(
        ("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), dashboard).into(),
        &format!("/flows?period={year}&origin=FRA&destination=DEU"),
    );
    assert!(page.contains("DEU does not report immigration from FRA"), "{page}");
    let line = format!(
        "<td>FRA</td><td>DEU</td><td class=\"num\">{}</td><td class=\"num\">M</td>",
        total[6]
    );
    assert!(page.contains(&line), "the pair table shows {line}\n{page}");
}
