//! Consortium governance (SPEC §11) as members see it from the command line: the version in
//! force and its digest in `status`, `accord consortium` printing the canonical document whose
//! SHA-256 is that digest, the view recording the version it was computed under, and a node
//! refusing a consortium file that is not the pinned genesis document.

use crate::support::cli::{Run, Site};
use crate::support::last_year;

fn sha256_hex(bytes: &[u8]) -> String {
    accord::hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

#[test]
fn status_consortium_and_view_name_the_version_in_force_and_its_digest() {
    let site = Site::new("DEU,FRA");
    let config = site.published_deu();
    let status = site.status(&config);
    assert_eq!(status["consortium_version"], 1);
    let digest = status["consortium_digest"].as_str().expect("digest").to_string();
    assert_eq!(status["proposals"].as_array().map(Vec::len), Some(0));

    // `accord consortium` prints the canonical document: its SHA-256 is the digest, and it
    // reads back as a consortium file with the same digest.
    let shown = site.ok(&format!("consortium --config {config}"));
    assert_eq!(sha256_hex(shown.stdout().as_bytes()), digest);
    assert!(
        shown
            .stderr()
            .contains(&format!("version 1 (in force), digest {digest}, genesis")),
        "{}",
        shown.details()
    );
    site.write("canonical.toml", &shown.stdout());
    let reread = accord::consortium::Consortium::load(&site.path("canonical.toml")).expect("canonical TOML parses");
    assert_eq!(accord::hex::encode(&accord::consortium::digest(&reread)), digest);
    let json: serde_json::Value =
        serde_json::from_str(&site.ok(&format!("consortium --config {config} --format json")).stdout()).expect("json");
    assert_eq!(
        (json["version"].clone(), json["digest"].clone()),
        (1.into(), digest.clone().into())
    );
    site.fails(&format!("consortium --config {config} --version 2"))
        .reason_has(&["consortium version 2 is not known", "versions 1 to 1"]);

    // The view says which version it was computed under; the text status too.
    let view: serde_json::Value =
        serde_json::from_str(&site.ok(&format!("view --config {config} --format json")).stdout()).expect("view json");
    assert_eq!(view["consortium_version"], 1);
    assert_eq!(view["consortium_digest"], digest.as_str());
    assert_eq!(view["digest"], status["view_digest"]);
    site.ok(&format!("status --config {config}"))
        .stdout_has(&format!("version      1 (consortium digest {digest})"));
}

/// Two members whose consortium files differ in one setting no longer share a view digest
/// without knowing why: the consortium digest in `status` shows it, and the view digest differs
/// even over the same datasets.
#[test]
fn a_different_consortium_file_shows_in_the_consortium_digest_and_the_view_digest() {
    let site = Site::new("DEU,FRA");
    let config = site.published_deu();
    let before = site.status(&config);
    let text = site.read("pki/consortium.toml");
    site.write(
        "pki/consortium.toml",
        &text.replace("asymmetry_flag = 0.2", "asymmetry_flag = 0.25"),
    );
    let after = site.status(&config);
    assert_ne!(before["consortium_digest"], after["consortium_digest"]);
    assert_ne!(before["view_digest"], after["view_digest"]);
    // Comments and spacing are not part of the document.
    site.write("pki/consortium.toml", &format!("# edited by hand\n\n{text}\n"));
    let again = site.status(&config);
    assert_eq!(before["consortium_digest"], again["consortium_digest"]);
    assert_eq!(before["view_digest"], again["view_digest"]);
}

#[test]
fn a_node_refuses_a_consortium_file_that_is_not_the_pinned_genesis() {
    let site = Site::new("DEU,FRA");
    let config = site.published_deu();
    let digest = site.status(&config)["consortium_digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let pinned = format!("consortium_sha256 = \"{digest}\"\n{}", site.read(&config));
    site.write(&config, &pinned);
    site.ok(&format!("status --config {config}"));
    let text = site.read("pki/consortium.toml");
    site.write("pki/consortium.toml", &text.replace("threshold = 5", "threshold = 3"));
    for command in ["status", "view"] {
        site.fails(&format!("{command} --config {config}")).reason_has(&[
            "pki/consortium.toml has digest",
            &format!("pins consortium_sha256 = {digest}"),
        ]);
    }
    site.write(&config, &pinned.replace(&digest[..8], "zzzzzzzz"));
    site.fails(&format!("status --config {config}"))
        .reason_has(&["consortium_sha256", "64 hex characters"]);
}

/// `accord propose` and `accord approve` from the command line. In a consortium of one, the
/// proposer's own proposal is a quorum: version 2 is in force at once. Bad documents and
/// approvals of what nobody proposed are refused with the reason.
#[test]
fn propose_and_approve_from_the_command_line() {
    let site = Site::new("DEU");
    let config = site.published_deu();
    let before = site.status(&config);
    let genesis = site.ok(&format!("consortium --config {config}")).stdout();

    site.write("broken.toml", "name = \"x\"\n[[members]]\ncountry = \"DEU\"\n");
    site.fails(&format!("propose --config {config} --change broken.toml"))
        .reason_has(&["proposed consortium document", "members[0].keys", "no signing key"]);
    site.fails(&format!("propose --config {config} --change missing.toml"))
        .reason_has(&["cannot read missing.toml"]);
    site.write("same.toml", &genesis);
    site.fails(&format!("propose --config {config} --change same.toml"))
        .reason_has(&["is version 1 itself"]);
    site.fails(&format!(
        "approve --config {config} --version 2 --digest {}",
        "ab".repeat(32)
    ))
    .reason_has(&["no proposal for version 2", "pending: none"]);
    let usage = site.run(&format!("approve --config {config} --version 2 --digest abc"));
    assert_eq!(usage.output.status.code(), Some(2), "{}", usage.details());

    site.write(
        "next.toml",
        &genesis.replace("asymmetry_flag = 0.2", "asymmetry_flag = 0.1"),
    );
    let proposed = site.ok(&format!("propose --config {config} --change next.toml"));
    proposed
        .stdout_has("proposed version 2 (digest ")
        .stdout_has("in force now");
    let after = site.status(&config);
    assert_eq!(after["consortium_version"], 2);
    assert_eq!(after["proposals"].as_array().map(Vec::len), Some(0));
    assert_ne!(after["view_digest"], before["view_digest"]);
    let v2 = site.ok(&format!("consortium --config {config}"));
    assert!(v2.stdout().contains("asymmetry_flag = 0.1"), "{}", v2.details());
    assert_eq!(
        sha256_hex(v2.stdout().as_bytes()),
        after["consortium_digest"].as_str().unwrap()
    );
    assert!(
        v2.stderr().contains("proposed by DEU, approved by DEU"),
        "{}",
        v2.details()
    );
    assert_eq!(
        site.ok(&format!("consortium --config {config} --version 1")).stdout(),
        genesis
    );
    // The DEU feed holds the proposal as seq 2, after its dataset; `verify` reads it offline.
    site.ok(&format!(
        "export --config {config} --publisher DEU --seq 2 --out proposal.json"
    ));
    site.ok("verify --consortium pki/consortium.toml proposal.json")
        .stdout_has("valid: DEU seq 2 proposal")
        .stdout_has("proposes version 2");

    // A new harmonised definition through a version: the aggregates are rebuilt from the
    // records at once (more events count at 3 months than at 12), and agree with them.
    let cells = |run: &Run| -> u64 {
        let out = run.stdout();
        let at = out.find(" records (").expect("check output") + " records (".len();
        out[at..].split(' ').next().unwrap().parse().expect("cells")
    };
    let before = cells(&site.ok(&format!("check --config {config}")));
    site.write(
        "definition.toml",
        &v2.stdout()
            .replace("min_duration_months = 12", "min_duration_months = 3"),
    );
    site.ok(&format!("propose --config {config} --change definition.toml"))
        .stdout_has("proposed version 3");
    let after = site.ok(&format!("check --config {config}"));
    after.stdout_has("aggregates agree with");
    assert!(cells(&after) > before, "{}", after.details());
    assert_eq!(site.status(&config)["consortium_version"], 3);
    site.ok(&format!(
        "publish --config {config} --cube flows --period {}",
        last_year()
    ));
}

/// A node's attestation (SPEC §12) is a signed note naming the consortium version, every head,
/// the view digest and the time, that verifies under the member's key in the consortium.
#[test]
fn a_nodes_attestation_is_a_signed_note_of_its_state() {
    let site = Site::new("DEU,FRA");
    let config = site.published_deu();
    let status = site.status(&config);
    let node_config = accord::config::NodeConfig::load(&site.path(&config)).expect("config");
    let node = accord::node::Node::open(node_config).expect("node");
    let now = accord::date::unix_now();
    let note = node.attestation(now).expect("attestation");
    let (text, signatures) = accord::attest::open(&note).expect("a signed note");
    let attestation = accord::attest::Attestation::parse(text).expect("an attestation");
    let deu = accord::model::Country::parse("DEU").unwrap();
    assert_eq!(attestation.member, deu);
    assert_eq!(attestation.consortium_version, 1);
    assert_eq!(
        accord::hex::encode(&attestation.consortium_digest),
        status["consortium_digest"].as_str().unwrap()
    );
    assert_eq!(
        accord::hex::encode(&attestation.view),
        status["view_digest"].as_str().unwrap()
    );
    assert_eq!(attestation.heads.len(), 1);
    assert_eq!((attestation.heads[0].0, attestation.heads[0].1), (deu, 1));
    assert_eq!(attestation.time, now);
    let key = node.consortium().member(deu).unwrap().keys[0].public_key;
    assert!(accord::attest::verify(text, &signatures[0], "accord.member/DEU", &key));
    let fra_key = node
        .consortium()
        .member(accord::model::Country::parse("FRA").unwrap())
        .unwrap()
        .keys[0]
        .public_key;
    assert!(!accord::attest::verify(
        text,
        &signatures[0],
        "accord.member/DEU",
        &fra_key
    ));
}
