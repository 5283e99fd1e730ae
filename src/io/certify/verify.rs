//! `accord verify` of a certified bundle, offline: every claim in the bundle is recomputed from
//! signed material and checked against the members' keys in a consortium file the auditor
//! trusts. Nothing in `certificate.json` is taken on its word but the digests it names, and
//! those must match what the signatures cover.

use std::collections::BTreeMap;
use std::path::Path;

use super::{render_file, view_files, CertifyError, Manifest, DOCUMENT, FORMAT, MANIFEST};
use crate::domain::attest::{check, Attestation};
use crate::domain::consortium::Consortium;
use crate::domain::dataset::AcceptedDataset;
use crate::domain::model::{Country, Cube, Period};
use crate::domain::reconcile::ConsortiumRef;

/// Files larger than this are refused before they are read: a bundle is local input, but
/// `verify` must not be made to read an unbounded file into memory.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// Files per bundle directory read at most.
const MAX_FILES: usize = 100_000;
/// How far members' clocks may disagree: an attestation may carry a time this much before the
/// newest entry it covers (the publisher's clock ahead of the attester's).
const CLOCK_SKEW_SECS: i64 = 300;
/// Witnessing notes read at most (each input entry has one at most).
const MAX_WITNESSES: usize = 10_000;

/// A member's attestation of the certified view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attested {
    pub member: Country,
    pub time: i64,
}

/// An input entry with its witnessed time: the first attestation by another member in the
/// bundle that names it, or a later entry chained onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryWitness {
    pub publisher: Country,
    pub seq: u64,
    pub cube: Cube,
    pub period: Period,
    pub created_at: i64,
    pub witness: Option<Attested>,
}

/// What a bundle proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub certified_by: String,
    pub view_digest: [u8; 32],
    pub consortium_version: u64,
    pub consortium_digest: [u8; 32],
    /// Members that attested this very view, by code.
    pub attested: Vec<Attested>,
    pub entries: Vec<EntryWitness>,
    pub view_files: usize,
    /// Whether the bundled document is the consortium file given (else only its attesters
    /// vouch for the rules the view was computed under).
    pub document_is_trusted: bool,
}

fn invalid(file: impl Into<String>, reason: impl Into<String>) -> CertifyError {
    CertifyError::Invalid {
        file: file.into(),
        reason: reason.into(),
    }
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, CertifyError> {
    let path = dir.join(name);
    let io = |source| CertifyError::Io {
        path: path.clone(),
        source,
    };
    // A regular file only (not a link to /dev/zero, not a FIFO), read no further than the limit.
    let meta = std::fs::symlink_metadata(&path).map_err(io)?;
    if !meta.is_file() {
        return Err(invalid(name, "not a regular file"));
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(&path).map_err(io)?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, MAX_FILE_BYTES + 1), &mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(name, format!("over the limit of {MAX_FILE_BYTES} bytes")));
    }
    Ok(bytes)
}

fn read_text(dir: &Path, name: &str) -> Result<String, CertifyError> {
    String::from_utf8(read(dir, name)?).map_err(|_| invalid(name, "not UTF-8"))
}

/// The names of the files in `dir/sub` ending in `ext`, sorted.
fn listed(dir: &Path, sub: &str, ext: &str) -> Result<Vec<String>, CertifyError> {
    let path = dir.join(sub);
    let io = |source| CertifyError::Io {
        path: path.clone(),
        source,
    };
    let mut out = Vec::new();
    for item in std::fs::read_dir(&path).map_err(io)? {
        let name = item.map_err(io)?.file_name().to_string_lossy().into_owned();
        if name.ends_with(ext) {
            if out.len() == MAX_FILES {
                return Err(invalid(sub, format!("more than {MAX_FILES} files")));
            }
            out.push(format!("{sub}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

fn digest_hex(file: &str, field: &str, text: &str) -> Result<[u8; 32], CertifyError> {
    crate::domain::hex::decode(text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| invalid(file, format!("{field}: not a SHA-256 digest in hex")))
}

/// One verified entry of the bundle, as the chain and the view need it.
struct Held {
    digest: [u8; 32],
    prev: Option<[u8; 32]>,
    created_at: i64,
    dataset: Option<(Cube, Period)>,
}

/// Checks the bundle in `dir` against the members' keys in `trusted`.
pub fn verify(dir: &Path, trusted: &Consortium) -> Result<Report, CertifyError> {
    let manifest: Manifest =
        serde_json::from_slice(&read(dir, MANIFEST)?).map_err(|e| invalid(MANIFEST, e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(invalid(
            MANIFEST,
            format!("format {:?}, expected {FORMAT:?}", manifest.format),
        ));
    }
    let view_digest = digest_hex(MANIFEST, "view_digest", &manifest.view_digest)?;
    let certified_by = Country::parse(&manifest.certified_by)
        .filter(|c| c.is_iso())
        .ok_or_else(|| invalid(MANIFEST, "certified_by: not a member code"))?
        .to_string();
    let consortium_digest = digest_hex(MANIFEST, "consortium.digest", &manifest.consortium.digest)?;

    // The document the view was computed under: its digest is what the members attested.
    let document_text = read_text(dir, DOCUMENT)?;
    let document =
        Consortium::parse(Path::new(DOCUMENT), &document_text).map_err(|e| invalid(DOCUMENT, e.to_string()))?;
    if crate::domain::consortium::digest(&document) != consortium_digest {
        return Err(invalid(
            DOCUMENT,
            "its digest is not the consortium digest the certificate names",
        ));
    }

    // Every entry, verified against the trusted keys.
    let mut held: BTreeMap<(Country, u64), Held> = BTreeMap::new();
    let mut inputs = Vec::new();
    for name in listed(dir, "entries", ".json")? {
        let v = crate::domain::export::verify_file(&read(dir, &name)?, trusted)
            .map_err(|e| invalid(&name, e.to_string()))?;
        let h = v.header();
        if name != format!("entries/{}-{}.json", h.publisher, h.seq) {
            return Err(invalid(&name, format!("holds {} seq {}", h.publisher, h.seq)));
        }
        held.insert(
            (h.publisher, h.seq),
            Held {
                digest: v.digest(),
                prev: h.prev,
                created_at: h.created_at,
                dataset: h.dataset(),
            },
        );
        let (publisher, seq, digest) = (h.publisher, h.seq, v.digest());
        if let Some(dataset) = v.into_dataset() {
            inputs.push(AcceptedDataset {
                publisher,
                seq,
                digest,
                dataset,
            });
        }
    }

    // The view those entries make, under the attested document.
    let mut view = crate::domain::reconcile::compute(&inputs, &document.reconcile);
    crate::domain::reconcile::under(
        &mut view,
        ConsortiumRef {
            version: manifest.consortium.version,
            digest: consortium_digest,
        },
        &document,
    );
    let computed = view.digest();
    if computed != view_digest {
        return Err(CertifyError::ViewDigest {
            computed: crate::domain::hex::encode(&computed),
            named: manifest.view_digest.clone(),
        });
    }
    let files = view_files();
    for (name, cube, format) in &files {
        if read(dir, name)? != render_file(&view, *cube, *format).into_bytes() {
            return Err(CertifyError::Rendered { file: name.clone() });
        }
    }

    // Who attested this very view.
    let mut attested = Vec::new();
    // An attestation of a view is made after the entries it is built from: a note dated
    // earlier (a leaked, retired key signing "in its window") is refused.
    let newest_input = inputs
        .iter()
        .filter_map(|d| held.get(&(d.publisher, d.seq)).map(|h| h.created_at))
        .max()
        .unwrap_or(i64::MIN);
    for name in listed(dir, "attestations", ".note")? {
        let (a, _) = check(&read_text(dir, &name)?, trusted).map_err(|e| invalid(&name, e.to_string()))?;
        // One file per member, named for it: a note copied under other names counts once.
        if name != format!("attestations/{}.note", a.member) {
            return Err(invalid(&name, format!("holds {}'s attestation", a.member)));
        }
        if a.view != view_digest || a.consortium_digest != consortium_digest {
            return Err(invalid(
                &name,
                format!("{} attested another view or consortium version", a.member),
            ));
        }
        if a.time.saturating_add(CLOCK_SKEW_SECS) < newest_input {
            return Err(invalid(
                &name,
                format!(
                    "{} dated its attestation before the entries of the view were created",
                    a.member
                ),
            ));
        }
        attested.push(Attested {
            member: a.member,
            time: a.time,
        });
    }
    if attested.is_empty() {
        return Err(CertifyError::Unattested);
    }

    // Witnessed times of the inputs.
    let mut witnesses: Vec<Attestation> = Vec::new();
    for name in listed(dir, "witnesses", ".note")? {
        if witnesses.len() == MAX_WITNESSES {
            return Err(invalid("witnesses", format!("more than {MAX_WITNESSES} notes")));
        }
        let (a, _) = check(&read_text(dir, &name)?, trusted).map_err(|e| invalid(&name, e.to_string()))?;
        if name != format!("witnesses/{}-{}.note", a.member, a.time) {
            return Err(invalid(&name, format!("holds {}'s note of {}", a.member, a.time)));
        }
        witnesses.push(a);
    }
    let view_inputs: Vec<(Country, u64)> = view.inputs.values().map(|s| (s.publisher, s.seq)).collect();
    let mut entries = Vec::new();
    for (publisher, seq) in view_inputs {
        let Some(entry) = held.get(&(publisher, seq)) else {
            continue;
        };
        let Some((cube, period)) = entry.dataset else { continue };
        let witness = witnesses
            .iter()
            // A note dated before the entry was created contradicts itself: no witness.
            .filter(|a| a.member != publisher && a.time >= entry.created_at && names(a, publisher, seq, &held))
            .min_by_key(|a| a.time)
            .map(|a| Attested {
                member: a.member,
                time: a.time,
            });
        entries.push(EntryWitness {
            publisher,
            seq,
            cube,
            period,
            created_at: entry.created_at,
            witness,
        });
    }
    attested.sort_by_key(|a| a.member);
    Ok(Report {
        certified_by,
        view_digest,
        consortium_version: manifest.consortium.version,
        consortium_digest,
        attested,
        entries,
        view_files: files.len(),
        document_is_trusted: crate::domain::consortium::digest(trusted) == consortium_digest,
    })
}

/// Whether attestation `a` names `publisher`'s entry `seq`: its head for that publisher is the
/// entry itself, or a later entry whose chain of headers in the bundle leads back to it.
fn names(a: &Attestation, publisher: Country, seq: u64, held: &BTreeMap<(Country, u64), Held>) -> bool {
    let Some(&(_, head_seq, head_digest)) = a.heads.iter().find(|(p, _, _)| *p == publisher) else {
        return false;
    };
    if head_seq < seq {
        return false;
    }
    // As on the node: a note dated before the head it names was created witnesses nothing.
    if held.get(&(publisher, head_seq)).is_none_or(|h| a.time < h.created_at) {
        return false;
    }
    let mut expected = head_digest;
    for s in (seq..=head_seq).rev() {
        let Some(entry) = held.get(&(publisher, s)) else {
            return false;
        };
        if entry.digest != expected {
            return false;
        }
        if s == seq {
            return true;
        }
        match entry.prev {
            Some(prev) => expected = prev,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    /// A feed of DEU with three entries chained by `prev`.
    fn feed() -> BTreeMap<(Country, u64), Held> {
        let mut held = BTreeMap::new();
        let mut prev = None;
        for seq in 1..=3u64 {
            let digest = [seq as u8; 32];
            held.insert(
                (c("DEU"), seq),
                Held {
                    digest,
                    prev,
                    created_at: 0,
                    dataset: None,
                },
            );
            prev = Some(digest);
        }
        held
    }

    fn naming(seq: u64, digest: [u8; 32]) -> Attestation {
        Attestation {
            member: c("FRA"),
            consortium_version: 1,
            consortium_digest: [0; 32],
            heads: vec![(c("DEU"), seq, digest)],
            forks: Vec::new(),
            view: [0; 32],
            time: 0,
        }
    }

    #[test]
    fn a_witness_names_an_entry_through_the_chain_of_later_headers_only() {
        let held = feed();
        // The head itself, and the entries it chains back to.
        assert!(names(&naming(3, [3; 32]), c("DEU"), 3, &held));
        assert!(names(&naming(3, [3; 32]), c("DEU"), 1, &held));
        // A head before the entry says nothing about it.
        assert!(!names(&naming(1, [1; 32]), c("DEU"), 2, &held));
        // Another digest at the head: another branch, not this chain.
        assert!(!names(&naming(3, [9; 32]), c("DEU"), 1, &held));
        // Another publisher's head.
        assert!(!names(&naming(3, [3; 32]), c("ITA"), 1, &held));
        // A broken link: the header at seq 2 does not chain to seq 1.
        let mut broken = feed();
        broken.get_mut(&(c("DEU"), 2)).unwrap().prev = Some([7; 32]);
        assert!(!names(&naming(3, [3; 32]), c("DEU"), 1, &broken));
        // A missing header in between.
        let mut gap = feed();
        gap.remove(&(c("DEU"), 2));
        assert!(!names(&naming(3, [3; 32]), c("DEU"), 1, &gap));
    }
}
