//! The `accord` binary without a daemon, as an operator or auditor runs it: `certs`, `synth`,
//! `publish`, `export`, `verify`, `view`, `sync` and usage mistakes, each run as a real process
//! in a temporary directory with the store opened directly (ingest has `cli_ingest.rs`). These
//! tests pin the outside of the product (SPEC §6, §8): the files written, the exit codes, the
//! one-line reasons on stderr and the output headers. On failure a test prints the command, its
//! exit status, stdout and stderr.

use std::path::Path;
use std::process::Stdio;

use crate::support::cli::*;
use crate::support::last_year;

// ---------------------------------------------------------------- certs and synth

#[test]
fn certs_writes_the_spec_file_set_with_private_keys_owner_only() {
    let site = Site::new("DEU,FRA,ITA");
    let mut names: Vec<String> = std::fs::read_dir(site.path("pki"))
        .expect("pki dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec!["ca.pem".to_string(), "ca.key".into(), "consortium.toml".into()];
    for code in ["deu", "fra", "ita"] {
        expected.extend([format!("{code}.pem"), format!("{code}.key"), format!("{code}.sign.pk8")]);
    }
    expected.sort();
    assert_eq!(names, expected, "files written by accord certs");

    #[cfg(unix)]
    for secret in [
        "ca.key",
        "deu.key",
        "deu.sign.pk8",
        "fra.key",
        "fra.sign.pk8",
        "ita.key",
        "ita.sign.pk8",
    ] {
        assert_eq!(mode(&site.path("pki").join(secret)), 0o600, "mode of pki/{secret}");
    }
    let consortium = site.read("pki/consortium.toml");
    for code in ["DEU", "FRA", "ITA"] {
        assert!(
            consortium.contains(&format!("country = \"{code}\"")),
            "consortium.toml lists {code}:\n{consortium}"
        );
    }
    assert_eq!(
        consortium.matches("public_key = ").count(),
        3,
        "one signing key per member:\n{consortium}"
    );
    let pem = site.read("pki/deu.pem");
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE-----"),
        "deu.pem is a PEM certificate:\n{pem}"
    );

    // An existing PKI is never overwritten silently.
    let again = site.fails("certs --out pki --countries DEU,FRA,ITA");
    again.reason_has(&["pki/"]);
}

#[test]
fn synth_writes_one_file_per_country_and_truth_and_is_reproducible() {
    let site = Site::new("DEU,FRA,ITA");
    site.synth(2000, 7, "a");
    site.synth(2000, 7, "b");
    for file in ["deu.csv", "fra.csv", "ita.csv", "truth.csv"] {
        let a = std::fs::read(site.path("a").join(file)).unwrap_or_else(|e| panic!("a/{file}: {e}"));
        let b = std::fs::read(site.path("b").join(file)).unwrap_or_else(|e| panic!("b/{file}: {e}"));
        assert!(!a.is_empty(), "a/{file} is empty");
        assert!(a == b, "{file} differs between two runs with the same seed");
    }
    for file in ["deu.csv", "fra.csv", "ita.csv"] {
        let text = site.read(&format!("a/{file}"));
        assert_eq!(text.lines().next(), Some(RECORD_COLUMNS), "header of a/{file}");
        let rows = data_rows(&site.path("a").join(file));
        assert!(
            (1000..=4000).contains(&rows),
            "a/{file} has {rows} rows for --records 2000"
        );
    }
    site.synth(2000, 8, "c");
    let a = site.read("a/deu.csv");
    let c = site.read("c/deu.csv");
    assert_ne!(a, c, "another seed gives other records");
    assert!(
        !site.path("a/registers.toml").exists(),
        "plain registers have no classes"
    );

    // By default the registers are drawn from measurement classes (SPEC §15) and their classes
    // written to registers.toml, in the words a consortium file declares them.
    let year = last_year();
    site.ok(&format!(
        "synth --countries DEU,FRA,ITA --year {year} --records 2000 --seed 7 --out d"
    ))
    .stdout_has("registers.toml");
    let classes = site.read("d/registers.toml");
    assert_eq!(
        classes.lines().filter(|l| *l == "[members.measurement]").count(),
        3,
        "{classes}"
    );
    site.ok(&format!(
        "synth --countries DEU,FRA,ITA --year {year} --records 2000 --seed 7 --out e --registers drawn"
    ));
    assert_eq!(site.read("d/deu.csv"), site.read("e/deu.csv"), "drawn is the default");
    site.fails(&format!(
        "synth --countries DEU,FRA,ITA --year {year} --records 20 --seed 7 --out f --registers nowhere.toml"
    ))
    .reason_has(&["--registers nowhere.toml"]);
}

// ---------------------------------------------------------------- publish, export, verify

/// Replaces the character at `index` of the JSON string at `pointer` in an export file with
/// another base64 character.
fn flip_base64_char(file: &Path, pointer: &str, index: impl Fn(usize) -> usize) {
    let text = std::fs::read_to_string(file).expect("export file");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("export file is JSON");
    let value = json
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in {text}"));
    let mut chars: Vec<char> = value.as_str().expect("a string").chars().collect();
    let i = index(chars.len());
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    *value = serde_json::Value::from(chars.into_iter().collect::<String>());
    std::fs::write(file, serde_json::to_vec_pretty(&json).expect("json")).expect("write");
}

/// The `public_key` values of `consortium.toml`, in member order.
fn public_keys(consortium: &str) -> Vec<String> {
    consortium
        .lines()
        .filter_map(|l| l.trim().strip_prefix("public_key = \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect()
}

#[test]
fn an_exported_entry_verifies_offline_and_any_tampering_is_reported() {
    let site = Site::new("DEU,FRA,ITA");
    let config = site.published_deu();
    site.ok(&format!(
        "export --config {config} --publisher DEU --seq 1 --out e.json"
    ));
    let verify = |file: &str, consortium: &str| site.run(&format!("verify --consortium {consortium} {file}"));

    let ok = verify("e.json", "pki/consortium.toml").success();
    assert!(ok.stdout().starts_with("valid"), "prints valid\n{}", ok.details());
    ok.stdout_has("DEU seq 1");

    // A flipped character in the signature.
    std::fs::copy(site.path("e.json"), site.path("sig.json")).expect("copy");
    flip_base64_char(&site.path("sig.json"), "/envelope/signatures/0/sig", |_| 10);
    let run = verify("sig.json", "pki/consortium.toml").failure();
    run.reason_has(&["sig.json", "signature does not verify: publisher DEU"]);

    // A flipped character in the signed header, inside the payload digest near its end.
    std::fs::copy(site.path("e.json"), site.path("header.json")).expect("copy");
    flip_base64_char(&site.path("header.json"), "/envelope/payload", |len| len - 20);
    verify("header.json", "pki/consortium.toml")
        .failure()
        .reason_has(&["header.json"]);

    // A flipped character in the dataset payload: the header's digest no longer matches.
    std::fs::copy(site.path("e.json"), site.path("data.json")).expect("copy");
    flip_base64_char(&site.path("data.json"), "/dataset", |len| len / 2);
    verify("data.json", "pki/consortium.toml")
        .failure()
        .reason_has(&["data.json"]);

    // A consortium file in which DEU and FRA swapped keys: DEU's signature fails under FRA's key.
    let consortium = site.read("pki/consortium.toml");
    let keys = public_keys(&consortium);
    assert_eq!(keys.len(), 3, "three member keys:\n{consortium}");
    let swapped = consortium
        .replace(&keys[0], "SWAP")
        .replace(&keys[1], &keys[0])
        .replace("SWAP", &keys[1]);
    site.write("swapped.toml", &swapped);
    let run = verify("e.json", "swapped.toml").failure();
    run.reason_has(&["signature does not verify: publisher DEU"]);

    // DEU's key replaced by FRA's: the consortium file itself is refused, naming file and key.
    site.write("duplicate.toml", &consortium.replace(&keys[0], &keys[1]));
    let run = verify("e.json", "duplicate.toml").failure();
    run.reason_has(&["duplicate.toml", "public_key"]);
}

// ---------------------------------------------------------------- configuration errors

#[test]
fn a_bad_node_config_fails_naming_file_and_key() {
    let site = Site::new("DEU,FRA,ITA");
    let good = site.read(&site.node_config("DEU", "deu"));
    let cases = [
        (
            "unknown.toml",
            good.replace("country = \"DEU\"", "country = \"XYZ\""),
            "country",
            "XYZ",
        ),
        (
            "outsider.toml",
            good.replace("country = \"DEU\"", "country = \"ESP\""),
            "country",
            "ESP",
        ),
        (
            "listen.toml",
            good.replace("listen = \"127.0.0.1:", "listen = \"nowhere:"),
            "listen",
            "nowhere",
        ),
        (
            "typo.toml",
            good.replace("data_dir =", "data_dri ="),
            "data_dri",
            "unknown field",
        ),
        (
            "dashboard.toml",
            format!("dashboard_listen = \"0.0.0.0:9402\"\n{good}"),
            "dashboard_listen",
            "not a loopback address",
        ),
    ];
    for (file, text, key, detail) in cases {
        site.write(file, &text);
        for command in ["status", "serve"] {
            let run = site.fails(&format!("{command} --config {file}"));
            run.reason_has(&[&format!("{file}: "), key, detail]);
            assert!(
                run.one_line_reason().starts_with(&format!("{file}: ")),
                "{}",
                run.details()
            );
        }
    }
    site.fails("status --config absent.toml").reason_has(&["absent.toml"]);
}

/// A node.toml naming a file that does not exist: the reason should name the missing file and
/// the node.toml key that refers to it, so the operator knows which line to fix.
#[test]
fn a_missing_referenced_file_is_named_with_its_node_config_key() {
    let site = Site::new("DEU,FRA,ITA");
    let good = site.read(&site.node_config("DEU", "deu"));
    let cases = [
        ("consortium", "pki/consortium.toml", "status"),
        ("signing.key", "pki/deu.sign.pk8", "status"),
        ("tls.cert", "pki/deu.pem", "serve"),
        ("tls.key", "pki/deu.key", "serve"),
        ("tls.ca", "pki/ca.pem", "serve"),
    ];
    let mut problems = Vec::new();
    for (i, (key, path, command)) in cases.into_iter().enumerate() {
        let file = format!("missing{i}.toml");
        site.write(&file, &good.replace(&format!("\"{path}\""), "\"pki/gone.file\""));
        let run = site.fails(&format!("{command} --config {file}"));
        let reason = run.one_line_reason();
        if !(reason.contains("pki/gone.file") && reason.contains(key)) {
            problems.push(format!("{key} ({command}): {reason}"));
        }
    }
    assert!(
        problems.is_empty(),
        "reasons that do not name the missing file and its node.toml key:\n{}",
        problems.join("\n")
    );
}

// ---------------------------------------------------------------- the view

#[test]
fn view_formats_start_with_the_spec_headers() {
    let site = Site::new("DEU,FRA,ITA");
    let config = site.published_deu();
    let period = last_year().to_string();

    let csv = site.ok(&format!("view --config {config} --format csv --cube flows"));
    let out = csv.stdout();
    assert!(out.starts_with(FLOWS_CSV_HEADER), "csv header\n{}", csv.details());
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header == FLOWS_CSV_HEADER || header.starts_with(&format!("{FLOWS_CSV_HEADER},")),
        "the SPEC columns come first, whole: {header}"
    );
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert!(!rows.is_empty(), "DEU's published flows give rows\n{}", csv.details());
    assert!(
        rows.iter().all(|r| r.split(',').nth(2) == Some(period.as_str())),
        "every row is for {period}\n{}",
        csv.details()
    );

    let json = site.ok(&format!("view --config {config} --format json --cube flows"));
    let value: serde_json::Value =
        serde_json::from_str(&json.stdout()).unwrap_or_else(|e| panic!("not JSON: {e}\n{}", json.details()));
    let digest = value["digest"].as_str().unwrap_or_default();
    assert!(is_hex_digest(digest), "digest is 64 hex chars\n{}", json.details());
    assert_eq!(value["rule"], "receiving", "the consortium's rule");
    assert_eq!(
        value["rows"].as_array().map(Vec::len),
        Some(rows.len()),
        "json and csv have the same rows"
    );
    assert_eq!(
        site.status(&config)["view_digest"].as_str(),
        Some(digest),
        "status shows the view's digest"
    );

    let bare = site.ok(&format!("view --config {config} --format csv"));
    assert_eq!(bare.stdout(), out, "without --cube, csv is flows");
    assert!(
        bare.stderr()
            .contains("note: csv shows flows; --cube asylum or --cube permits for the others"),
        "{}",
        bare.details()
    );
    let sdmx = site.ok(&format!("view --config {config} --format sdmx-csv --cube flows"));
    let first = sdmx.stdout().lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("STRUCTURE,STRUCTURE_ID,ACTION"),
        "sdmx-csv header\n{}",
        sdmx.details()
    );
    for column in ["OBS_VALUE", "OBS_STATUS", "CONF_STATUS"] {
        assert!(first.split(',').any(|c| c == column), "sdmx-csv has {column}: {first}");
    }

    site.fails(&format!("view --config {config} --format xml"))
        .reason_has(&["xml"]);
}

/// `accord view ... | head` closes the pipe early: the command must end quietly (or with a
/// one-line reason), never with a panic and a backtrace.
#[test]
fn view_into_a_closed_pipe_does_not_panic() {
    let site = Site::new("DEU,FRA,ITA");
    let config = site.published_deu();
    let mut child = site
        .command(&format!("view --config {config} --format csv"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn view");
    drop(child.stdout.take()); // the reader goes away before the view is written
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && stderr.lines().count() <= 1,
        "accord view into a closed pipe: status {}, stderr:\n{stderr}",
        output.status
    );
}

/// A sync that cannot reach a peer still reports every peer on stdout, then exits non-zero with
/// a one-line reason naming the peer (SPEC §6).
#[test]
fn sync_with_an_unreachable_peer_fails_with_a_one_line_reason() {
    let site = Site::new("DEU,FRA");
    let config = site.node_config("DEU", "deu");
    let port = free_port(); // nothing listens here
    let mut text = site.read(&config);
    text.push_str(&format!(
        "\n[[peers]]\ncountry = \"FRA\"\nendpoint = \"https://127.0.0.1:{port}\"\n"
    ));
    site.write(&config, &text);

    let run = site.fails(&format!("sync --config {config}"));
    run.stdout_has("FRA: failed: ");
    let reason = run.one_line_reason();
    assert!(
        reason.starts_with("sync failed with 1 of 1 peers; FRA: "),
        "{}",
        run.details()
    );
}

/// A usage mistake is one line on stderr and exit code 2 (SPEC §6; 2 is clap's usage code).
#[test]
fn a_usage_mistake_is_one_line_and_exit_code_2() {
    let site = Site::new("DEU");
    for (line, needle) in [
        ("publish --config x.toml --cube flows", "--period"),
        ("frobnicate", "frobnicate"),
        ("view --config x.toml --colour", "--colour"),
        // A bad value of an enumerated option is a usage mistake too, naming option and value.
        ("view --config x.toml --format xml", "'xml' for '--format"),
        ("view --config x.toml --cube migration", "'migration' for '--cube"),
        (
            "publish --config x.toml --cube flows --period 2024-13",
            "'2024-13' for '--period",
        ),
        ("status --config x.toml --format yaml", "'yaml' for '--format"),
        (
            "publish --config x.toml --cube flows --period 2024 --audience XYZ",
            "'XYZ' for '--audience",
        ),
    ] {
        let run = site.run(line);
        assert_eq!(run.output.status.code(), Some(2), "{}", run.details());
        let reason = run.one_line_reason();
        assert!(
            reason.contains(needle) && reason.ends_with("(try --help)"),
            "{}",
            run.details()
        );
    }
    let help = site.ok("view --help");
    help.stdout_has("--format");
}
