//! DSSE envelopes, signing and verification: the one place where Accord decides whether an
//! entry is authentic. Security rests here, so it is small and everything it checks is listed
//! on [`verify`].
//!
//! An entry's signed bytes are the exact [`EntryHeader`] bytes the publisher produced; a
//! verifier never re-encodes them. Signatures are Ed25519 over the DSSE pre-authentication
//! encoding `PAE(payload_type, header_bytes)`.

use ring::digest::{digest, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use prost::Message;

use super::codec::{DecodeError, EntryHeader, Subject};
use super::Dataset;
use crate::domain::consortium::Consortium;
use crate::domain::hex;
use crate::domain::model::Country;
use crate::proto;

/// The DSSE payload type of an Accord entry header.
pub const PAYLOAD_TYPE: &str = "application/vnd.accord.entry-header.v1+protobuf";

/// Bounds on what an entry may cost a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the signed header bytes.
    pub max_header_bytes: usize,
    /// Maximum size of a dataset payload.
    pub max_payload_bytes: u64,
    /// Maximum number of cells in a dataset.
    pub max_cells: usize,
    /// Maximum number of signatures on an envelope.
    pub max_signatures: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 4096,
            max_payload_bytes: 32 * 1024 * 1024,
            max_cells: 500_000,
            max_signatures: 8,
        }
    }
}

/// Why an entry is not accepted. Each hostile input has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The entry has no envelope.
    #[error("entry has no envelope")]
    MissingEnvelope,
    /// The envelope's payload type is not an Accord entry header.
    #[error("wrong payload type {0:?}, expected {PAYLOAD_TYPE:?}")]
    WrongPayloadType(String),
    /// A size limit was exceeded.
    #[error("{what} is {size} bytes, over the limit {limit} ({limit_name})")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
        limit_name: &'static str,
    },
    /// The header or payload does not decode to something sane.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The header names a publisher that is not a consortium member.
    #[error("unknown publisher {0}")]
    UnknownPublisher(Country),
    /// The header's audience names a non-member.
    #[error("audience names {0}, which is not a consortium member")]
    UnknownAudience(Country),
    /// The envelope carries no signature.
    #[error("envelope carries no signature")]
    Unsigned,
    /// Too many signatures.
    #[error("envelope carries {0} signatures, over the limit max_signatures")]
    TooManySignatures(usize),
    /// The same signature or key id appears twice.
    #[error("duplicate signatures (key {0})")]
    DuplicateSignature(String),
    /// No signature verifies under a key of the publisher that was valid at `created_at`.
    #[error("signature does not verify: publisher {publisher}, key {keys}")]
    BadSignature { publisher: Country, keys: String },
    /// A signature verifies only under a key that was not valid at the entry's time.
    #[error(
        "signature by publisher {publisher} key {key} made outside the key's validity window (created at {created_at})"
    )]
    KeyOutsideWindow {
        publisher: Country,
        key: String,
        created_at: String,
    },
    /// The signing key is retired after an earlier seq of the publisher's feed (SPEC §11).
    #[error("signature by publisher {publisher} key {key} on seq {seq}, but the consortium retired that key after seq {retired_after_seq}")]
    KeyRetired {
        publisher: Country,
        key: String,
        seq: u64,
        retired_after_seq: u64,
    },
    /// The entry claims to be made before its period began: statistics of a period cannot
    /// exist before it starts, so the date is false (a backdated entry, perhaps under a key
    /// that was valid only then).
    #[error("{publisher} votes on consortium version {version}: {reason}")]
    GovernanceBound {
        publisher: Country,
        version: u64,
        reason: String,
    },
    /// A proposal or approval offered as its signed header alone: governance entries go to
    /// every member whole, and a vote without its payload can be neither bounded nor counted.
    #[error(
        "{publisher} seq {seq} is a governance entry without its payload: proposals and approvals are kept only whole"
    )]
    GovernanceWithoutPayload { publisher: Country, seq: u64 },
    #[error("{publisher} seq {seq} is on the branch the consortium set aside: a consortium version keeps the other entry for that seq")]
    BranchSetAside { publisher: Country, seq: u64 },
    #[error("created at {created_at}, before its period {period} began")]
    CreatedBeforePeriod { period: String, created_at: String },
    /// The entry claims a time further ahead of this node's clock than clocks drift.
    #[error("created at {created_at}, more than {} minutes ahead of this node's clock ({now})", MAX_CLOCK_AHEAD_SECS / 60)]
    CreatedInFuture { created_at: String, now: String },
    /// The payload length differs from the header's.
    #[error("payload is {actual} bytes, header says {expected}")]
    PayloadSize { expected: u64, actual: u64 },
    /// The payload digest differs from the header's.
    #[error("payload digest does not match the header")]
    PayloadDigest,
    /// The dataset payload disagrees with the header it travels with.
    #[error("dataset {field} {dataset:?} does not match header {header:?}")]
    PayloadMismatch {
        field: &'static str,
        dataset: String,
        header: String,
    },
}

/// An entry that passed [`verify`]: the only way to read a header or dataset from outside.
/// Its fields are private, so a value of this type is proof that [`verify`] ran: the store
/// takes one to place an entry in a feed, and nothing else can build it.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEntry {
    header: EntryHeader,
    digest: [u8; 32],
    /// The public key whose signature verified.
    signer: [u8; 32],
    dataset: Option<Dataset>,
    governance: Option<Governance>,
    entry: proto::Entry,
}

/// The payload of a governance entry (SPEC §11), decoded but not judged: whether a proposal's
/// document is a valid consortium and whether a vote counts is `governance`'s to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Governance {
    Proposal {
        version: u64,
        parent: [u8; 32],
        /// The proposed consortium document (TOML).
        document: String,
    },
    Approval {
        version: u64,
        digest: [u8; 32],
    },
}

impl Governance {
    fn decode(subject: Subject, payload: &[u8]) -> Result<Governance, VerifyError> {
        let malformed =
            |what: &'static str, message: String| VerifyError::Decode(DecodeError::Malformed { what, message });
        let digest = |what: &'static str, bytes: Vec<u8>| -> Result<[u8; 32], VerifyError> {
            bytes
                .try_into()
                .map_err(|b: Vec<u8>| malformed(what, format!("a digest of {} bytes", b.len())))
        };
        match subject {
            Subject::Proposal => {
                let p = proto::Proposal::decode(payload).map_err(|e| malformed("proposal", e.to_string()))?;
                if p.version < 2 {
                    return Err(malformed(
                        "proposal",
                        format!("version {}: proposals start at version 2", p.version),
                    ));
                }
                Ok(Governance::Proposal {
                    version: p.version,
                    parent: digest("proposal parent", p.parent)?,
                    document: p.document,
                })
            }
            Subject::Approval => {
                let a = proto::Approval::decode(payload).map_err(|e| malformed("approval", e.to_string()))?;
                if a.version < 2 {
                    return Err(malformed(
                        "approval",
                        format!("version {}: approvals start at version 2", a.version),
                    ));
                }
                Ok(Governance::Approval {
                    version: a.version,
                    digest: digest("approval digest", a.digest)?,
                })
            }
            Subject::Dataset { .. } => Err(malformed("governance entry", "a dataset".into())),
        }
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Governance::Proposal {
                version,
                parent,
                document,
            } => proto::Proposal {
                version: *version,
                parent: parent.to_vec(),
                document: document.clone(),
            }
            .encode_to_vec(),
            Governance::Approval { version, digest } => proto::Approval {
                version: *version,
                digest: digest.to_vec(),
            }
            .encode_to_vec(),
        }
    }
}

impl VerifiedEntry {
    /// The signed header.
    pub fn header(&self) -> &EntryHeader {
        &self.header
    }

    /// SHA-256 of the signed header bytes: the entry's identity in its feed.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The dataset, where the payload was present.
    pub fn dataset(&self) -> Option<&Dataset> {
        self.dataset.as_ref()
    }

    /// The governance act, for a proposal or approval entry whose payload was present.
    pub fn governance(&self) -> Option<&Governance> {
        self.governance.as_ref()
    }

    /// The public key whose signature verified (one of the publisher's keys).
    pub fn signer(&self) -> [u8; 32] {
        self.signer
    }

    /// The entry exactly as received, for storing and relaying unchanged.
    pub fn entry(&self) -> &proto::Entry {
        &self.entry
    }

    /// The same entry held as its signed header alone (the payload dropped): what a node keeps
    /// of an entry whose payload it may not hold.
    pub fn without_payload(mut self) -> VerifiedEntry {
        self.entry.payload.clear();
        self.entry.has_payload = false;
        self.dataset = None;
        self.governance = None;
        self
    }

    /// The dataset, taken out (the header stays readable through the digest and the caller's copy).
    pub fn into_dataset(self) -> Option<Dataset> {
        self.dataset
    }
}

impl VerifyError {
    /// A fixed, short name for the kind of failure: what metrics count by. Never built from
    /// anything a peer sent, so a peer cannot mint new label values.
    pub fn label(&self) -> &'static str {
        match self {
            VerifyError::MissingEnvelope => "missing_envelope",
            VerifyError::WrongPayloadType(_) => "wrong_payload_type",
            VerifyError::TooLarge { .. } => "too_large",
            VerifyError::Decode(_) => "undecodable",
            VerifyError::UnknownPublisher(_) => "unknown_publisher",
            VerifyError::UnknownAudience(_) => "unknown_audience",
            VerifyError::Unsigned => "unsigned",
            VerifyError::TooManySignatures(_) => "too_many_signatures",
            VerifyError::DuplicateSignature(_) => "duplicate_signature",
            VerifyError::BadSignature { .. } => "bad_signature",
            VerifyError::KeyOutsideWindow { .. } => "key_outside_window",
            VerifyError::KeyRetired { .. } => "key_retired",
            VerifyError::BranchSetAside { .. } => "branch_set_aside",
            VerifyError::GovernanceBound { .. } => "governance_bound",
            VerifyError::GovernanceWithoutPayload { .. } => "governance_without_payload",
            VerifyError::CreatedBeforePeriod { .. } => "created_before_period",
            VerifyError::CreatedInFuture { .. } => "created_in_future",
            VerifyError::PayloadSize { .. } => "payload_size",
            VerifyError::PayloadDigest => "payload_digest",
            VerifyError::PayloadMismatch { .. } => "payload_mismatch",
        }
    }
}

/// DSSE v1 pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Key id: hex of the first 8 bytes of SHA-256 of the raw public key (a hint only).
pub fn key_id(public_key: &[u8]) -> String {
    hex::encode(&digest(&SHA256, public_key).as_ref()[..8])
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Signs header bytes into an envelope.
pub fn sign(header_bytes: Vec<u8>, key: &Ed25519KeyPair) -> proto::Envelope {
    let sig = key.sign(&pae(PAYLOAD_TYPE, &header_bytes));
    proto::Envelope {
        payload: header_bytes,
        payload_type: PAYLOAD_TYPE.to_string(),
        signatures: vec![proto::Signature {
            keyid: key_id(key.public_key().as_ref()),
            sig: sig.as_ref().to_vec(),
        }],
    }
}

/// Verifies an entry against the consortium. Checks, in order:
/// 1. sizes within `limits` (header, payload, signature count) before any parsing;
/// 2. the payload type;
/// 3. the header decodes and is sane; its publisher and audience are members;
/// 4. no signature or key id appears twice;
/// 5. some signature verifies under a key of the **publisher named in the header** (never the
///    relaying peer) that was valid at the header's `created_at`; key ids are only hints, every
///    key of the publisher is tried;
/// 6. where a payload is present: its size and SHA-256 match the header, it decodes to a sane
///    dataset, and the dataset's publisher, cube and period match the header.
///
/// The period starts before `created_at` (SPEC §10 entry sanity), checked before the signature
/// so that a backdated entry is refused as such. The other sanity rules need more than the
/// entry: `created_at` against the clock is [`verify_at`]'s, against the previous entry the
/// feed's ([`super::feed::place`]).
pub fn verify(entry: proto::Entry, consortium: &Consortium, limits: &Limits) -> Result<VerifiedEntry, VerifyError> {
    let verified = verify_signed(entry, consortium, limits)?;
    // A fork the consortium settled (SPEC §12): only the kept branch's entry at that seq is
    // the publisher's; later entries of the other branch cannot chain onto it.
    let h = verified.header();
    if consortium
        .branch_kept(h.publisher, h.seq)
        .is_some_and(|keep| keep != verified.digest())
    {
        return Err(VerifyError::BranchSetAside {
            publisher: h.publisher,
            seq: h.seq,
        });
    }
    Ok(verified)
}

fn verify_signed(entry: proto::Entry, consortium: &Consortium, limits: &Limits) -> Result<VerifiedEntry, VerifyError> {
    let env = entry.envelope.as_ref().ok_or(VerifyError::MissingEnvelope)?;
    if env.payload.len() > limits.max_header_bytes {
        return Err(VerifyError::TooLarge {
            what: "entry header",
            size: env.payload.len() as u64,
            limit: limits.max_header_bytes as u64,
            limit_name: "max_header_bytes",
        });
    }
    if entry.payload.len() as u64 > limits.max_payload_bytes {
        return Err(VerifyError::TooLarge {
            what: "dataset payload",
            size: entry.payload.len() as u64,
            limit: limits.max_payload_bytes,
            limit_name: "max_payload_bytes",
        });
    }
    if env.signatures.len() > limits.max_signatures {
        return Err(VerifyError::TooManySignatures(env.signatures.len()));
    }
    if env.payload_type != PAYLOAD_TYPE {
        return Err(VerifyError::WrongPayloadType(env.payload_type.clone()));
    }
    let header = EntryHeader::decode(&env.payload)?;
    let member = consortium
        .member(header.publisher)
        .ok_or(VerifyError::UnknownPublisher(header.publisher))?;
    if let Some(a) = header.audience.iter().find(|a| consortium.member(**a).is_none()) {
        return Err(VerifyError::UnknownAudience(*a));
    }
    if let Some((_, period)) = header.dataset() {
        if header.created_at <= period.start_unix() {
            return Err(VerifyError::CreatedBeforePeriod {
                period: period.to_string(),
                created_at: crate::domain::date::format_timestamp(header.created_at),
            });
        }
    }
    let signer = check_signatures(env, &header, member)?;
    let digest = sha256(&env.payload);
    let mut governance = None;
    let dataset = if entry.has_payload {
        let actual = entry.payload.len() as u64;
        if actual != header.payload_size {
            return Err(VerifyError::PayloadSize {
                expected: header.payload_size,
                actual,
            });
        }
        if sha256(&entry.payload) != header.payload_sha256 {
            return Err(VerifyError::PayloadDigest);
        }
        let Some((cube, period)) = header.dataset() else {
            governance = Some(Governance::decode(header.subject, &entry.payload)?);
            return Ok(VerifiedEntry {
                header,
                digest,
                signer,
                dataset: None,
                governance,
                entry,
            });
        };
        let dataset = Dataset::decode(&entry.payload, limits.max_cells)?;
        let mismatch = |field, d: String, h: String| VerifyError::PayloadMismatch {
            field,
            dataset: d,
            header: h,
        };
        if dataset.publisher != header.publisher {
            return Err(mismatch(
                "publisher",
                dataset.publisher.to_string(),
                header.publisher.to_string(),
            ));
        }
        if dataset.cube != cube {
            return Err(mismatch("cube", dataset.cube.to_string(), cube.to_string()));
        }
        if dataset.period != period {
            return Err(mismatch("period", dataset.period.to_string(), period.to_string()));
        }
        Some(dataset)
    } else {
        if !entry.payload.is_empty() {
            return Err(VerifyError::PayloadSize {
                expected: 0,
                actual: entry.payload.len() as u64,
            });
        }
        None
    };
    Ok(VerifiedEntry {
        header,
        digest,
        signer,
        dataset,
        governance,
        entry,
    })
}

/// How far ahead of the verifier's clock an entry's `created_at` may be (SPEC §10).
pub const MAX_CLOCK_AHEAD_SECS: i64 = 300;

/// [`verify`] for an entry arriving now (from a peer, a file or this node's own publish): also
/// refuses a `created_at` more than [`MAX_CLOCK_AHEAD_SECS`] ahead of `now`. Entries already
/// accepted are re-verified with [`verify`] alone, so the view never depends on the clock.
pub fn verify_at(
    entry: proto::Entry,
    consortium: &Consortium,
    limits: &Limits,
    now: i64,
) -> Result<VerifiedEntry, VerifyError> {
    let verified = verify(entry, consortium, limits)?;
    let created_at = verified.header.created_at;
    if created_at > now.saturating_add(MAX_CLOCK_AHEAD_SECS) {
        return Err(VerifyError::CreatedInFuture {
            created_at: crate::domain::date::format_timestamp(created_at),
            now: crate::domain::date::format_timestamp(now),
        });
    }
    Ok(verified)
}

/// Returns the public key whose signature verified.
fn check_signatures(
    env: &proto::Envelope,
    header: &EntryHeader,
    member: &crate::domain::consortium::Member,
) -> Result<[u8; 32], VerifyError> {
    if env.signatures.is_empty() {
        return Err(VerifyError::Unsigned);
    }
    for (i, s) in env.signatures.iter().enumerate() {
        if env.signatures[..i]
            .iter()
            .any(|t| t.sig == s.sig || (!s.keyid.is_empty() && t.keyid == s.keyid))
        {
            return Err(VerifyError::DuplicateSignature(s.keyid.clone()));
        }
    }
    let message = pae(&env.payload_type, &env.payload);
    let mut outside_window = None;
    let mut retired = None;
    for key in &member.keys {
        let public = UnparsedPublicKey::new(&ED25519, &key.public_key);
        if env.signatures.iter().any(|s| public.verify(&message, &s.sig).is_ok()) {
            if !key.signs_seq(header.seq) {
                retired = key.retired_after_seq.map(|last| (key_id(&key.public_key), last));
            } else if key.valid_at(header.created_at) {
                return Ok(key.public_key);
            } else {
                outside_window = Some(key_id(&key.public_key));
            }
        }
    }
    if let Some((key, retired_after_seq)) = retired {
        return Err(VerifyError::KeyRetired {
            publisher: header.publisher,
            key,
            seq: header.seq,
            retired_after_seq,
        });
    }
    if let Some(key) = outside_window {
        return Err(VerifyError::KeyOutsideWindow {
            publisher: header.publisher,
            key,
            created_at: crate::domain::date::format_timestamp(header.created_at),
        });
    }
    let keys: Vec<String> = env.signatures.iter().map(|s| s.keyid.clone()).collect();
    Err(VerifyError::BadSignature {
        publisher: header.publisher,
        keys: keys.join(","),
    })
}
