//! What the fuzz targets run: one function per decoder of outside bytes, each feeding the bytes
//! to Accord's own public functions exactly as the node does, and returning whether they were
//! accepted. The targets call these; `tests/fuzz_regressions.rs` in the main crate includes this
//! file and replays the seeds and every crash found, so a crash stays fixed.
//!
//! Nothing here may panic on any input except where Accord itself does: that is the finding.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use accord::dataset::{verify, Dataset, EntryHeader, Limits};
use accord::model::{Consortium, Country, Cube, Period};
use accord::proto;
use prost::Message;

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
                    .map(|m| {
                        let raw = accord::record::validate::RawRecord {
                            event_id: m.event_id,
                            person_id: m.person_id,
                            event_type: m.event_type,
                            event_date: m.event_date,
                            citizenship: m.citizenship,
                            country_of_birth: m.country_of_birth,
                            partner_country: m.partner_country,
                            sex: m.sex,
                            birth_year: if m.birth_year == 0 {
                                String::new()
                            } else {
                                m.birth_year.to_string()
                            },
                            reason: m.reason,
                            duration_months: if m.duration_months < 0 {
                                String::new()
                            } else {
                                m.duration_months.to_string()
                            },
                        };
                        accord::record::validate::validate_fields(&raw, &ctx).is_ok()
                    })
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
    let Ok(reader) = accord::record::reader::RecordReader::open(&path, ctx) else {
        return 0;
    };
    let mut valid = 0;
    for row in reader {
        match row {
            Ok(accord::record::reader::Row::Valid(_)) => valid += 1,
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
