//! Store format migrations (SPEC §14): `accord check --migrate` moves a store written by an
//! earlier Accord to [`FORMAT_VERSION`], with the node stopped.
//!
//! Before anything changes, the whole store and its secret are written to a backup beside it
//! (`data_dir/store-format-N.backup`, the same format `accord backup` writes), so an upgrade that
//! goes wrong is undone with `accord restore`. Each version step is one sled batch that also
//! sets `m:format` to the step's result: a crash leaves the store at the old version or the
//! next one, never between, and running the command again carries on from there. A store of a
//! later format than this build knows is refused by name, untouched.
//!
//! Steps:
//! - 1 → 2: heads become 48 bytes (seq, digest, the head entry's `created_at`); format 1 could
//!   hold 40-byte heads, written before the feed rule compared `created_at` across seqs.

use std::path::{Path, PathBuf};

use prost::Message;

use super::feeds::{entry_key, head_key};
use super::{backup, open_db, StoreError, FORMAT_VERSION};
use crate::domain::model::Country;
use crate::proto;

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The format found.
    pub from: u32,
    /// The format the store has now ([`FORMAT_VERSION`]).
    pub to: u32,
    /// The backup written before the first change, if one was asked for.
    pub backup: Option<PathBuf>,
    /// Values rewritten, over all steps.
    pub rewritten: u64,
}

/// One version step: reads the store as the previous step left it and returns the batch that
/// brings it to the next format (without the `m:format` change, which the caller adds).
type Step = fn(&sled::Tree, &Path) -> Result<(sled::Batch, u64), StoreError>;

/// `STEPS[i]` migrates format `i + 1` to format `i + 2`.
const STEPS: [Step; FORMAT_VERSION as usize - 1] = [heads_keep_created_at];

/// Migrates the store in `data_dir` to [`FORMAT_VERSION`]. `Ok(None)` when it already has that
/// format. With `backup_first` (the node's signing key, which seals it), the store is first
/// backed up to `data_dir/store-format-N.backup` (refused if that file exists). The node must
/// be stopped.
pub fn migrate(
    data_dir: &Path,
    backup_first: Option<&ring::signature::Ed25519KeyPair>,
) -> Result<Option<Migrated>, StoreError> {
    let path = data_dir.join("store");
    if !path.exists() {
        return Err(StoreError::Corrupt {
            path,
            key: "m:format (no store here: nothing to migrate)".into(),
        });
    }
    let db = open_db(&path)?;
    let tree = db.open_tree("accord").map_err(|e| super::classify(path.clone(), e))?;
    let found = format_of(&tree, &path)?;
    if found == FORMAT_VERSION {
        return Ok(None);
    }
    if found == 0 {
        return Err(StoreError::Corrupt {
            path,
            key: "m:format (version 0)".into(),
        });
    }
    if found > FORMAT_VERSION {
        return Err(StoreError::Version {
            path,
            found,
            expected: FORMAT_VERSION,
        });
    }
    let backup = if let Some(key) = backup_first {
        let out = data_dir.join(format!("store-format-{found}.backup"));
        backup::write(&tree, &path, &out, key)?;
        Some(out)
    } else {
        None
    };
    let mut rewritten = 0;
    for version in found..FORMAT_VERSION {
        let (mut batch, n) = STEPS[version as usize - 1](&tree, &path)?;
        batch.insert(b"m:format".as_slice(), (version + 1).to_be_bytes().as_slice());
        tree.apply_batch(batch).map_err(|e| super::classify(path.clone(), e))?;
        db.flush().map_err(|e| super::classify(path.clone(), e))?;
        rewritten += n;
    }
    Ok(Some(Migrated {
        from: found,
        to: FORMAT_VERSION,
        backup,
        rewritten,
    }))
}

fn format_of(tree: &sled::Tree, path: &Path) -> Result<u32, StoreError> {
    let corrupt = || StoreError::Corrupt {
        path: path.to_path_buf(),
        key: "m:format".into(),
    };
    let value = tree
        .get(b"m:format")
        .map_err(|e| super::classify(path.to_path_buf(), e))?
        .ok_or_else(corrupt)?;
    let bytes: [u8; 4] = value.as_ref().try_into().map_err(|_| corrupt())?;
    Ok(u32::from_be_bytes(bytes))
}

/// 1 → 2: every 40-byte head gains its entry's `created_at`, read from the stored header.
fn heads_keep_created_at(tree: &sled::Tree, path: &Path) -> Result<(sled::Batch, u64), StoreError> {
    let corrupt = |key: &[u8]| StoreError::Corrupt {
        path: path.to_path_buf(),
        key: String::from_utf8_lossy(key).into_owned(),
    };
    let mut batch = sled::Batch::default();
    let mut rewritten = 0;
    for item in tree.scan_prefix(b"h:") {
        let (key, value) = item.map_err(|e| super::classify(path.to_path_buf(), e))?;
        match value.len() {
            48 => continue,
            40 => {}
            _ => return Err(corrupt(&key)),
        }
        let publisher = key[2..]
            .try_into()
            .ok()
            .and_then(Country::from_bytes)
            .ok_or_else(|| corrupt(&key))?;
        let seq = u64::from_be_bytes(value[..8].try_into().expect("40 bytes"));
        let entry_key = entry_key(publisher, seq);
        let created_at = tree
            .get(&entry_key)
            .map_err(|e| super::classify(path.to_path_buf(), e))?
            .and_then(|v| proto::Entry::decode(v.as_ref()).ok())
            .and_then(|e| e.envelope)
            .and_then(|env| crate::domain::dataset::EntryHeader::decode(&env.payload).ok())
            .map(|h| h.created_at)
            .ok_or_else(|| corrupt(&entry_key))?;
        let mut head = value.to_vec();
        head.extend_from_slice(&created_at.to_be_bytes());
        batch.insert(head_key(publisher), head);
        rewritten += 1;
    }
    Ok((batch, rewritten))
}
