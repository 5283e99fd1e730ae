//! The fuzz targets' inputs as tests: every seed in `fuzz/seeds/<target>/` and every input that
//! once crashed a target, kept in `tests/fuzz_cases/<target>/`, run through the same functions
//! the targets run (`fuzz/src/lib.rs`, included here). A crash found by fuzzing stays fixed,
//! and the seeds keep meaning what they were made for: valid inputs are accepted.

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};

use prost::Message;

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

/// The seeds of the governance, attestation and dashboard_query targets, made from the example
/// consortium and its keys (Ed25519 signatures are deterministic, so the same bytes every
/// time): (target, file name, bytes). A file name starts with what the target must make of it.
fn made_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use accord::attest::{self, Attestation, Fork};
    use accord::consortium::Consortium;
    use accord::consortium::{canonical_toml, digest};
    use accord::dataset::publish::{sign_governance, EntryParams};
    use accord::dataset::Governance;
    use accord::model::Country;

    let c = |code: &str| Country::parse(code).expect("code");
    let example_file = std::fs::read_to_string(targets::root().join("certs-example/consortium.toml")).expect("example");
    let example = targets::consortium();
    let parent = digest(example);
    // Version 2 as a member would propose it: the threshold raised, everything else kept.
    let raised = Consortium::parse(
        Path::new("proposed"),
        &example_file.replace("threshold = 5", "threshold = 10"),
    )
    .expect("the raised threshold parses");
    let proposal = |publisher: &str, version: u64, document: String| {
        let key = targets::signing_key(publisher);
        let act = Governance::Proposal {
            version,
            parent,
            document,
        };
        let params = EntryParams {
            head: None,
            created_at: targets::GOVERNANCE_CREATED_AT,
            audience: Vec::new(),
            key: &key,
        };
        let mut seed = vec![0];
        seed.extend(sign_governance(c(publisher), &act, params).payload);
        seed
    };
    let approval = {
        let key = targets::signing_key("FRA");
        let act = Governance::Approval {
            version: 2,
            digest: digest(&raised),
        };
        let params = EntryParams {
            head: None,
            created_at: targets::GOVERNANCE_CREATED_AT,
            audience: Vec::new(),
            key: &key,
        };
        let mut seed = vec![1];
        seed.extend(sign_governance(c("FRA"), &act, params).payload);
        seed
    };
    // Every section and optional field the canonical form writes.
    let everything = format!(
        "{}\n[governance]\nquorum = \"two-thirds\"\n\n[sharing]\ndefault = \"agreements\"\n\n\
         [[agreements]]\nname = \"DEU-FRA \\\"flows\\\"\"\nparties = [\"FRA\", \"DEU\"]\ncubes = [\"flows\", \"asylum\"]\n\
         from = \"2026-01-01\"\nuntil = \"2027-06-30T12:00:00Z\"\n\n\
         [[forks]]\npublisher = \"ITA\"\nseq = 2\nkeep = \"{}\"\n",
        example_file
            .replace("method = \"threshold\"\nthreshold = 5", "method = \"cell-key\"\nmax_noise = 3\nvariance = 0.25\nsmall_count = 5")
            .replace(
                "valid_until = \"2036-11-26\"\n\n[[members]]\ncountry = \"FRA\"",
                "valid_until = \"2036-11-26\"\nretired_after_seq = 40\n\n[[members.keys]]\npublic_key = \"\
                 1111111111111111111111111111111111111111111111111111111111111111\"\nvalid_from = \"2030-01-01\"\n\n\
                 [[members]]\ncountry = \"FRA\"",
            ),
        "ab".repeat(32)
    );
    let document = |text: &str| [&[2u8][..], text.as_bytes()].concat();
    let refused_version_1 = [
        &[0u8][..],
        &accord::proto::Proposal {
            version: 1,
            parent: parent.to_vec(),
            document: canonical_toml(&raised),
        }
        .encode_to_vec(),
    ]
    .concat();

    let attestation = |member: &str, signer: &str, time: &str| {
        let a = Attestation {
            member: c(member),
            consortium_version: 1,
            consortium_digest: parent,
            heads: vec![(c("DEU"), 3, [0x11; 32]), (c("FRA"), 1, [0x22; 32])],
            forks: vec![Fork {
                publisher: c("ITA"),
                seq: 2,
                held: [0x33; 32],
                conflicting: [0x44; 32],
            }],
            view: [0x55; 32],
            time: accord::date::parse_timestamp(time).expect("time"),
        };
        let note = attest::sign(
            &a.text(),
            &Attestation::key_name(c(member)),
            &targets::signing_key(signer),
        )
        .expect("signs");
        (a, note)
    };
    let (_, deu) = attestation("DEU", "DEU", "2026-12-05T10:00:00Z");
    let (fra, fra_note) = attestation("FRA", "FRA", "2026-12-05T10:00:05Z");
    // A second signature, by DEU's key under its own name: notes may carry several.
    let cosigned = attest::sign(&fra.text(), "accord.member/DEU", &targets::signing_key("DEU")).expect("signs");
    let two = format!("{fra_note}{}", &cosigned[fra.text().len() + 1..]);
    let (_, wrong_key) = attestation("ITA", "DEU", "2026-12-05T10:00:00Z");
    let (before, before_key) = attestation("DEU", "DEU", "2026-01-01T00:00:00Z");
    let other = attest::sign("hello, consortium\n", "example.org/notes", &targets::signing_key("DEU")).expect("signs");

    let query = |q: &str| q.as_bytes().to_vec();
    vec![
        (
            "governance",
            "proposal-threshold.bin",
            proposal("DEU", 2, canonical_toml(&raised)),
        ),
        (
            "governance",
            "proposal-as-typed.bin",
            proposal("ITA", 2, example_file.replace("threshold = 5", "threshold = 10")),
        ),
        (
            "governance",
            "proposal-with-refused-document-empty-name.bin",
            proposal("DEU", 3, "name = \"\"\n".into()),
        ),
        ("governance", "approval-version-2.bin", approval),
        ("governance", "document-example.bin", document(&example_file)),
        ("governance", "document-everything.bin", document(&everything)),
        ("governance", "refused-version-1.bin", refused_version_1),
        ("attestation", "attested-deu.txt", deu.into_bytes()),
        ("attestation", "attested-fra-two-signatures.txt", two.into_bytes()),
        ("attestation", "unsigned-wrong-key.txt", wrong_key.into_bytes()),
        ("attestation", "unsigned-before-the-key.txt", before_key.into_bytes()),
        ("attestation", "not-an-attestation-other-note.txt", other.into_bytes()),
        ("attestation", "not-a-note-text-alone.txt", before.text().into_bytes()),
        (
            "dashboard_query",
            "accepted-flows-pair.txt",
            query("cube=flows&period=2025&origin=DEU&destination=FRA"),
        ),
        (
            "dashboard_query",
            "accepted-side-page.txt",
            query("cube=asylum&period=2025-Q2&page=3"),
        ),
        (
            "dashboard_query",
            "accepted-download.txt",
            query("cube=permits&period=2025-05&format=sdmx-csv"),
        ),
        (
            "dashboard_query",
            "accepted-encoded.txt",
            query("cube=fl%6Fws&period=2025%2DQ1&origin=ITA&other=1"),
        ),
        ("dashboard_query", "accepted-nothing.txt", query("")),
        ("dashboard_query", "refused-lower-case.txt", query("origin=deu")),
        ("dashboard_query", "refused-month-13.txt", query("period=2025-13")),
        (
            "dashboard_query",
            "refused-negative-page.txt",
            query("cube=asylum&page=-1"),
        ),
    ]
}

/// Writes the seeds [`made_seeds`] makes (after the example keys are regenerated):
/// `cargo test --test it -- --ignored fuzz_regressions::remake_seeds`.
#[test]
#[ignore]
fn remake_seeds() {
    for (target, name, bytes) in made_seeds() {
        let dir = targets::root().join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
}

/// SDMX requests: the seeds say by name whether the node accepts them, and the target's own
/// checks (an SDMX status on every refusal, keys that read back) hold on each.
#[test]
fn sdmx_requests_are_accepted_or_refused_with_an_sdmx_status() {
    let results = run("sdmx_request", |b| targets::sdmx_request(b).to_string());
    assert!(results.len() >= 8);
    for (name, accepted) in &results {
        assert_eq!(accepted, &name.starts_with("accepted-").to_string(), "{name}");
    }
}

#[test]
fn governance_attestation_and_dashboard_seeds_are_as_made() {
    for (target, name, bytes) in made_seeds() {
        let path = targets::root().join("fuzz/seeds").join(target).join(name);
        let held = std::fs::read(&path).unwrap_or_default();
        assert!(
            held == bytes,
            "{} differs from what made_seeds makes: run remake_seeds",
            path.display()
        );
    }
}

/// Each seed's name starts with what the target makes of it.
fn outcomes_match_names(results: &std::collections::BTreeMap<String, String>) {
    for (name, outcome) in results {
        assert!(name.starts_with(&format!("{outcome}-")), "{name}: {outcome}");
    }
}

#[test]
fn governance_payloads_and_documents_read_as_a_node_reads_them() {
    outcomes_match_names(&run("governance", |b| targets::governance(b).to_string()));
    // The proposal seed is version 2 of the example consortium, and the approval seed approves it.
    let seeds = targets::root().join("fuzz/seeds/governance");
    let proposal = std::fs::read(seeds.join("proposal-threshold.bin")).expect("seed");
    let proposal = accord::proto::Proposal::decode(&proposal[1..]).expect("a proposal");
    assert_eq!(proposal.version, 2);
    assert_eq!(proposal.parent, accord::consortium::digest(targets::consortium()));
    let proposed = accord::node::parse_document(&proposal.document).expect("the proposed document");
    let approval = std::fs::read(seeds.join("approval-version-2.bin")).expect("seed");
    let approval = accord::proto::Approval::decode(&approval[1..]).expect("an approval");
    assert_eq!(approval.digest, accord::consortium::digest(&proposed));
    // A document over the node's bound is refused before it is parsed.
    let big = format!(
        "{}\n{}",
        proposal.document,
        "#".repeat(accord::node::MAX_DOCUMENT_BYTES)
    );
    assert_eq!(
        targets::governance(&[[2u8].as_slice(), big.as_bytes()].concat()),
        "refused"
    );
}

#[test]
fn attestation_notes_check_only_as_signed() {
    outcomes_match_names(&run("attestation", |b| targets::attestation(b).to_string()));
    // Any change to the signed text of an attestation is refused: as another attestation it is
    // unsigned, and most changes are not an attestation at all.
    let note = std::fs::read(targets::root().join("fuzz/seeds/attestation/attested-deu.txt")).expect("seed");
    let text_len = note.windows(2).rposition(|w| w == b"\n\n").expect("signatures") + 1;
    for i in 0..text_len {
        let mut bad = note.clone();
        bad[i] ^= 0x01;
        assert_ne!(targets::attestation(&bad), "attested", "byte {i} changed still attests");
    }
}

#[test]
fn dashboard_queries_read_to_the_filters_they_name() {
    outcomes_match_names(&run("dashboard_query", |b| {
        if targets::dashboard_query(b) {
            "accepted"
        } else {
            "refused"
        }
        .to_string()
    }));
    let read = |q: &str| accord::dashboard::parse_filters(q).expect("parses");
    let pair = read("cube=flows&period=2025&origin=DEU&destination=FRA");
    assert_eq!(
        accord::dashboard::filter_query(&pair.filter),
        "cube=flows&period=2025&origin=DEU&destination=FRA"
    );
    assert_eq!(read("cube=asylum&period=2025-Q2&page=3").page, 3);
    assert_eq!(read("cube=permits&format=sdmx-csv").format, "sdmx-csv");
    assert_eq!(
        accord::dashboard::filter_query(&read("cube=fl%6Fws&period=2025%2DQ1&origin=ITA&other=1").filter),
        "cube=flows&period=2025-Q1&origin=ITA"
    );
    assert!(accord::dashboard::parse_filters("origin=deu")
        .unwrap_err()
        .contains("origin"));
    assert!(read("period=2025&show=estimate").estimates);
    assert!(!read("period=2025&show=reconciled").estimates && !read("period=2025").estimates);
    assert!(accord::dashboard::parse_filters("show=truth")
        .unwrap_err()
        .contains("show"));
}
