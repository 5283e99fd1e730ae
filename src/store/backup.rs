//! Backups (SPEC §14): one file holding the node secret and every key of the store, written
//! while the node runs and restored into an empty data directory on any host.
//!
//! Consistency: the copy is taken under the store's write lock, so no ingest batch, accepted
//! entry or publish lands half in it; reads (views, status, serving peers) go on meanwhile.
//! The secret travels with it because pseudonyms and cell keys are keyed by it: a node restored
//! without it would count re-ingested records twice and give its cells other noise.
//!
//! Format (`ACCORD-BACKUP-1`): the magic line, the 32-byte secret, then each key and value as a
//! u32 BE length and bytes, a u32 `u32::MAX` end mark, and the SHA-256 of everything before it.
//! The file holds microdata (pseudonymised) and the secret: it is created 0600 and never
//! overwritten.

use std::io::{Read, Write};
use std::path::Path;

use ring::digest::{Context, SHA256};

use super::{host, Store, StoreError};

const MAGIC: &[u8; 16] = b"ACCORD-BACKUP-1\n";
const END: u32 = u32::MAX;
/// Keys restored per sled batch.
const RESTORE_BATCH: usize = 10_000;

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupSummary {
    /// Store keys (records, cells, entries, heads, evidence, metadata).
    pub keys: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Context,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hash.update(data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data)
    }
}

impl Store {
    /// Writes a consistent backup of this store and its node secret to a new file `out`
    /// (mode 0600; an existing file is refused).
    pub fn backup(&self, out: &Path) -> Result<BackupSummary, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        write(&self.tree, &self.path, out)
    }
}

/// Writes the backup of `tree` (the store at `store_path`, its secret beside it) to the new file
/// `out`. The caller makes sure nothing writes to the tree meanwhile.
pub(super) fn write(tree: &sled::Tree, store_path: &Path, out: &Path) -> Result<BackupSummary, StoreError> {
    let fail = |message: String| StoreError::Backup {
        path: out.to_path_buf(),
        message,
    };
    let secret_path = store_path.with_file_name("node.secret");
    let secret = std::fs::read(&secret_path).map_err(|e| fail(format!("{}: {e}", secret_path.display())))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).map_err(|e| fail(e.to_string()))?;
    let mut w = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Context::new(&SHA256),
        bytes: 0,
    };
    let io = |e: std::io::Error| fail(e.to_string());
    w.put(MAGIC).map_err(io)?;
    w.put(&secret).map_err(io)?;
    let mut keys = 0;
    for item in tree.iter() {
        let (k, v) = item.map_err(|e| super::classify(store_path.to_path_buf(), e))?;
        for part in [&k[..], &v[..]] {
            w.put(&(part.len() as u32).to_be_bytes()).map_err(io)?;
            w.put(part).map_err(io)?;
        }
        keys += 1;
    }
    w.put(&END.to_be_bytes()).map_err(io)?;
    let digest = w.hash.clone().finish();
    w.inner.write_all(digest.as_ref()).map_err(io)?;
    let file = w.inner.into_inner().map_err(|e| fail(e.to_string()))?;
    file.sync_all().map_err(io)?;
    Ok(BackupSummary {
        keys,
        bytes: w.bytes + 32,
    })
}

/// Fills the empty (or missing) `data_dir` from the backup `file`: the node secret and every
/// store key. A damaged or truncated file is refused and leaves `data_dir` empty. The caller
/// opens the store afterwards, which checks it belongs to this member and this definition.
pub fn restore(data_dir: &Path, file: &Path) -> Result<BackupSummary, StoreError> {
    let fail = |message: String| StoreError::Backup {
        path: file.to_path_buf(),
        message,
    };
    if std::fs::read_dir(data_dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(fail(format!(
            "data_dir {} is not empty: restore fills an empty data directory only",
            data_dir.display()
        )));
    }
    let result = fill(data_dir, file);
    if result.is_err() {
        // Nothing half-restored stays behind to be mistaken for a node.
        let _ = std::fs::remove_dir_all(data_dir.join("store"));
        let _ = std::fs::remove_file(data_dir.join("node.secret"));
    }
    result.map_err(fail)
}

fn fill(data_dir: &Path, file: &Path) -> Result<BackupSummary, String> {
    let bytes_total = std::fs::metadata(file).map_err(|e| e.to_string())?.len();
    let mut r = std::io::BufReader::new(std::fs::File::open(file).map_err(|e| e.to_string())?);
    let mut hash = Context::new(&SHA256);
    let mut take = |n: usize, r: &mut dyn Read| -> Result<Vec<u8>, String> {
        let mut buf = vec![0u8; n];
        r.read_exact(&mut buf)
            .map_err(|_| "truncated: not a whole Accord backup".to_string())?;
        hash.update(&buf);
        Ok(buf)
    };
    if take(MAGIC.len(), &mut r)? != MAGIC {
        return Err("not an Accord backup (ACCORD-BACKUP-1)".into());
    }
    let secret = take(32, &mut r)?;
    host::private_dir(data_dir).map_err(|e| e.to_string())?;
    host::write_secret(&data_dir.join("node.secret"), &secret).map_err(|e| e.to_string())?;
    let db = sled::Config::new()
        .path(data_dir.join("store"))
        .open()
        .map_err(|e| e.to_string())?;
    let tree = db.open_tree("accord").map_err(|e| e.to_string())?;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let mut keys = 0;
    let mut part = |r: &mut dyn Read| -> Result<Option<Vec<u8>>, String> {
        let len = u32::from_be_bytes(take(4, r)?.try_into().expect("4 bytes"));
        if len == END {
            return Ok(None);
        }
        if u64::from(len) > bytes_total {
            return Err("damaged: a length beyond the file".into());
        }
        take(len as usize, r).map(Some)
    };
    while let Some(key) = part(&mut r)? {
        let value = part(&mut r)?.ok_or("damaged: a key without a value")?;
        batch.insert(key, value);
        in_batch += 1;
        keys += 1;
        if in_batch == RESTORE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch))
                .map_err(|e| e.to_string())?;
            in_batch = 0;
        }
    }
    let expected = hash.finish();
    let mut digest = [0u8; 32];
    r.read_exact(&mut digest)
        .map_err(|_| "truncated: the closing digest is missing".to_string())?;
    if digest[..] != *expected.as_ref() {
        return Err("damaged: the SHA-256 of the contents does not match".into());
    }
    tree.apply_batch(batch).map_err(|e| e.to_string())?;
    db.flush().map_err(|e| e.to_string())?;
    drop(tree);
    drop(db);
    host::tighten(&data_dir.join("store")).map_err(|e| e.to_string())?;
    Ok(BackupSummary {
        keys,
        bytes: bytes_total,
    })
}
