//! Operating a node (SPEC §14), as an operator would: an online backup of a running node while
//! records are being ingested, restored on a fresh data directory; the restored node holds the
//! same feeds and view, ingests the same records without counting them twice, and publishes
//! the same cell-key noise, because the node secret travelled with the backup.

use accord::consortium::Consortium;

use crate::support::cli::{mode, Site};
use crate::support::{eventually_blocking, last_year};

fn cells(site: &Site, consortium: &Consortium, file: &str) -> Vec<(Vec<String>, accord::model::CellValue)> {
    let bytes = std::fs::read(site.path(file)).expect("export");
    let verified = accord::export::verify_file(&bytes, consortium).expect("verifies");
    let dataset = verified.dataset().expect("payload").clone();
    dataset.cells.into_iter().map(|c| (c.key, c.value)).collect()
}

#[test]
fn a_backup_of_a_running_node_restores_whole_on_a_fresh_directory() {
    let (site, [deu, fra]) = Site::two_members(29);
    // Cell-key, so that the secret's part in the published figures shows.
    let text = site
        .read("pki/consortium.toml")
        .replace("method = \"threshold\"\nthreshold = 5", "method = \"cell-key\"");
    site.write("pki/consortium.toml", &text);
    let year = last_year();
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("ingest --config {} records/fra.csv", fra.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", fra.config));
    site.ok(&format!(
        "synth --countries DEU,FRA --year {year} --records 20000 --seed 99 --out more"
    ));

    let d = site.start(&deu);
    let f = site.start(&fra);
    eventually_blocking("both daemons started", || {
        if d.log().contains("node started") && f.log().contains("node started") {
            Ok(())
        } else {
            Err(format!("{}\n{}", d.log(), f.log()))
        }
    });
    site.ok(&format!("sync --config {}", deu.config));
    let before = site.total_records(&deu.config);

    // The backup is taken while another file is being ingested through the daemon.
    let backup = std::thread::scope(|scope| {
        let ingest = scope.spawn(|| site.ok(&format!("ingest --config {} more/deu.csv", deu.config)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let backup = site.ok(&format!("backup --config {} --out deu.backup", deu.config));
        ingest.join().expect("ingest thread");
        backup
    });
    assert!(backup.stdout().contains("keys"), "{}", backup.details());
    assert_eq!(mode(&site.path("deu.backup")), 0o600);
    let after = site.total_records(&deu.config);
    let original = site.status(&deu.config);
    site.fails(&format!("backup --config {} --out deu.backup", deu.config))
        .reason_has(&["deu.backup"]);

    // A fresh directory for the same member: restore, then the same feeds and view.
    let text = site
        .read(&deu.config)
        .replace("data_dir = \"deu\"", "data_dir = \"deu2\"");
    site.write("deu2.toml", &text);
    let restored = site.ok("restore --config deu2.toml deu.backup");
    assert!(
        restored.stdout().contains("entries verified again (0 left out"),
        "{}",
        restored.details()
    );
    assert!(
        restored.stdout().contains("aggregates agree with"),
        "{}",
        restored.details()
    );
    let copy = site.status("deu2.toml");
    assert_eq!(copy["feeds"], original["feeds"], "same heads");
    assert_eq!(copy["view_digest"], original["view_digest"], "same view");
    let held = site.total_records("deu2.toml");
    assert!(
        held == before || held == after,
        "{held} records: the backup is before or after the file, never half of it ({before}, {after})"
    );
    assert_eq!(mode(&site.path("deu2")), 0o700);
    site.ok("check --config deu2.toml");

    // The same records again: replaced, never counted twice (the pseudonym secret came along).
    site.ok("ingest --config deu2.toml records/deu.csv");
    site.ok("ingest --config deu2.toml more/deu.csv");
    assert_eq!(site.total_records("deu2.toml"), after);

    // The same cell-key noise: the restored node publishes what the original published.
    drop(d);
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    site.ok(&format!("publish --config deu2.toml --cube flows --period {year}"));
    site.ok(&format!(
        "export --config {} --publisher DEU --seq 2 --out a.json",
        deu.config
    ));
    site.ok("export --config deu2.toml --publisher DEU --seq 2 --out b.json");
    let consortium = Consortium::load(&site.path("pki/consortium.toml")).expect("consortium");
    let (a, b) = (cells(&site, &consortium, "a.json"), cells(&site, &consortium, "b.json"));
    assert!(!a.is_empty());
    assert_eq!(a, b, "same records, same secret: same noise");
    // Under cell-key the dataset carries its subtotals (SPEC §3) beside each table's total:
    // over one breakdown dimension (one `_T`) and by one dimension alone (two), each perturbed
    // through its own cell key, so the subtotals by sex add up to the total within the noise
    // (at most 2 per figure by default).
    let totals_in = |key: &[String]| key[2..].iter().filter(|v| *v == "_T").count();
    for n in 1..=3 {
        assert!(a.iter().any(|(key, _)| totals_in(key) == n), "no figure with {n} `_T`");
    }
    let value = |key: &[String]| match a.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
        Some(accord::model::CellValue::Value(v)) => *v as i64,
        _ => 0,
    };
    let tables: std::collections::BTreeSet<&[String]> = a.iter().map(|(key, _)| &key[..2]).collect();
    for table in tables {
        let figure = |rest: [&str; 3]| {
            let key: Vec<String> = table
                .iter()
                .map(String::as_str)
                .chain(rest)
                .map(str::to_string)
                .collect();
            value(&key)
        };
        let by_sex: i64 = ["F", "M", "X", "U"].iter().map(|s| figure(["_T", s, "_T"])).sum();
        let total = figure(["_T", "_T", "_T"]);
        assert!(
            (by_sex - total).abs() <= 2 * 5,
            "{table:?}: by sex {by_sex}, total {total}"
        );
    }

    // Refusals: a data_dir in use, a damaged file.
    site.fails("restore --config deu2.toml deu.backup")
        .reason_has(&["not empty"]);
    let mut bytes = std::fs::read(site.path("deu.backup")).expect("backup");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    site.write_bytes("damaged.backup", &bytes);
    let text = site
        .read("deu2.toml")
        .replace("data_dir = \"deu2\"", "data_dir = \"deu3\"");
    site.write("deu3.toml", &text);
    site.fails("restore --config deu3.toml damaged.backup")
        .reason_has(&["damaged"]);
    assert!(!site.path("deu3/store").exists() && !site.path("deu3/node.secret").exists());
}

/// Writes `deu.toml` for the example PKI's DEU with its data in `deu/`: the configuration the
/// fixture store was made with.
fn fixture_config(site: &Site) -> &'static str {
    let root = env!("CARGO_MANIFEST_DIR");
    site.write(
        "deu.toml",
        &format!(
            "country = \"DEU\"\ndata_dir = \"deu\"\nlisten = \"127.0.0.1:1\"\nconsortium = \"{root}/certs-example/consortium.toml\"\n\n\
             [tls]\nca = \"{root}/certs-example/ca.pem\"\ncert = \"{root}/certs-example/deu.pem\"\nkey = \"{root}/certs-example/deu.key\"\ncrls = []\n\n\
             [signing]\nkey = \"{root}/certs-example/deu.sign.pk8\"\n"
        ),
    );
    "deu.toml"
}

/// The format-1 fixture: the oldest store every build must take.
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v1/deu.backup");
const FIXTURE_HEAD: &str = "0f8be639a039129d7f64ece9cca2ae688dde54f3794d5dbcff9ba05b3e098546";
/// The view digest of the fixture's datasets under `certs-example/consortium.toml` as version 1,
/// in the view encoding `accord-view/3`, which includes the consortium document's digest (so it
/// changes when the canonical document gains a section) and the estimates (`accord-view/1` gave
/// 5171b3f4..., `accord-view/2` 54908a96...).
const FIXTURE_VIEW: &str = "650901818bc6fdae90baea0977a6bf1036120f154f78420b2ec09a1e3b2a316d";

/// The node holds what the fixture store held: records, DEU's feed and the view digest.
fn holds_the_fixture(site: &Site, config: &str) {
    let status = site.status(config);
    assert_eq!(site.total_records(config), 303);
    assert_eq!(status["feeds"][0]["publisher"], "DEU");
    assert_eq!(status["feeds"][0]["seq"], 3);
    assert_eq!(status["feeds"][0]["digest"], FIXTURE_HEAD);
    assert_eq!(status["view_digest"], FIXTURE_VIEW);
    site.ok(&format!("check --config {config}"))
        .stdout_has("agree with 303 records");
}

/// The stores of every format so far, kept as backups in `tests/fixtures/store-vN` (made with the
/// example PKI in `certs-example/`, holding the same data): every later build must restore each,
/// migrating the older ones to its own format, with the same records, feed and view digest.
/// When the format changes, a backup of the new format joins them.
#[test]
fn a_store_of_every_earlier_format_restores_and_reads_the_same() {
    for version in 1..=accord::store::FORMAT_VERSION {
        let site = Site::empty();
        let config = fixture_config(&site);
        let fixture = format!(
            "{}/tests/fixtures/store-v{version}/deu.backup",
            env!("CARGO_MANIFEST_DIR")
        );
        let restored = site.ok(&format!("restore --config {config} {fixture}"));
        let migrated = format!(
            "migrated the restored store from format {version} to format {}",
            accord::store::FORMAT_VERSION
        );
        assert!(
            restored.stdout().contains("restored 541 keys")
                && restored.stdout().contains(&migrated) == (version < accord::store::FORMAT_VERSION)
                && restored.stdout().contains("3 entries verified again (0 left out"),
            "format {version}: {}",
            restored.details()
        );
        holds_the_fixture(&site, config);
    }
}

/// Opens the store with sled itself; a store this process just closed stays locked until sled's
/// flusher thread stops, so the lock is waited for.
fn sled_open(site: &Site) -> sled::Db {
    eventually_blocking("the store's lock", || {
        sled::open(site.path("deu/store")).map_err(|e| e.to_string())
    })
}

fn set_raw(site: &Site, key: &[u8], value: &[u8]) {
    let db = sled_open(site);
    let tree = db.open_tree("accord").expect("tree");
    tree.insert(key, value).expect("insert");
    db.flush().expect("flush");
}

fn raw(site: &Site, key: &[u8]) -> Vec<u8> {
    let db = sled_open(site);
    let tree = db.open_tree("accord").expect("tree");
    tree.get(key).expect("get").expect("present").to_vec()
}

/// `accord check --migrate` on a store of format 1 as an earlier Accord left it on disk (its
/// head without `created_at`): refused by every command until migrated, backed up first, then
/// migrated with the head rebuilt from its entry; a newer format is refused untouched.
#[test]
fn check_migrate_backs_up_and_migrates_a_format_1_store_and_refuses_a_newer_one() {
    let site = Site::empty();
    let config = fixture_config(&site);
    // The store as an earlier Accord left it: restored raw (no open, which would refuse it).
    let consortium = Consortium::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/certs-example/consortium.toml"
    )))
    .expect("consortium");
    let deu = accord::model::Country::parse("DEU").expect("DEU");
    let keys: Vec<[u8; 32]> = consortium
        .member(deu)
        .expect("DEU")
        .keys
        .iter()
        .map(|k| k.public_key)
        .collect();
    let trust = accord::store::BackupTrust {
        member: deu,
        keys: &keys,
    };
    accord::store::restore(&site.path("deu"), std::path::Path::new(FIXTURE), trust)
        .and_then(|r| r.commit())
        .expect("raw restore");
    let head = raw(&site, b"h:DEU");
    assert_eq!(head.len(), 48);
    set_raw(&site, b"h:DEU", &head[..40]);

    for command in ["status", "check", "view"] {
        site.fails(&format!("{command} --config {config}")).reason_has(&[
            "format version 1",
            "older",
            "check --migrate",
        ]);
    }
    let migrated = site.ok(&format!("check --migrate --config {config}"));
    migrated
        .stdout_has("backed up the format 1 store to")
        .stdout_has("migrated the store from format 1 to format 2 (1 values rewritten)")
        .stdout_has("agree with 303 records");
    assert_eq!(raw(&site, b"h:DEU"), head, "the head regains its entry's created_at");
    assert_eq!(raw(&site, b"m:format"), 2u32.to_be_bytes());
    holds_the_fixture(&site, config);
    site.ok(&format!("check --migrate --config {config}"))
        .stdout_has("the store already has format 2; nothing to migrate");

    // The backup taken first is the store as it was: restored elsewhere, it migrates the same.
    let backup = site.path("deu/store-format-1.backup");
    assert_eq!(mode(&backup), 0o600);
    let text = site.read(config).replace("data_dir = \"deu\"", "data_dir = \"again\"");
    site.write("again.toml", &text);
    site.ok(&format!("restore --config again.toml {}", backup.display()))
        .stdout_has("migrated the restored store from format 1 to format 2");
    holds_the_fixture(&site, "again.toml");

    // A store from a later Accord is refused by name and left as it is.
    set_raw(&site, b"m:format", &3u32.to_be_bytes());
    for command in ["status", "check --migrate"] {
        site.fails(&format!("{command} --config {config}"))
            .reason_has(&["format version 3", "newer"]);
    }
    assert_eq!(raw(&site, b"m:format"), 3u32.to_be_bytes());
    assert_eq!(raw(&site, b"h:DEU"), head);
}

/// Runs a shell command line from OPERATIONS.md in the site, as the operator types it.
fn shell(site: &Site, line: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", line])
        .current_dir(site.path(""))
        .output()
        .expect("sh");
    assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The signing-key rotation runbook of OPERATIONS.md, step by step, on two running members:
/// a new key made with openssl joins DEU's keys in the consortium file, the old one gets an end;
/// both nodes restart, DEU switches its node.toml to the new key; its next entry verifies on FRA,
/// its earlier entry still verifies (and stays in the view), and once the old key's end has
/// passed nothing more can be signed with it.
#[test]
fn signing_key_rotation_as_the_runbook_gives_it() {
    let (site, [deu, fra]) = Site::two_members(37);
    let year = last_year();
    let (mut deu_node, mut fra_node) = (site.serve(&deu), site.serve(&fra));
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));
    site.ok(&format!(
        "export --config {} --publisher DEU --seq 1 --out seq1.json",
        deu.config
    ));

    // 1. A new key, and its public key in hex for the consortium file.
    shell(&site, "openssl genpkey -algorithm ed25519 -out pki/deu.sign-2.pem");
    let public = shell(
        &site,
        "openssl pkey -in pki/deu.sign-2.pem -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \\n'",
    );
    assert!(
        public.len() == 64 && public.bytes().all(|b| b.is_ascii_hexdigit()),
        "{public:?}"
    );

    // 2. Every member's consortium file: the new key from today, the old one until `end`.
    let end = accord::date::unix_now() + 8;
    let text = site.read("pki/consortium.toml");
    let deu_block = text.find("country = \"DEU\"").expect("DEU");
    let until_at = deu_block + text[deu_block..].find("valid_until = ").expect("valid_until");
    let line_end = until_at + text[until_at..].find('\n').expect("line");
    let today = accord::date::Date::today();
    let rotated = format!(
        "{}valid_until = \"{}\"\n\n[[members.keys]]\npublic_key = \"{public}\"\nvalid_from = \"{:04}-{:02}-{:02}\"\n{}",
        &text[..until_at],
        accord::date::format_timestamp(end),
        today.year,
        today.month,
        today.day,
        &text[line_end + 1..]
    );
    site.write("pki/consortium.toml", &rotated);
    // ... and a restart of every node, which reads it.
    deu_node.terminate();
    fra_node.terminate();
    fra_node = site.serve(&fra);
    deu_node = site.serve(&deu);

    // 3. DEU signs with the new key from now on.
    let config = site.read(&deu.config).replace("pki/deu.sign.pk8", "pki/deu.sign-2.pem");
    site.write(&deu.config, &config);
    deu_node.terminate();
    deu_node = site.serve(&deu);
    site.ok(&format!(
        "publish --config {} --cube asylum --period {year}",
        deu.config
    ));
    let on_fra = eventually_blocking("FRA holds DEU seq 2", || {
        // DEU may still be binding its port after the restart: ask FRA to pull until it has.
        site.run(&format!("sync --config {}", fra.config));
        let status = site.status(&fra.config);
        let seq = status["feeds"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["publisher"] == "DEU"))
            .map(|f| f["seq"].clone());
        (seq == Some(2.into()))
            .then_some(status)
            .ok_or_else(|| format!("DEU at {seq:?}"))
    });
    assert_eq!(on_fra["left_out"].as_array().map(Vec::len), Some(0), "{on_fra}");
    assert_eq!(on_fra["view_digest"], site.status(&deu.config)["view_digest"]);
    site.ok("verify --consortium pki/consortium.toml seq1.json");

    // 4. Past its end, the old key signs nothing that any member would take.
    while accord::date::unix_now() <= end {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    deu_node.terminate();
    let config = site.read(&deu.config).replace("pki/deu.sign-2.pem", "pki/deu.sign.pk8");
    site.write(&deu.config, &config);
    site.fails(&format!(
        "publish --config {} --cube permits --period {year}",
        deu.config
    ))
    .reason_has(&["DEU key", "outside the key's validity window"]);
    site.ok("verify --consortium pki/consortium.toml seq1.json");
    fra_node.terminate();
}
