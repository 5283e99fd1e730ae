//! The backup file format, `ACCORD-BACKUP-2`, and its one reader. Pure: bytes in, the secret,
//! the store's keys and values and a verdict out; it never writes anything, so the fuzz target
//! and `restore` run the very same checks.
//!
//! Layout: the 16-byte magic line, the member (3 ASCII bytes), the 32-byte node secret, each
//! store key and value as a u32 BE length and bytes, a u32 `u32::MAX` end mark; then the seal:
//! the signer's Ed25519 public key (32 bytes) and its signature (64 bytes) over
//! [`SEAL_CONTEXT`] followed by the SHA-256 of everything before the seal. Nothing may follow.
//!
//! Why a signature: the file holds the node secret, which keys every pseudonym and cell key.
//! Format 1 closed with a bare SHA-256, which anyone who can write the file can recompute after
//! planting a secret of their own; a signature under the member's signing key (kept outside
//! `data_dir`, never in a backup) cannot be recomputed that way.

use std::io::Read;

use ring::digest::{Context, SHA256};
use ring::signature::{UnparsedPublicKey, ED25519};

use crate::domain::model::Country;

use super::BackupSummary;

/// The first line of a backup of this format.
pub(super) const MAGIC: &[u8; 16] = b"ACCORD-BACKUP-2\n";
/// The first line of the unsealed format 1, recognised only to refuse it by name.
const MAGIC_V1: &[u8; 16] = b"ACCORD-BACKUP-1\n";
/// Ends the list of keys and values (no key is that long).
pub(super) const END: u32 = u32::MAX;
/// What the seal's signature covers before the digest: a signature made for anything else (an
/// entry, an attestation) is never a backup seal.
pub(super) const SEAL_CONTEXT: &[u8] = b"accord-backup-seal/2\n";
/// Public key and signature.
const SEAL_BYTES: u64 = 32 + 64;

/// Why a backup was refused or could not be written or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The file does not start with an Accord backup's magic line.
    #[error("bad magic: not an Accord backup (expected ACCORD-BACKUP-2)")]
    BadMagic,
    /// The earlier format, sealed only by an unkeyed SHA-256.
    #[error("unsealed backup format 1: its SHA-256 seal can be recomputed by anyone who can write the file, so nothing shows the node secret in it is this node's; restore it with the Accord release that wrote it and take a new backup, which is signed with the node's key")]
    UnsealedFormat1,
    /// The file ends before the part named.
    #[error("truncated: {0} is missing; not a whole Accord backup")]
    Truncated(&'static str),
    /// The structure is inconsistent (a length beyond the file, a member code that is none).
    #[error("damaged: {0}")]
    Damaged(&'static str),
    /// A whole, well-formed backup of another member's node.
    #[error("a backup of {found}'s node, but this node is {expected}")]
    WrongMember { found: String, expected: Country },
    /// Sealed by a key that is not one of this member's: made (or re-sealed) elsewhere.
    #[error("bad seal: signed by key id {key_id}, which is not one of {member}'s keys (in the consortium file, or this node's signing key): this member's node did not seal it")]
    ForeignKey { key_id: String, member: Country },
    /// The seal's signature does not cover these contents.
    #[error("bad seal: the signature does not verify: the contents were changed after the backup was sealed")]
    BadSignature,
    /// Bytes after the seal: the sealed file was extended.
    #[error("trailing bytes after the seal: not the file that was sealed")]
    TrailingBytes,
    /// Restore fills an empty data directory only.
    #[error("data_dir {dir} is not empty (it holds {first}): restore fills an empty data directory only")]
    NotEmpty { dir: std::path::PathBuf, first: String },
    /// The restored store or secret could not be written.
    #[error("writing the restored store: {0}")]
    Write(String),
}

/// Who may have sealed a backup: the member it must belong to and the public keys accepted.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub member: Country,
    pub keys: &'a [[u8; 32]],
}

/// What [`read`] found in a backup whose seal verified.
pub(super) struct Contents {
    pub secret: [u8; 32],
    pub summary: BackupSummary,
}

/// A reader that hashes and counts what is taken from it.
struct Hashed<'r, R> {
    inner: &'r mut R,
    hash: Context,
    taken: u64,
    len: u64,
}

impl<R: Read> Hashed<'_, R> {
    /// The next `n` bytes, hashed. `n` is checked against what is left of the file first, so
    /// a hostile length never becomes an allocation.
    fn take(&mut self, n: u64, part: &'static str) -> Result<Vec<u8>, BackupError> {
        if n > self.len - self.taken {
            return Err(BackupError::Truncated(part));
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| BackupError::Truncated(part))?;
        self.hash.update(&buf);
        self.taken += n;
        Ok(buf)
    }

    fn take_u32(&mut self, part: &'static str) -> Result<u32, BackupError> {
        let b = self.take(4, part)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reads the backup in `r` (`len` bytes long), handing each store key and value to `pair` in
/// file order, and checks, in this order: the magic line (format 1 refused by name), the member
/// (`trust.member`), the structure (lengths within the file, every key with a value), the seal
/// (its key one of `trust.keys`, its signature over the digest of everything before it) and
/// that nothing follows it. `pair` runs before the seal is checked (a restore writes into a
/// staging directory it removes on failure); nothing read may be used before this returns `Ok`.
pub(super) fn read<R: Read>(
    r: &mut R,
    len: u64,
    trust: Trust<'_>,
    pair: &mut dyn FnMut(Vec<u8>, Vec<u8>) -> Result<(), BackupError>,
) -> Result<Contents, BackupError> {
    let mut h = Hashed {
        inner: r,
        hash: Context::new(&SHA256),
        taken: 0,
        len,
    };
    let magic = h.take(MAGIC.len() as u64, "the magic line")?;
    if magic == MAGIC_V1 {
        return Err(BackupError::UnsealedFormat1);
    }
    if magic != MAGIC {
        return Err(BackupError::BadMagic);
    }
    let member = h.take(3, "the member")?;
    let found = Country::from_bytes([member[0], member[1], member[2]])
        .ok_or(BackupError::Damaged("the member is not a country code"))?;
    if found != trust.member {
        return Err(BackupError::WrongMember {
            found: found.to_string(),
            expected: trust.member,
        });
    }
    let secret: [u8; 32] = h
        .take(32, "the node secret")?
        .try_into()
        .map_err(|_| BackupError::Truncated("the node secret"))?;
    let mut keys = 0;
    loop {
        let len = h.take_u32("a key length or the end mark")?;
        if len == END {
            break;
        }
        let key = h.take(len.into(), "a key")?;
        let value_len = h.take_u32("a value length")?;
        if value_len == END {
            return Err(BackupError::Damaged("a key without a value"));
        }
        let value = h.take(value_len.into(), "a value")?;
        pair(key, value)?;
        keys += 1;
    }
    let digest = h.hash.clone().finish();
    if h.len - h.taken < SEAL_BYTES {
        return Err(BackupError::Truncated("the seal"));
    }
    let mut seal = [0u8; SEAL_BYTES as usize];
    h.inner
        .read_exact(&mut seal)
        .map_err(|_| BackupError::Truncated("the seal"))?;
    let (public, signature) = seal.split_at(32);
    if !trust.keys.iter().any(|k| k[..] == *public) {
        return Err(BackupError::ForeignKey {
            key_id: crate::domain::dataset::envelope::key_id(public),
            member: trust.member,
        });
    }
    let mut message = SEAL_CONTEXT.to_vec();
    message.extend_from_slice(digest.as_ref());
    UnparsedPublicKey::new(&ED25519, public)
        .verify(&message, signature)
        .map_err(|_| BackupError::BadSignature)?;
    // Past the seal there must be nothing, whatever the length said at the start (a file that
    // grew while it was read included).
    let mut extra = [0u8; 1];
    if h.len != h.taken + SEAL_BYTES || h.inner.read(&mut extra).map_err(|e| BackupError::Io(e.to_string()))? != 0 {
        return Err(BackupError::TrailingBytes);
    }
    Ok(Contents {
        secret,
        summary: BackupSummary { keys, bytes: len },
    })
}

/// Checks a whole backup held in memory exactly as `restore` does before writing anything:
/// what the fuzz target runs. The store's keys and values are read and dropped.
pub fn verify(bytes: &[u8], trust: Trust<'_>) -> Result<BackupSummary, BackupError> {
    let mut r = bytes;
    read(&mut r, bytes.len() as u64, trust, &mut |_, _| Ok(())).map(|c| c.summary)
}
