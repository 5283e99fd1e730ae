//! The fuzz targets' inputs as tests: every seed in `fuzz/seeds/<target>/` and every input that
//! once crashed a target, kept in `tests/fuzz_cases/<target>/`, run through the same functions
//! the targets run (`fuzz/src/lib.rs`, included here). A crash found by fuzzing stays fixed,
//! and the seeds keep meaning what they were made for: valid inputs are accepted.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs `target` on every seed and every kept crash input; returns the seeds' results by file
/// name.
fn run(target: &str, f: impl Fn(&[u8]) -> String) -> std::collections::BTreeMap<String, String> {
    let root = targets::root();
    let seeds = inputs(&root.join("fuzz/seeds").join(target));
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for case in inputs(&root.join("tests/fuzz_cases").join(target)) {
        let bytes = std::fs::read(&case).expect("case");
        f(&bytes);
    }
    seeds
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("seed");
            (p.file_name().unwrap().to_string_lossy().into_owned(), f(&bytes))
        })
        .collect()
}

#[test]
fn entries_signed_by_members_verify_and_their_parts_alone_do_not() {
    let results = run("entry", |b| targets::entry(b).to_string());
    for (name, ok) in &results {
        let expected = name.starts_with("export-") || name.starts_with("proto-");
        assert_eq!(ok, &expected.to_string(), "{name}");
    }
    // One flipped bit anywhere in a signed entry is refused, except in the key id field (its tag,
    // length and text: a hint only, every key of the publisher is tried) and in `has_payload`'s
    // value (the last byte: any nonzero varint is `true`).
    let seed = std::fs::read(targets::root().join("fuzz/seeds/entry/proto-1.bin")).expect("seed");
    let keyid = seed
        .windows(16)
        .position(|w| w == b"8961ec984d296f82")
        .expect("key id in the seed");
    let mut refused = 0;
    for i in (1..seed.len() - 1).filter(|i| !(keyid - 2..keyid + 16).contains(i)) {
        let mut bad = seed.clone();
        bad[i] ^= 0x10;
        assert!(!targets::entry(&bad), "byte {i} flipped still verifies");
        refused += 1;
    }
    assert!(refused > 500, "{refused}");
}

#[test]
fn exchange_and_admin_requests_decode_as_the_node_reads_them() {
    let exchange = run("exchange_request", |b| targets::exchange_request(b).to_string());
    assert!(exchange.values().all(|v| v == "true"), "{exchange:?}");
    let admin = run("admin_request", |b| targets::admin_request(b).to_string());
    assert!(admin.values().all(|v| v == "true"), "{admin:?}");
}

#[test]
fn record_files_read_their_valid_rows() {
    let csv = run("csv_records", |b| targets::records(b, "csv").to_string());
    assert_eq!(csv["synth.csv"], "24");
    assert_eq!(csv["bad-rows.csv"], "2");
    let jsonl = run("jsonl_records", |b| targets::records(b, "jsonl").to_string());
    assert_eq!(jsonl["synth.jsonl"], "19");
    assert_eq!(jsonl["bad.jsonl"], "2", "the first and last lines");
}

#[test]
fn configuration_and_certificates_parse() {
    run("node_toml", |b| targets::node_toml(b).to_string());
    let consortia = run("consortium_toml", |b| targets::consortium_toml(b).to_string());
    assert!(consortia.values().all(|v| v == "true"), "{consortia:?}");
    let certs = run("cert_identity", |b| targets::cert_identity(b).to_string());
    assert_eq!(certs["deu.der"], "true");
    assert_eq!(certs["empty-crl.pem"], "true");
}

#[test]
fn backups_sealed_by_the_member_verify_and_nothing_else_does() {
    let results = run("backup", |b| targets::backup(b).to_string());
    for (name, ok) in &results {
        assert_eq!(ok, &name.starts_with("sealed-").to_string(), "{name}");
    }
    // One flipped bit anywhere in a sealed backup is refused: the magic, the member, the
    // secret, a length, a key or value, the seal's key or its signature.
    let seed = std::fs::read(targets::root().join("fuzz/seeds/backup/sealed-small.backup")).expect("seed");
    for i in 0..seed.len() {
        let mut bad = seed.clone();
        bad[i] ^= 0x01;
        assert!(!targets::backup(&bad), "byte {i} flipped still verifies");
    }
    for cut in 0..seed.len() {
        assert!(!targets::backup(&seed[..cut]), "{cut} bytes verify");
    }
}
