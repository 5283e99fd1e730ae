//! Attacks through the files an operator handles, against the real binary (issue 26, items 6
//! and 7). Backups: someone who can write backup files but not read the node's signing key
//! plants a node secret of their own (re-sealing with a recomputed SHA-256, keeping the old
//! seal, or signing with another member's key) and must be refused by name, and every refused
//! or failed restore leaves `data_dir` exactly as it was, so a retry with a good backup works.
//! Oversized input: a huge one-line `node.toml`, consortium file or record field gives an error
//! of bounded length naming the file.

use std::path::Path;

use ring::signature::{Ed25519KeyPair, KeyPair};

use crate::support::cli::Site;
use crate::support::last_year;

/// Bytes of the seal at the end of an `ACCORD-BACKUP-2` file: public key and signature.
const SEAL: usize = 32 + 64;
/// Where the node secret sits: after the 16-byte magic line and the 3-byte member.
const SECRET: std::ops::Range<usize> = 19..51;

fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

/// `contents` followed by a seal made with `key`, as the format defines it.
fn sealed_with(contents: &[u8], key: &Ed25519KeyPair) -> Vec<u8> {
    let mut message = b"accord-backup-seal/2\n".to_vec();
    message.extend_from_slice(&sha256(contents));
    let mut out = contents.to_vec();
    out.extend_from_slice(key.public_key().as_ref());
    out.extend_from_slice(key.sign(&message).as_ref());
    out
}

fn signing_key(site: &Site, file: &str) -> Ed25519KeyPair {
    let der = std::fs::read(site.path(file)).expect("signing key");
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("Ed25519 key")
}

/// The offset of the value stored under `key` in a backup's contents.
fn value_at(contents: &[u8], wanted: impl Fn(&[u8]) -> bool) -> (usize, usize) {
    let mut at = SECRET.end;
    let u32_at = |at: usize| u32::from_be_bytes(contents[at..at + 4].try_into().unwrap()) as usize;
    loop {
        let key_len = u32_at(at);
        assert_ne!(key_len, u32::MAX as usize, "key not in the backup");
        let key = &contents[at + 4..at + 4 + key_len];
        at += 4 + key_len;
        let value_len = u32_at(at);
        if wanted(key) {
            return (at + 4, value_len);
        }
        at += 4 + value_len;
    }
}

/// Every path under `dir` (itself included) with its mode, or `None` if it does not exist:
/// "exactly as it was found".
fn snapshot(dir: &Path) -> Option<Vec<(String, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(dir).ok()?;
    let mut out = vec![(dir.display().to_string(), meta.permissions().mode())];
    if meta.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            out.extend(snapshot(&e).unwrap_or_default());
        }
    }
    Some(out)
}

#[test]
fn a_backup_with_a_planted_secret_is_refused_by_its_seal_and_a_failed_restore_leaves_data_dir_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let (site, [deu, _fra]) = Site::two_members(61);
    let year = last_year();
    site.ok(&format!("ingest --config {} records/deu.csv", deu.config));
    site.ok(&format!("publish --config {} --cube flows --period {year}", deu.config));

    // The backup is made by the running node, through its admin socket.
    let mut daemon = site.serve(&deu);
    site.ok(&format!("backup --config {} --out deu.backup", deu.config))
        .stdout_has("backed up");
    let original = site.status(&deu.config)["view_digest"].clone();
    assert!(original.is_string(), "{original}");
    daemon.terminate();
    let good = std::fs::read(site.path("deu.backup")).expect("backup");
    assert!(good.starts_with(b"ACCORD-BACKUP-2\nDEU"));
    let contents = &good[..good.len() - SEAL];

    // The attacker's secret, in the contents otherwise unchanged.
    let mut planted = contents.to_vec();
    planted[SECRET].copy_from_slice(&[7u8; 32]);
    let mut format_1 = b"ACCORD-BACKUP-1\n".to_vec();
    format_1.extend_from_slice(&planted[SECRET.start..]);
    let digest = sha256(&format_1);
    format_1.extend_from_slice(&digest);
    let mut old_seal = planted.clone();
    old_seal.extend_from_slice(&good[good.len() - SEAL..]);
    let fra_sealed = sealed_with(&planted, &signing_key(&site, "pki/fra.sign.pk8"));
    let mut bad_magic = good.clone();
    bad_magic[..16].copy_from_slice(b"NOT-AN-ACCORD-BK");
    let mut trailing = good.clone();
    trailing.push(b'\n');

    // Sealed with DEU's own key but not a store to restore: these fail after the store was
    // filled (the aggregates check, the format check), and must be undone just the same.
    let deu_key = signing_key(&site, "pki/deu.sign.pk8");
    let mut miscounted = contents.to_vec();
    let (cell, _) = value_at(&miscounted, |k| k.starts_with(b"a:"));
    miscounted[cell + 7] ^= 0x01;
    let mut newer = contents.to_vec();
    let (format, len) = value_at(&newer, |k| k == b"m:format");
    assert_eq!(len, 4);
    newer[format..format + 4].copy_from_slice(&99u32.to_be_bytes());

    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("format-1.backup", format_1, &["unsealed backup format 1"]),
        ("old-seal.backup", old_seal, &["bad seal", "does not verify"]),
        ("fra-seal.backup", fra_sealed, &["bad seal", "not one of DEU's keys"]),
        (
            "truncated.backup",
            good[..good.len() - 40].to_vec(),
            &["truncated", "the seal"],
        ),
        ("half.backup", good[..good.len() / 2].to_vec(), &["truncated"]),
        ("magic.backup", bad_magic, &["bad magic"]),
        ("trailing.backup", trailing, &["trailing bytes"]),
        (
            "miscounted.backup",
            sealed_with(&miscounted, &deu_key),
            &["aggregates disagree"],
        ),
        ("newer.backup", sealed_with(&newer, &deu_key), &["format version 99"]),
    ];

    // Restore targets: an existing empty directory with a mode of its own, and one that does
    // not exist (nor does its parent).
    let retarget = |name: &str, dir: &str| {
        let text = site
            .read(&deu.config)
            .replace("data_dir = \"deu\"", &format!("data_dir = \"{dir}\""));
        site.write(name, &text);
    };
    retarget("empty.toml", "empty");
    std::fs::create_dir(site.path("empty")).unwrap();
    std::fs::set_permissions(site.path("empty"), std::fs::Permissions::from_mode(0o750)).unwrap();
    retarget("missing.toml", "missing/deu");
    let before = snapshot(&site.path("empty"));
    for (file, bytes, reason) in &cases {
        site.write_bytes(file, bytes);
        for config in ["empty.toml", "missing.toml"] {
            let run = site.fails(&format!("restore --config {config} {file}"));
            run.reason_has(reason);
            run.reason_has(&[file]);
        }
        assert_eq!(snapshot(&site.path("empty")), before, "{file}: data_dir as it was");
        assert!(!site.path("missing").exists(), "{file}: nothing created");
    }

    // A data_dir holding a file is refused, and the file kept.
    retarget("held.toml", "held");
    std::fs::create_dir(site.path("held")).unwrap();
    site.write("held/notes.txt", "the operator's");
    site.fails("restore --config held.toml deu.backup")
        .reason_has(&["not empty", "notes.txt"]);
    assert_eq!(site.read("held/notes.txt"), "the operator's");

    // The retry with the good backup succeeds, in both, and the node opens with the same view.
    for config in ["empty.toml", "missing.toml"] {
        site.ok(&format!("restore --config {config} deu.backup"))
            .stdout_has("entries verified again (0 left out")
            .stdout_has("aggregates agree with");
        assert_eq!(site.status(config)["view_digest"], original, "{config}");
    }
    assert!(!site.path("empty/.accord-restoring").exists());
    assert_eq!(
        std::fs::metadata(site.path("empty")).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// The longest error line a huge input may produce: the excerpts (200 characters each) and
/// the text around them.
const SHORT: usize = 1_000;

#[test]
fn a_huge_one_line_config_or_record_field_gives_a_short_error_naming_the_file() {
    let site = Site::new("DEU,FRA");
    let config = site.node_config("DEU", "deu");
    let text = site.read(&config);
    let short = |line: &str, needles: &[&str]| {
        let run = site.fails(line);
        run.reason_has(needles);
        let stderr = run.stderr();
        assert!(stderr.len() < SHORT, "{} bytes of stderr from {line}", stderr.len());
    };

    // 10 MB on one line: refused by size before it is read.
    let huge = "x".repeat(10 << 20);
    site.write("huge.toml", &format!("country = \"{huge}\""));
    short(
        "status --config huge.toml",
        &["huge.toml", "over the limit of 1048576 bytes"],
    );
    site.write("pki/huge-consortium.toml", &huge);
    site.write(
        "c.toml",
        &text.replace("pki/consortium.toml", "pki/huge-consortium.toml"),
    );
    short("status --config c.toml", &["huge-consortium.toml", "over the limit"]);

    // Under the limit, a line of 900 KB: a syntax error, a value refused, a wrongly typed key.
    let long = "x".repeat(900_000);
    site.write(
        "syntax.toml",
        &format!("{}\nlisten = {long}\n", text.lines().next().unwrap()),
    );
    short(
        "status --config syntax.toml",
        &["syntax.toml", "TOML parse error at line 2", "…"],
    );
    site.write(
        "listen.toml",
        &text.replace("listen = \"", &format!("listen = \"{long}")),
    );
    short(
        "status --config listen.toml",
        &["listen.toml", "listen: not an address:port", "…"],
    );
    let consortium = site.read("pki/consortium.toml");
    site.write(
        "pki/long.toml",
        &consortium.replacen("country = \"DEU\"", &format!("country = \"{long}\""), 1),
    );
    site.write("l.toml", &text.replace("pki/consortium.toml", "pki/long.toml"));
    short("status --config l.toml", &["long.toml", "…"]);
    site.write("pki/unknown.toml", &format!("bogus = \"{long}\"\n{consortium}"));
    site.write("u.toml", &text.replace("pki/consortium.toml", "pki/unknown.toml"));
    short(
        "status --config u.toml",
        &["unknown.toml", "TOML parse error at line 1", "…"],
    );

    // A record field of 900 KB: file:line: field, and an excerpt of the value.
    site.synth(10, 3, "records");
    let records = site.read("records/deu.csv");
    let mut lines: Vec<String> = records.lines().map(str::to_string).collect();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[4] = long.clone();
    lines[1] = fields.join(",");
    site.write("big.csv", &(lines.join("\n") + "\n"));
    short(
        &format!("ingest --config {config} big.csv"),
        &["big.csv:2: citizenship:", "…"],
    );
}
