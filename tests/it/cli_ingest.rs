//! The `accord` binary storing records, as an operator runs it with no daemon: `ingest` (CSV
//! and JSON Lines), `status`, `check` and `check --rebuild`, each a real process in a temporary
//! directory. These tests pin SPEC §1 and invariant 4: a file with an invalid row is rejected
//! whole with a one-line reason naming file, line and field; `--skip-invalid` writes the rest
//! aside; re-ingest never double counts; a killed ingest leaves whole batches whose aggregates
//! agree; a changed harmonised definition is rebuilt from the records.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::*;
use crate::support::{eventually_blocking, last_year};

// ---------------------------------------------------------------- ingest, status, check

#[test]
fn ingest_then_status_and_check_and_reingest_is_idempotent() {
    let site = Site::new("DEU,FRA,ITA");
    site.synth(2000, 7, "records");
    let config = site.node_config("DEU", "deu");
    let rows = data_rows(&site.path("records/deu.csv"));

    site.ok(&format!("ingest --config {config} records/deu.csv"))
        .stdout_has(&format!("stored {rows} records"));

    let status = site.status(&config);
    for key in ["country", "records", "feeds", "peers", "forks", "view_digest"] {
        assert!(
            status.get(key).is_some(),
            "status --format json lacks {key:?}: {status}"
        );
    }
    assert_eq!(status["country"], "DEU");
    let digest = status["view_digest"].as_str().unwrap_or_default();
    assert!(is_hex_digest(digest), "view_digest is 64 hex chars: {digest:?}");
    let counts = site.record_counts(&config);
    for event_type in ["immigration", "emigration", "asylum_application", "residence_permit"] {
        assert!(
            counts.get(event_type).copied().unwrap_or(0) > 0,
            "no {event_type} records: {counts:?}"
        );
    }
    assert_eq!(
        counts.values().sum::<u64>(),
        rows,
        "records by type sum to the rows ingested: {counts:?}"
    );
    assert_eq!(
        status["feeds"].as_array().map(Vec::len),
        Some(0),
        "nothing published yet"
    );

    site.ok(&format!("check --config {config}"))
        .stdout_has(&format!("agree with {rows} records"));

    site.ok(&format!("ingest --config {config} records/deu.csv"));
    assert_eq!(
        site.record_counts(&config),
        counts,
        "re-ingesting the same file changes nothing"
    );
    site.ok(&format!("check --config {config}"));
}

/// The consortium changes its harmonised definition: the node refuses its old aggregates, says
/// how to rebuild, and `check --rebuild` rebuilds them from the records; publishing then works.
#[test]
fn a_changed_definition_is_rebuilt_by_check() {
    let site = Site::new("DEU,FRA");
    site.synth(2000, 7, "records");
    let config = site.node_config("DEU", "deu");
    let rows = data_rows(&site.path("records/deu.csv"));
    site.ok(&format!("ingest --config {config} records/deu.csv"));
    let consortium = site.read("pki/consortium.toml");
    assert!(consortium.contains("min_duration_months = 12"), "{consortium}");
    site.write(
        "pki/consortium.toml",
        &consortium.replace("min_duration_months = 12", "min_duration_months = 3"),
    );

    site.fails(&format!("status --config {config}")).reason_has(&[
        "min_duration_months=12",
        "min_duration_months=3",
        "accord check --rebuild",
    ]);
    site.ok(&format!("check --config {config} --rebuild"))
        .stdout_has(&format!("aggregate cells from {rows} records: min_duration_months=3"))
        .stdout_has(&format!("agree with {rows} records"));
    site.ok(&format!("check --config {config} --rebuild"))
        .stdout_has("nothing to rebuild");
    let period = last_year();
    site.ok(&format!("publish --config {config} --cube flows --period {period}"));
    assert_eq!(site.total_records(&config), rows);
}

/// A copy of the first `keep` rows of `records/deu.csv` whose last row has citizenship "FRX".
fn file_with_bad_last_row(site: &Site, keep: usize, name: &str) {
    let text = site.read("records/deu.csv");
    let mut lines: Vec<String> = text.lines().take(keep + 1).map(str::to_owned).collect();
    let last = lines.last_mut().expect("rows");
    let mut fields: Vec<&str> = last.split(',').collect();
    fields[4] = "FRX"; // citizenship
    *last = fields.join(",");
    site.write(name, &(lines.join("\n") + "\n"));
}

#[test]
fn a_bad_last_row_rejects_the_whole_file_unless_skip_invalid() {
    let site = Site::new("DEU,FRA,ITA");
    site.synth(2000, 7, "records");
    let config = site.node_config("DEU", "deu");
    file_with_bad_last_row(&site, 1500, "bad.csv");
    let bad_line = 1501; // the header is line 1

    let run = site.fails(&format!("ingest --config {config} bad.csv"));
    assert_eq!(
        run.one_line_reason(),
        format!(
            "bad.csv:{bad_line}: citizenship: unknown country code \"FRX\"; 1 invalid row in bad.csv, \
             nothing was stored (--skip-invalid stores the valid rows and writes the invalid ones to bad.csv.rejected.csv)"
        ),
        "the reason names file, line and field\n{}",
        run.details()
    );
    let counts = site.record_counts(&config);
    assert!(
        counts.values().all(|&n| n == 0),
        "nothing stored from a rejected file: {counts:?}"
    );
    assert!(
        !site.path("bad.csv.rejected.csv").exists(),
        "no rejected file without --skip-invalid"
    );

    site.ok(&format!("ingest --config {config} --skip-invalid bad.csv"));
    assert_eq!(site.total_records(&config), 1499, "the valid rows are stored");
    site.ok(&format!("check --config {config}"));

    let mut reader = csv::Reader::from_path(site.path("bad.csv.rejected.csv")).expect("rejected file");
    let header = reader.headers().expect("header").clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 1, "one rejected row: {rows:?}");
    let row = &rows[0];
    let field = |name: &str| {
        let i = header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column: {header:?}"));
        row.get(i).unwrap_or_default().to_string()
    };
    assert_eq!(field("citizenship"), "FRX");
    assert_eq!(field("event_id"), "DEU-000001500", "the rejected row is the last one");
    let reason = row.get(header.len() - 1).unwrap_or_default();
    assert_eq!(
        header.get(header.len() - 1),
        Some("error"),
        "the last column is the error"
    );
    assert_eq!(reason, "citizenship: unknown country code \"FRX\"");
}

/// Each file is all or nothing on its own: a bad file among several is rejected whole, the
/// others are stored, and the command fails naming the bad one first.
#[test]
fn a_bad_file_among_several_is_rejected_alone() {
    let site = Site::new("DEU");
    site.synth(2000, 7, "records");
    let config = site.node_config("DEU", "deu");
    file_with_bad_last_row(&site, 300, "bad.csv");
    let all = site.read("records/deu.csv");
    let lines: Vec<&str> = all.lines().collect();
    site.write("first.csv", &format!("{}\n", lines[..101].join("\n")));
    site.write("last.csv", &format!("{}\n{}\n", lines[0], lines[101..151].join("\n")));

    let run = site.fails(&format!("ingest --config {config} first.csv bad.csv last.csv"));
    run.stdout_has("first.csv: stored 100 records")
        .stdout_has("bad.csv: rejected, nothing stored: bad.csv:301: citizenship")
        .stdout_has("last.csv: stored 50 records");
    let reason = run.one_line_reason();
    assert!(
        reason.starts_with("bad.csv:301: citizenship: unknown country code")
            && reason.ends_with("; 1 of 3 files rejected, the others stored"),
        "{}",
        run.details()
    );
    assert_eq!(site.total_records(&config), 150);
}

/// The rejected-rows file repeats the SPEC columns, one of which is `reason` (the record's
/// migration reason), so its own columns need other names (`line`, `error`).
#[test]
fn rejected_file_column_names_are_unique() {
    let site = Site::new("DEU,FRA,ITA");
    site.synth(2000, 7, "records");
    let config = site.node_config("DEU", "deu");
    file_with_bad_last_row(&site, 10, "bad.csv");
    site.ok(&format!("ingest --config {config} --skip-invalid bad.csv"));
    let text = site.read("bad.csv.rejected.csv");
    let header: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    let mut seen = std::collections::BTreeSet::new();
    let duplicates: Vec<&str> = header.iter().copied().filter(|h| !seen.insert(*h)).collect();
    assert!(
        duplicates.is_empty(),
        "bad.csv.rejected.csv repeats column names {duplicates:?}; a CSV reader keyed by name loses the \
         record's own `reason` field. Header: {header:?}"
    );
}

#[test]
fn json_lines_input_stores_the_same_records_as_csv() {
    let site = Site::new("DEU,FRA,ITA");
    site.synth(2000, 7, "records");
    let mut reader = csv::Reader::from_path(site.path("records/deu.csv")).expect("deu.csv");
    let header = reader.headers().expect("header").clone();
    let mut jsonl = String::new();
    for row in reader.records() {
        let row = row.expect("row");
        let mut object = serde_json::Map::new();
        for (name, value) in header.iter().zip(row.iter()) {
            // Integers may be JSON numbers; empty fields may be absent.
            let value = match (name, value.parse::<u64>()) {
                (_, _) if value.is_empty() => continue,
                ("birth_year" | "duration_months", Ok(n)) => serde_json::Value::from(n),
                _ => serde_json::Value::from(value),
            };
            object.insert(name.to_string(), value);
        }
        jsonl.push_str(&serde_json::Value::Object(object).to_string());
        jsonl.push('\n');
    }
    site.write("deu.jsonl", &jsonl);

    let from_csv = site.node_config("DEU", "from_csv");
    let from_jsonl = site.node_config("DEU", "from_jsonl");
    site.ok(&format!("ingest --config {from_csv} records/deu.csv"));
    site.ok(&format!("ingest --config {from_jsonl} deu.jsonl"));
    let counts = site.record_counts(&from_jsonl);
    assert_eq!(counts.values().sum::<u64>(), data_rows(&site.path("records/deu.csv")));
    assert_eq!(
        counts,
        site.record_counts(&from_csv),
        "JSON Lines and CSV store the same records"
    );
    let csv_check = site.ok(&format!("check --config {from_csv}"));
    let jsonl_check = site.ok(&format!("check --config {from_jsonl}"));
    assert_eq!(
        jsonl_check.stdout(),
        csv_check.stdout(),
        "same records and same aggregate cells from both formats"
    );

    // A bad JSON line is named by file and line like a CSV row.
    let mut bad = jsonl.lines().take(3).collect::<Vec<_>>().join("\n");
    bad.push_str("\n{\"event_id\":\"x1\",\"colour\":\"red\"}\n");
    site.write("bad.jsonl", &bad);
    let run = site.fails(&format!("ingest --config {from_jsonl} bad.jsonl"));
    assert!(
        run.stderr().starts_with("bad.jsonl:4:"),
        "names file and line\n{}",
        run.details()
    );
    assert_eq!(
        site.record_counts(&from_jsonl),
        counts,
        "nothing stored from the bad file"
    );
}

#[test]
fn an_unknown_csv_column_is_rejected_by_name() {
    let site = Site::new("DEU,FRA,ITA");
    let config = site.node_config("DEU", "deu");
    let year = last_year();
    site.write(
        "extra.csv",
        &format!("{RECORD_COLUMNS},comment\nDEU-1,P1,immigration,{year}-03-01,FRA,FRA,FRA,F,1990,work,24,hello\n"),
    );
    let run = site.fails(&format!("ingest --config {config} extra.csv"));
    run.reason_has(&["extra.csv:1:", "unknown column \"comment\""]);
    assert_eq!(site.total_records(&config), 0, "nothing stored");
}

// ---------------------------------------------------------------- a killed ingest

/// Ingest is killed (SIGKILL) while it is storing batches; the store must hold whole batches
/// with aggregates that agree, and re-running the file must give exactly a clean ingest.
#[test]
fn an_ingest_killed_mid_file_leaves_whole_batches_and_a_rerun_completes_it() {
    let site = Site::new("DEU,FRA");
    let year = last_year().to_string();
    site.ok(&format!(
        "synth --countries DEU,FRA --year {year} --records 100000 --seed 11 --out big"
    ));
    let rows = data_rows(&site.path("big/deu.csv"));
    let killed = site.node_config("DEU", "killed");
    let clean = site.node_config("DEU", "clean");

    // Kill once the store has grown by several megabytes: the second (storing) pass is under
    // way. A finished store of these records is about 25 MB.
    let mut child = site
        .command(&format!("ingest --config {killed} big/deu.csv"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ingest");
    let store = site.path("killed");
    let started = Instant::now();
    loop {
        if dir_size(&store) > 6 << 20 {
            break;
        }
        // The kill must land mid-file: an ingest that got to the end first proves nothing.
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the ingest ended ({status}) before the store reached 6 MB, so it was never killed mid-file");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the store never grew past 6 MB (now {} bytes)",
            dir_size(&store)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL the ingest");
    let _ = child.wait();

    site.ok(&format!("check --config {killed}"));
    let partial = site.total_records(&killed);
    eprintln!("the killed ingest kept {partial} of {rows} records");
    assert!(
        partial > 0 && partial < rows,
        "killed mid-file: some batches stored, not all ({partial} of {rows})"
    );
    assert_eq!(
        partial % 1000,
        0,
        "the store holds whole batches of 1000, got {partial}"
    );

    site.ok(&format!("ingest --config {killed} big/deu.csv"));
    site.ok(&format!("ingest --config {clean} big/deu.csv"));
    let after = site.record_counts(&killed);
    assert_eq!(
        after.values().sum::<u64>(),
        rows,
        "the re-run stores every row once: {after:?}"
    );
    assert_eq!(
        after,
        site.record_counts(&clean),
        "re-run after a kill equals a clean ingest"
    );
    let killed_check = site.ok(&format!("check --config {killed}"));
    let clean_check = site.ok(&format!("check --config {clean}"));
    assert_eq!(
        killed_check.stdout(),
        clean_check.stdout(),
        "same records and aggregate cells as a clean ingest"
    );
}

// ---------------------------------------------------------------- raw identifiers

/// SPEC §10: a bad `person_id` is named, never quoted. Every shape of bad identifier, in CSV
/// and in JSON Lines, through `ingest` with and without `--skip-invalid` at trace level, and
/// through a running daemon: no output and no log carries any of them, and each rejection names
/// the field. (The `.rejected.csv` file beside the input holds the operator's own rows verbatim
/// by design, with the input's mode, so it is not output.)
#[test]
fn bad_identifiers_of_every_shape_are_named_never_quoted() {
    let (site, [deu, _fra]) = Site::two_members(21);
    let mut reader = csv::Reader::from_path(site.path("records/deu.csv")).expect("records");
    let header: Vec<String> = reader.headers().expect("header").iter().map(String::from).collect();
    let good: Vec<String> = reader
        .records()
        .next()
        .expect("a row")
        .expect("row")
        .iter()
        .map(String::from)
        .collect();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (event, person, citizenship) = (column("event_id"), column("person_id"), column("citizenship"));

    // Each identifier carries a token no other output could contain by chance.
    let long = format!("PIDLONG05{}", "x".repeat(300));
    let csv_ids: Vec<(&str, Vec<u8>)> = vec![
        ("PIDLEAD01", b" PIDLEAD01".to_vec()),
        ("PIDTRAIL02", b"PIDTRAIL02 ".to_vec()),
        ("TAB03", b"PID\tTAB03".to_vec()),
        ("ZW04", "PID\u{200B}ZW04".as_bytes().to_vec()),
        ("PIDLONG05", long.clone().into_bytes()),
        ("PIDUTF", b"PIDUTF\xff06".to_vec()),
        ("CTRL08", b"PID\x01CTRL08".to_vec()),
    ];
    let mut csv_file = header.join(",").into_bytes();
    csv_file.push(b'\n');
    let row = |id: &[u8], event_id: &str, bad_citizenship: bool| {
        let mut out = Vec::new();
        for (i, value) in good.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match i {
                _ if i == person => out.extend_from_slice(id),
                _ if i == event => out.extend_from_slice(event_id.as_bytes()),
                _ if i == citizenship && bad_citizenship => out.extend_from_slice(b"FRX"),
                _ => out.extend_from_slice(value.as_bytes()),
            }
        }
        out.push(b'\n');
        out
    };
    csv_file.extend(row(good[person].as_bytes(), "GOOD-1", false));
    for (i, (_, id)) in csv_ids.iter().enumerate() {
        csv_file.extend(row(id, &format!("BAD-{i}"), false));
    }
    // A valid identifier on a row rejected for another field is not quoted either.
    csv_file.extend(row(b"PIDVALID09", "BAD-OTHER", true));
    std::fs::write(site.path("ids.csv"), &csv_file).expect("ids.csv");

    let json_ids: Vec<(&str, String)> = vec![
        ("19850312345", "19850312345".into()),
        ("1985031", "1985031.25".into()),
        ("PIDARR10", r#"["PIDARR10"]"#.into()),
        ("PIDOBJ11", r#"{"id":"PIDOBJ11"}"#.into()),
        ("PIDJLEAD12", r#"" PIDJLEAD12""#.into()),
        ("PIDJCTRL", r#""PIDJCTRL\u000113""#.into()),
        ("PIDJLONG14", format!("\"PIDJLONG14{}\"", "y".repeat(300))),
        ("PIDJUTF", "\"PIDJUTF\u{fffd}15\"".into()),
    ];
    let json_row = |id: &str, event_id: &str| {
        let fields: Vec<String> = header
            .iter()
            .zip(&good)
            .map(|(h, v)| {
                let value = if h == "person_id" {
                    id.to_string()
                } else if h == "event_id" {
                    format!("{event_id:?}")
                } else {
                    format!("{v:?}")
                };
                format!("{h:?}:{value}")
            })
            .collect();
        format!("{{{}}}\n", fields.join(","))
    };
    let mut jsonl = json_row(&format!("{:?}", good[person]), "GOOD-1").into_bytes();
    for (i, (_, id)) in json_ids.iter().enumerate() {
        jsonl.extend(json_row(id, &format!("JBAD-{i}")).into_bytes());
    }
    // An identifier in bytes that are not UTF-8 at all.
    jsonl.extend(
        json_row("\"PIDJRAW16\u{1}\"", "JBAD-RAW")
            .replace('\u{1}', "\u{80}")
            .into_bytes(),
    );
    std::fs::write(site.path("ids.jsonl"), &jsonl).expect("ids.jsonl");

    let tokens: Vec<&str> = csv_ids
        .iter()
        .map(|(t, _)| *t)
        .chain(json_ids.iter().map(|(t, _)| *t))
        .chain(["PIDVALID09", "PIDJRAW16"])
        .collect();
    let mut outputs = Vec::new();
    let mut run = |line: String| {
        let output = site
            .command(&line)
            .env("RUST_LOG", "trace")
            .output()
            .expect("run accord");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push((line, output.status.success(), text));
    };
    for file in ["ids.csv", "ids.jsonl"] {
        run(format!("ingest --config {} {file}", deu.config));
        run(format!("ingest --config {} {file} --skip-invalid", deu.config));
    }
    // The same through a running daemon, whose log is output too.
    let daemon = site.start(&deu);
    eventually_blocking("DEU daemon started", || {
        if deu.socket().exists() {
            Ok(())
        } else {
            Err(daemon.log())
        }
    });
    for file in ["ids.csv", "ids.jsonl"] {
        run(format!("ingest --config {} {file}", deu.config));
        run(format!("ingest --config {} {file} --skip-invalid", deu.config));
    }
    outputs.push(("daemon log".into(), true, daemon.log()));

    for (line, success, text) in &outputs {
        for token in &tokens {
            assert!(
                !text.contains(token),
                "{line}: output quotes the identifier {token:?}:\n{text}"
            );
        }
        if !line.contains("--skip-invalid") && line != "daemon log" {
            assert!(!success, "{line} rejects the file:\n{text}");
            assert!(text.contains("person_id"), "{line}: the field is named:\n{text}");
        }
    }
    // The rows set aside are the bad ones, all of them: nothing was lost by hiding them.
    let rejected = site.read("ids.csv.rejected.csv");
    assert_eq!(rejected.lines().count() - 1, csv_ids.len() + 1, "{rejected}");
}
