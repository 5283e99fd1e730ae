//! Certified views (SPEC §12): a directory an auditor can check offline, with nothing but the
//! consortium file, to learn which members attested the very view it holds, and since when each
//! input entry is known to have existed.
//!
//! `accord certify` writes, under `DIR`:
//!
//! | file | what |
//! |---|---|
//! | `certificate.json` | `format` `accord-certificate/1`, `certified_by`, `view_digest`, `consortium` (version, digest), `created` |
//! | `consortium.toml` | the canonical consortium document in force (its SHA-256 is the attested digest) |
//! | `<cube>.csv`, `<cube>.sdmx-csv.csv` | the view, as `accord view --cube <cube> --format csv / sdmx-csv` prints it |
//! | `entries/<PUB>-<seq>.json` | every signed entry the view is built from (`accord export` files), and the headers that chain an entry to the later seq its witness names |
//! | `attestations/<CODE>.note` | each member's attestation of this view digest and consortium version (C2SP signed notes) |
//! | `witnesses/<CODE>-<unix time>.note` | the first attestation by another member naming each input entry |
//!
//! `accord verify --consortium FILE DIR` trusts none of it: it verifies every entry against the
//! members' keys in `FILE`, recomputes the view from the entries under the bundled document
//! (whose digest must be the attested one), checks the view files are that view byte for byte,
//! and checks each attestation's signature, view digest and consortium digest.

mod verify;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::model::{Country, Cube};
use crate::domain::reconcile::{render, Format, View, ViewFilter};
use crate::proto;

pub use verify::{verify, Report};

/// The `format` of `certificate.json`.
pub const FORMAT: &str = "accord-certificate/1";
/// The manifest's name in the bundle.
pub const MANIFEST: &str = "certificate.json";
/// The bundled consortium document's name.
pub const DOCUMENT: &str = "consortium.toml";

/// Why a bundle cannot be written or does not check out; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertifyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("the entries in the bundle make view digest {computed}, but the certificate names {named}: the view is not the one certified")]
    ViewDigest { computed: String, named: String },
    #[error("{file} is not the view the entries make (it differs from what Accord renders from them)")]
    Rendered { file: String },
    #[error("no attestation in the bundle names this view: nobody vouches for it")]
    Unattested,
}

/// The manifest, `certificate.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub certified_by: String,
    pub view_digest: String,
    pub consortium: ConsortiumRef,
    /// When the bundle was written (RFC 3339, UTC).
    pub created: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsortiumRef {
    pub version: u64,
    pub digest: String,
}

/// What a node hands over to be certified.
pub struct Certified<'a> {
    pub member: Country,
    pub view: &'a View,
    pub view_digest: [u8; 32],
    pub consortium_version: u64,
    pub consortium_digest: [u8; 32],
    /// The canonical TOML of the consortium version in force.
    pub document: String,
    /// The entries the view is built from (with payload) and the chaining headers.
    pub entries: Vec<proto::Entry>,
    /// (member, note) of every attestation of this view.
    pub attestations: Vec<(Country, String)>,
    /// (member, time, note) of every witnessing attestation.
    pub witnesses: Vec<(Country, i64, String)>,
    pub now: i64,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub files: usize,
    pub entries: usize,
    pub attestations: usize,
    pub witnesses: usize,
}

/// The view files of a bundle, with the render each must equal.
pub(crate) fn view_files() -> Vec<(String, Cube, Format)> {
    let mut out = Vec::new();
    for cube in Cube::ALL {
        out.push((format!("{cube}.csv"), cube, Format::Csv));
        out.push((format!("{cube}.sdmx-csv.csv"), cube, Format::SdmxCsv));
    }
    out
}

pub(crate) fn render_file(view: &View, cube: Cube, format: Format) -> String {
    let filter = ViewFilter {
        cube: Some(cube),
        ..ViewFilter::default()
    };
    render(view, &filter, format)
}

/// Writes the bundle into `dir`, which must not exist or be empty: a certificate is never
/// mixed with another's files.
pub fn write(dir: &Path, c: &Certified) -> Result<Written, CertifyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertifyError::Io { path, source }
    };
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(CertifyError::Invalid {
            file: dir.display().to_string(),
            reason: "exists and is not empty: certify writes into a new directory".into(),
        });
    }
    for sub in ["entries", "attestations", "witnesses"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(io(&dir.join(sub)))?;
    }
    let put = |name: &str, bytes: &[u8]| -> Result<(), CertifyError> {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(io(&path))
    };
    let manifest = Manifest {
        format: FORMAT.to_string(),
        certified_by: c.member.to_string(),
        view_digest: crate::domain::hex::encode(&c.view_digest),
        consortium: ConsortiumRef {
            version: c.consortium_version,
            digest: crate::domain::hex::encode(&c.consortium_digest),
        },
        created: crate::domain::date::format_timestamp(c.now),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    json.push(b'\n');
    put(MANIFEST, &json)?;
    put(DOCUMENT, c.document.as_bytes())?;
    let mut files = 2;
    for (name, cube, format) in view_files() {
        put(&name, render_file(c.view, cube, format).as_bytes())?;
        files += 1;
    }
    for entry in &c.entries {
        let header = entry
            .envelope
            .as_ref()
            .and_then(|env| crate::domain::dataset::EntryHeader::decode(&env.payload).ok());
        let Some(h) = header else { continue };
        put(
            &format!("entries/{}-{}.json", h.publisher, h.seq),
            &crate::domain::export::encode(entry),
        )?;
    }
    for (member, note) in &c.attestations {
        put(&format!("attestations/{member}.note"), note.as_bytes())?;
    }
    for (member, time, note) in &c.witnesses {
        put(&format!("witnesses/{member}-{time}.note"), note.as_bytes())?;
    }
    files += c.entries.len() + c.attestations.len() + c.witnesses.len();
    Ok(Written {
        files,
        entries: c.entries.len(),
        attestations: c.attestations.len(),
        witnesses: c.witnesses.len(),
    })
}
