//! What the fuzz targets run: one function per decoder of outside bytes, each feeding the bytes
//! to Accord's own public functions exactly as the node does, and returning whether they were
//! accepted. The targets call these; `tests/it/fuzz_regressions.rs` in the main crate includes this
//! file and replays the seeds and every crash found, so a crash stays fixed.
//!
//! Nothing here may panic on any input except where Accord itself does: that is the finding.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use accord::attest::{self, Attestation};
use accord::consortium::Consortium;
use accord::consortium::{canonical_toml, digest};
use accord::dataset::envelope::{sha256, sign};
use accord::dataset::publish::{sign_governance, EntryParams};
use accord::dataset::{verify, Dataset, EntryHeader, Governance, Limits, Subject};
use accord::model::{Country, Cube, Period};
use accord::node::{parse_document, MAX_ATTESTATION_BYTES};
use accord::proto;
use prost::Message;
use ring::signature::Ed25519KeyPair;

/// The repository root (where `certs-example/` lives), from the fuzz crate or the main one.
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    if here.join("certs-example").exists() {
        here.to_path_buf()
    } else {
        here.join("..")
    }
}

/// The example consortium: DEU, FRA, ITA, ESP, POL with the keys in `certs-example/`.
pub fn consortium() -> &'static Consortium {
    static C: OnceLock<Consortium> = OnceLock::new();
    C.get_or_init(|| {
        let path = root().join("certs-example/consortium.toml");
        Consortium::load(&path).expect("certs-example/consortium.toml")
    })
}

/// A member's example signing key (`certs-example/<code>.sign.pk8`).
pub fn signing_key(code: &str) -> Ed25519KeyPair {
    let path = root().join(format!("certs-example/{}.sign.pk8", code.to_ascii_lowercase()));
    let der = std::fs::read(&path).expect("example signing key");
    Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).expect("an Ed25519 PKCS#8 key")
}

/// DEU's example signing key, loaded once: the governance target signs every input with it.
fn deu_key() -> &'static Ed25519KeyPair {
    static K: OnceLock<Ed25519KeyPair> = OnceLock::new();
    K.get_or_init(|| signing_key("DEU"))
}

/// When the governance target's entries are created: inside the example keys' windows.
pub const GOVERNANCE_CREATED_AT: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

/// A file named `name` in a directory of this process's own, holding `data`.
pub fn scratch(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("accord-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    });
    let path = dir.join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// Entries from peers and export files: protobuf `Entry` (first byte 0) or export JSON (any
/// other first byte), decoded and verified against the example consortium. Also the header
/// and payload decoders on the raw bytes. Whether the entry verified.
pub fn entry(data: &[u8]) -> bool {
    let Some((mode, rest)) = data.split_first() else {
        return false;
    };
    let _ = EntryHeader::decode(rest);
    let _ = Dataset::decode(rest, 10_000);
    if *mode == 0 {
        match proto::Entry::decode(rest) {
            Ok(e) => verify(e, consortium(), &Limits::default()).is_ok(),
            Err(_) => false,
        }
    } else {
        match accord::export::verify_file(rest, consortium()) {
            Ok(v) => {
                // The same entry as a peer would send it.
                let bytes = v.entry().encode_to_vec();
                let again = proto::Entry::decode(bytes.as_slice()).expect("re-encoded entry decodes");
                assert!(
                    verify(again, consortium(), &Limits::default()).is_ok(),
                    "re-encoded entry verifies"
                );
                true
            }
            Err(_) => false,
        }
    }
}

/// Exchange messages a peer sends: the requests a node serves and the Heads answer it reads,
/// with the fields checked as the server and the sync loop check them.
pub fn exchange_request(data: &[u8]) -> bool {
    let Some((kind, rest)) = data.split_first() else {
        return false;
    };
    let heads = |heads: &[proto::Head]| {
        heads
            .iter()
            .filter(|h| Country::parse(&h.publisher).is_some() && h.digest.len() == 32)
            .count()
    };
    match kind % 4 {
        0 => proto::FetchRequest::decode(rest)
            .map(|r| Country::parse(&r.publisher).is_some() && r.from_seq >= 1 && r.from_seq <= r.to_seq)
            .unwrap_or(false),
        1 => proto::AnnounceRequest::decode(rest)
            .map(|r| heads(&r.heads) > 0)
            .unwrap_or(false),
        2 => proto::HeadsResponse::decode(rest)
            .map(|r| heads(&r.heads) > 0)
            .unwrap_or(false),
        _ => proto::HeadsRequest::decode(rest).is_ok(),
    }
}

/// Admin-socket requests: publish and view arguments as the admin service parses them, and
/// ingest batches validated record by record.
pub fn admin_request(data: &[u8]) -> bool {
    let Some((kind, rest)) = data.split_first() else {
        return false;
    };
    match kind % 3 {
        0 => proto::PublishRequest::decode(rest)
            .map(|r| {
                Cube::parse(&r.cube).is_some()
                    && Period::parse(&r.period).is_some()
                    && r.audience.iter().all(|a| Country::parse(a).is_some())
            })
            .unwrap_or(false),
        1 => proto::ViewRequest::decode(rest)
            .map(|r| accord::admin::view_args(&r.cube, &r.period, &r.origin, &r.destination, &r.format).is_ok())
            .unwrap_or(false),
        _ => match proto::IngestBatch::decode(rest) {
            Ok(batch) => {
                let ctx = accord::record::validate::ValidationContext::for_today(Country::parse("DEU").expect("DEU"));
                batch
                    .records
                    .into_iter()
                    .map(|m| accord::admin::from_message(m, &ctx).is_ok())
                    .filter(|ok| *ok)
                    .count()
                    > 0
            }
            Err(_) => false,
        },
    }
}

/// A record file as `accord ingest` reads it (`ext`: `csv` or `jsonl`): every row read and
/// validated. The number of valid rows.
pub fn records(data: &[u8], ext: &str) -> usize {
    let path = scratch(&format!("records.{ext}"), data);
    let ctx = accord::record::validate::ValidationContext::for_today(Country::parse("DEU").expect("DEU"));
    let Ok(reader) = accord::reader::RecordReader::open(&path, ctx) else {
        return 0;
    };
    let mut valid = 0;
    for row in reader {
        match row {
            Ok(accord::reader::Row::Valid(_)) => valid += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    valid
}

/// `node.toml` as `accord serve` loads it (the consortium it names is the example one).
pub fn node_toml(data: &[u8]) -> bool {
    scratch("consortium.toml", include_bytes!("../../certs-example/consortium.toml"));
    let path = scratch("node.toml", data);
    accord::config::NodeConfig::load(&path).is_ok()
}

/// `consortium.toml` as every command parses it.
pub fn consortium_toml(data: &[u8]) -> bool {
    match std::str::from_utf8(data) {
        Ok(text) => Consortium::parse(Path::new("consortium.toml"), text).is_ok(),
        Err(_) => false,
    }
}

/// A peer's certificate (DER) as the member identity is read from it; and the bytes as a CRL
/// file beside the example DEU certificate, as a node loads its TLS configuration.
pub fn cert_identity(data: &[u8]) -> bool {
    let member = accord::tls::member_of(data).is_ok();
    let crl = scratch("crl.pem", data);
    let pki = root().join("certs-example");
    let files = accord::tls::TlsFiles {
        ca: pki.join("ca.pem"),
        cert: pki.join("deu.pem"),
        key: pki.join("deu.key"),
        crls: vec![crl],
    };
    let config = accord::tls::server_config(&files).is_ok();
    member || config
}

/// Backup files (`ACCORD-BACKUP-2`): the reader `accord restore` runs before anything it read
/// is used (magic, member, lengths, the seal under one of DEU's keys in the example consortium,
/// nothing after it), on the bytes held in memory instead of a file. Whether it verified.
pub fn backup(data: &[u8]) -> bool {
    static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let deu = Country::parse("DEU").expect("DEU");
    let keys = KEYS.get_or_init(|| {
        let member = consortium().member(deu).expect("DEU is a member");
        member.keys.iter().map(|k| k.public_key).collect()
    });
    let trust = accord::store::BackupTrust { member: deu, keys };
    accord::store::verify_backup(data, trust).is_ok()
}

/// Governance entries' payloads and proposed consortium documents. The first byte says what
/// the rest is: 0 a proposal payload, 1 an approval payload, anything else a proposed document.
/// A payload is committed to by a header that DEU signs (the fuzzer could not forge a
/// signature, so the target signs whatever payload it is given) and the entry is verified as a
/// peer's entry is, by `dataset::verify`, which decodes the act; a proposal's document, or the
/// document given directly, is parsed as the node parses every proposal
/// (`node::parse_document`, the size bound first). What the input turned out to be.
///
/// Properties beyond "no panic": an act that verified, signed again as a node signs its own
/// (`sign_governance`), verifies to the same act; and a document that parses re-encodes
/// (`canonical_toml`) to text that parses to a document with the same digest.
pub fn governance(data: &[u8]) -> &'static str {
    let Some((mode, rest)) = data.split_first() else {
        return "refused";
    };
    let subject = match mode {
        0 => Subject::Proposal,
        1 => Subject::Approval,
        _ => {
            return match std::str::from_utf8(rest) {
                Ok(text) if document_round_trip(text) => "document",
                _ => "refused",
            }
        }
    };
    match governance_act(subject, rest) {
        Some(Governance::Proposal { document, .. }) if document_round_trip(&document) => "proposal",
        Some(Governance::Proposal { .. }) => "proposal-with-refused-document",
        Some(Governance::Approval { .. }) => "approval",
        None => "refused",
    }
}

/// `payload` as the payload of DEU's governance entry of kind `subject`, verified.
fn governance_act(subject: Subject, payload: &[u8]) -> Option<Governance> {
    let deu = Country::parse("DEU").expect("DEU");
    let header = EntryHeader {
        publisher: deu,
        seq: 1,
        prev: None,
        subject,
        created_at: GOVERNANCE_CREATED_AT,
        audience: Vec::new(),
        payload_sha256: sha256(payload),
        payload_size: payload.len() as u64,
    };
    let entry = proto::Entry {
        envelope: Some(sign(header.encode(), deu_key())),
        payload: payload.to_vec(),
        has_payload: true,
    };
    let verified = verify(entry, consortium(), &Limits::default()).ok()?;
    let act = verified
        .governance()
        .expect("a verified governance entry with its payload carries its act")
        .clone();
    let params = EntryParams {
        head: None,
        created_at: GOVERNANCE_CREATED_AT,
        audience: Vec::new(),
        key: deu_key(),
    };
    let again = verify(sign_governance(deu, &act, params), consortium(), &Limits::default())
        .expect("a verified act signed again verifies");
    assert_eq!(
        again.governance(),
        Some(&act),
        "a verified act signed again decodes to itself"
    );
    Some(act)
}

/// Whether `text` parses as a proposed document; panics if its canonical form does not parse
/// back to the same digest.
fn document_round_trip(text: &str) -> bool {
    let Ok(parsed) = parse_document(text) else {
        return false;
    };
    let canonical = canonical_toml(&parsed);
    let again = parse_document(&canonical)
        .unwrap_or_else(|e| panic!("the canonical form of a parsed document does not parse: {e}\n{canonical}"));
    assert_eq!(
        digest(&again),
        digest(&parsed),
        "the canonical form parses to another digest:\n{canonical}\n{}",
        canonical_toml(&again)
    );
    true
}

/// A peer's attestation note, read as a node reads one (`Node::accept_attestation`): the size
/// bound, `attest::open`, `Attestation::parse` of its text, then `attest::check` against the
/// example consortium (the one note check of node and `accord verify`). What the input turned
/// out to be.
///
/// Properties beyond "no panic": a note that opens is its text and signature lines, re-rendered
/// byte for byte (only the canonical form opens); an attestation that parses is its own `text()`;
/// and the note `check` keeps (the text and the one signature that verified) checks again to
/// the same attestation and note, as the peers it is relayed to check it.
pub fn attestation(data: &[u8]) -> &'static str {
    let Ok(note) = std::str::from_utf8(data) else {
        return "not-a-note";
    };
    if note.len() > MAX_ATTESTATION_BYTES {
        return "not-a-note";
    }
    let Ok((text, signatures)) = attest::open(note) else {
        return "not-a-note";
    };
    let lines: String = signatures.iter().map(|s| format!("{}\n", s.line())).collect();
    assert_eq!(
        format!("{text}\n{lines}"),
        note,
        "an opened note re-renders byte for byte"
    );
    let Ok(claimed) = Attestation::parse(text) else {
        return "not-an-attestation";
    };
    assert_eq!(claimed.text(), text, "an attestation is its own text");
    match attest::check(note, consortium()) {
        Ok((a, kept)) => {
            assert_eq!(a, claimed, "check reads the attestation parse reads");
            let again = attest::check(&kept, consortium()).expect("the kept note checks again");
            assert_eq!(again, (a, kept.clone()), "the kept note checks to itself");
            "attested"
        }
        Err(_) => "unsigned",
    }
}

/// A dashboard query string, read as every view page and download reads it
/// (`dashboard::parse_filters`). Property beyond "no panic": the query string the dashboard
/// renders for the filter (`dashboard::filter_query`, in its links) reads back to the same
/// filter. Whether the query was accepted.
pub fn dashboard_query(data: &[u8]) -> bool {
    let Ok(query) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(filters) = accord::dashboard::parse_filters(query) else {
        return false;
    };
    let rendered = accord::dashboard::filter_query(&filters.filter);
    let again = accord::dashboard::parse_filters(&rendered)
        .unwrap_or_else(|e| panic!("the rendered query {rendered:?} does not parse: {e}"));
    assert_eq!(
        again.filter, filters.filter,
        "the rendered query {rendered:?} reads back to another filter"
    );
    true
}

/// An SDMX REST request as the node reads it (`sdmx::query::parse`): the first line is the path
/// after `/sdmx/2.1/` with its query string (form-urlencoded, as the handler decodes it), a
/// second line, if any, the `Accept` header. Properties beyond "no panic": a refusal carries an
/// SDMX status (400, 404, 406 or 501: 413 needs the view) and a message; an accepted data key
/// reads back to the same key. Whether the request was accepted.
pub fn sdmx_request(data: &[u8]) -> bool {
    use accord::sdmx::query::{parse, Query};
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (request, accept) = match text.split_once('\n') {
        Some((r, a)) => (r, Some(a)),
        None => (text, None),
    };
    let (path, raw) = request.split_once('?').unwrap_or((request, ""));
    let Ok(params) = serde_urlencoded::from_str::<Vec<(String, String)>>(raw) else {
        return false;
    };
    match parse(path, &params, accept) {
        Err(e) => {
            assert!(
                matches!(e.status, 400 | 404 | 406 | 501),
                "{path}: status {} ({})",
                e.status,
                e.message
            );
            assert!(!e.message.is_empty(), "{path}: an error without a message");
            false
        }
        Ok(Query::Data(q)) => {
            let key = path.split('/').nth(2).unwrap_or("all");
            let again = accord::sdmx::data::KeyFilter::parse(q.flow, key).expect("an accepted key parses again");
            assert_eq!(again, q.key, "{key} reads back to another key");
            true
        }
        Ok(Query::Structure(_)) => true,
    }
}
