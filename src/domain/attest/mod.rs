//! Attestations (SPEC §12), first part: the C2SP signed-note format they are written in, so
//! any tool that reads signed notes (Go's `golang.org/x/mod/sumdb/note`, openssl for the raw
//! Ed25519 signature) can check what a member attested.
//!
//! A signed note is its text (UTF-8, ending in a newline), a blank line, then one line per
//! signature: `— <key name> <base64(key hash || signature)>`. For an Ed25519 key the key hash is
//! the first four bytes of SHA-256(key name || "\n" || 0x01 || public key), and the signature
//! is Ed25519 over the text bytes. The verifier key a member publishes is
//! `<name>+<key hash as 8 hex digits>+<base64(0x01 || public key)>`.

mod body;

pub mod check;

pub use body::{Attestation, BodyError, Fork};
pub use check::{check, CheckError};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::digest::{digest, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

/// The algorithm byte of an Ed25519 key in signed notes.
const ED25519_ALG: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Signature lines a note may carry; more is refused before any is checked.
pub const MAX_SIGNATURES: usize = 64;

/// Why a note does not open, or a key name is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("key name {0:?}: must be non-empty, printable, without spaces or '+'")]
    BadName(String),
    #[error("note text must be non-empty and end with a newline")]
    BadText,
    #[error("no blank line before the signatures")]
    NoSignatures,
    #[error("signature line {line}: {reason}")]
    BadSignatureLine { line: usize, reason: String },
    #[error("more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: [u8; 4],
    /// The raw signature bytes after the key hash (64 for Ed25519).
    pub signature: Vec<u8>,
}

fn check_name(name: &str) -> Result<(), NoteError> {
    let ok = !name.is_empty() && name.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '+');
    ok.then_some(()).ok_or_else(|| NoteError::BadName(name.to_string()))
}

/// The C2SP key hash of an Ed25519 key named `name`.
pub fn key_hash(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut input = Vec::with_capacity(name.len() + 34);
    input.extend_from_slice(name.as_bytes());
    input.push(b'\n');
    input.push(ED25519_ALG);
    input.extend_from_slice(public);
    let d = digest(&SHA256, &input);
    [d.as_ref()[0], d.as_ref()[1], d.as_ref()[2], d.as_ref()[3]]
}

/// The verifier key string: `<name>+<hash hex>+<base64(0x01 || public key)>`.
pub fn verifier_key(name: &str, public: &[u8; 32]) -> String {
    let mut key = vec![ED25519_ALG];
    key.extend_from_slice(public);
    format!(
        "{name}+{}+{}",
        crate::domain::hex::encode(&key_hash(name, public)),
        BASE64.encode(key)
    )
}

/// Signs `text` (which must end with a newline) as `name` with `key`: the whole note.
pub fn sign(text: &str, name: &str, key: &Ed25519KeyPair) -> Result<String, NoteError> {
    check_name(name)?;
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::BadText);
    }
    let public: [u8; 32] = key
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| NoteError::BadName(name.to_string()))?;
    let mut blob = key_hash(name, &public).to_vec();
    blob.extend_from_slice(key.sign(text.as_bytes()).as_ref());
    Ok(format!("{text}\n{SIGNATURE_PREFIX}{name} {}\n", BASE64.encode(blob)))
}

impl NoteSignature {
    /// The signature line as a note carries it (without the newline).
    pub fn line(&self) -> String {
        let mut blob = self.key_hash.to_vec();
        blob.extend_from_slice(&self.signature);
        format!("{SIGNATURE_PREFIX}{} {}", self.name, BASE64.encode(blob))
    }
}

/// Splits a note into its text and its signature lines (none checked yet).
pub fn open(note: &str) -> Result<(&str, Vec<NoteSignature>), NoteError> {
    let split = note.rfind("\n\n").ok_or(NoteError::NoSignatures)?;
    let (text, block) = (&note[..split + 1], &note[split + 2..]);
    if !block.ends_with('\n') {
        return Err(NoteError::BadSignatureLine {
            line: 1,
            reason: "the note must end with a newline".into(),
        });
    }
    let mut signatures = Vec::new();
    // Lines end in '\n' alone (as Go's note package reads them): `lines()` would also take
    // "\r\n", so two byte strings would open to the same note.
    for (i, line) in block.split_terminator('\n').enumerate() {
        if signatures.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let bad = |reason: &str| NoteError::BadSignatureLine {
            line: i + 1,
            reason: reason.to_string(),
        };
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or_else(|| bad("does not start with an em dash"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("no signature after the key name"))?;
        check_name(name).map_err(|_| bad("bad key name"))?;
        let blob = BASE64.decode(b64).map_err(|_| bad("signature is not base64"))?;
        if blob.len() < 5 {
            return Err(bad("signature too short"));
        }
        signatures.push(NoteSignature {
            name: name.to_string(),
            key_hash: [blob[0], blob[1], blob[2], blob[3]],
            signature: blob[4..].to_vec(),
        });
    }
    if text.is_empty() {
        return Err(NoteError::BadText);
    }
    Ok((text, signatures))
}

/// Whether `signature` is `name`'s (under `public`) over `text`.
pub fn verify(text: &str, signature: &NoteSignature, name: &str, public: &[u8; 32]) -> bool {
    signature.name == name
        && signature.key_hash == key_hash(name, public)
        && UnparsedPublicKey::new(&ED25519, public)
            .verify(text.as_bytes(), &signature.signature)
            .is_ok()
}

#[cfg(test)]
mod tests;
