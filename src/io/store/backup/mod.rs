//! Backups (SPEC §14): one file holding the node secret and every key of the store, written
//! while the node runs and restored into an empty data directory on any host.
//!
//! Consistency: the copy is taken under the store's write lock, so no ingest batch, accepted
//! entry or publish lands half in it; reads (views, status, serving peers) go on meanwhile.
//! The secret travels with it because pseudonyms and cell keys are keyed by it: a node restored
//! without it would count re-ingested records twice and give its cells other noise.
//!
//! Format (`ACCORD-BACKUP-2`, see [`format`]): the contents sealed with the node's Ed25519
//! signing key, so that whoever can write backup files cannot plant a secret of their own. The
//! file holds microdata (pseudonymised) and the secret: it is created 0600 and never
//! overwritten.
//!
//! Restore never leaves a half-restored node, nor touches what was there: it fills a staging
//! directory inside `data_dir` ([`Restoring`]), and only once the caller has opened and checked
//! the node there are the secret and the store moved into place; on any failure (or a panic)
//! the staging directory, and `data_dir` itself if restore created it, are removed, and nothing
//! else.

mod format;

pub use format::{verify, BackupError, Trust};

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::digest::{Context, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair};

use super::{host, Store, StoreError};
use crate::domain::model::Country;
use format::{END, MAGIC, SEAL_CONTEXT};

/// Keys restored per sled batch.
const RESTORE_BATCH: usize = 10_000;
/// The staging directory inside `data_dir` that a restore fills before anything is moved into
/// place. One left by a killed restore makes `data_dir` not empty: the operator removes it.
pub const STAGING: &str = ".accord-restoring";

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
    /// (mode 0600; an existing file is refused), sealed with `key`, the node's signing key.
    pub fn backup(&self, out: &Path, key: &Ed25519KeyPair) -> Result<BackupSummary, StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        write(&self.tree, &self.path, out, key)
    }
}

/// Writes the backup of `tree` (the store at `store_path`, its secret beside it) to the new file
/// `out`, sealed with `key`. The caller makes sure nothing writes to the tree meanwhile.
pub(super) fn write(
    tree: &sled::Tree,
    store_path: &Path,
    out: &Path,
    key: &Ed25519KeyPair,
) -> Result<BackupSummary, StoreError> {
    let fail = |source: BackupError| StoreError::Backup {
        path: out.to_path_buf(),
        source,
    };
    let io = |e: std::io::Error| fail(BackupError::Io(e.to_string()));
    let secret_path = store_path.with_file_name("node.secret");
    let secret =
        std::fs::read(&secret_path).map_err(|e| fail(BackupError::Io(format!("{}: {e}", secret_path.display()))))?;
    let member = tree
        .get(b"m:country")
        .map_err(|e| super::classify(store_path.to_path_buf(), e))?
        .and_then(|v| <[u8; 3]>::try_from(v.as_ref()).ok())
        .and_then(Country::from_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            path: store_path.to_path_buf(),
            key: "m:country".into(),
        })?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(out).map_err(io)?;
    let mut w = Hashing {
        inner: std::io::BufWriter::new(file),
        hash: Context::new(&SHA256),
        bytes: 0,
    };
    w.put(MAGIC).map_err(io)?;
    w.put(&member.bytes()).map_err(io)?;
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
    let mut message = SEAL_CONTEXT.to_vec();
    message.extend_from_slice(w.hash.clone().finish().as_ref());
    w.inner.write_all(key.public_key().as_ref()).map_err(io)?;
    w.inner.write_all(key.sign(&message).as_ref()).map_err(io)?;
    let file = w.inner.into_inner().map_err(|e| fail(BackupError::Io(e.to_string())))?;
    file.sync_all().map_err(io)?;
    Ok(BackupSummary {
        keys,
        bytes: w.bytes + 32 + 64,
    })
}

/// A restore in progress: the secret and the store written into a staging directory inside
/// `data_dir`, checked by the caller (open, re-verify, check) in place there, then moved into
/// `data_dir` by [`Restoring::commit`]. Dropped without a commit, it removes the staging
/// directory and `data_dir` if the restore created it (and nothing else), so a failed restore
/// leaves `data_dir` as it found it and a retry starts afresh.
pub struct Restoring {
    data_dir: PathBuf,
    staging: PathBuf,
    /// `data_dir` and the ancestors restore created, innermost first.
    created: Vec<PathBuf>,
    summary: BackupSummary,
    committed: bool,
}

impl Restoring {
    /// Where the restored node is, until committed: open it here to check it.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// What the backup held.
    pub fn summary(&self) -> BackupSummary {
        self.summary
    }

    /// Moves the secret and the store into `data_dir`. Nothing there may hold them: the secret
    /// is linked (which never replaces a file) and the store directory renamed.
    pub fn commit(mut self) -> Result<BackupSummary, StoreError> {
        let fail = |e: std::io::Error, what: &Path| StoreError::Backup {
            path: self.data_dir.clone(),
            source: BackupError::Write(format!("{}: {e}", what.display())),
        };
        let secret = self.data_dir.join("node.secret");
        std::fs::hard_link(self.staging.join("node.secret"), &secret).map_err(|e| fail(e, &secret))?;
        let store = self.data_dir.join("store");
        if let Err(e) = std::fs::rename(self.staging.join("store"), &store) {
            // Only the link made just above goes; the staging copy is removed on drop.
            let _ = std::fs::remove_file(&secret);
            return Err(fail(e, &store));
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        self.committed = true;
        host::private_dir(&self.data_dir).map_err(|e| fail(e, &self.data_dir))?;
        // The renames are durable only once the directory is synced.
        let _ = std::fs::File::open(&self.data_dir).and_then(|d| d.sync_all());
        Ok(self.summary)
    }
}

impl Drop for Restoring {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let _ = std::fs::remove_dir_all(&self.staging);
        // `remove_dir` removes an empty directory only: what restore created and nothing more.
        for dir in &self.created {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Creates `dir` and its missing ancestors; returns those it created, innermost first.
fn create_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    for d in missing.iter().rev() {
        if let Err(e) = std::fs::create_dir(d) {
            for made in missing.iter().filter(|m| m.exists()) {
                let _ = std::fs::remove_dir(made);
            }
            return Err(e);
        }
    }
    Ok(missing)
}

/// Checks the backup `file` against `trust` and writes it into a staging directory inside the
/// empty (or missing) `data_dir`; see [`Restoring`]. A refused file leaves `data_dir` as it
/// was. The caller opens the store in [`Restoring::staging`], which checks it belongs to this
/// member and this definition, and commits.
pub fn restore(data_dir: &Path, file: &Path, trust: Trust<'_>) -> Result<Restoring, StoreError> {
    let fail = |source: BackupError| StoreError::Backup {
        path: file.to_path_buf(),
        source,
    };
    if let Some(first) = std::fs::read_dir(data_dir).ok().and_then(|mut d| d.next()) {
        let first = first
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .unwrap_or_default();
        return Err(fail(BackupError::NotEmpty {
            dir: data_dir.to_path_buf(),
            first,
        }));
    }
    let io = |e: std::io::Error| fail(BackupError::Io(e.to_string()));
    let len = std::fs::metadata(file).map_err(io)?.len();
    let mut reader = std::io::BufReader::new(std::fs::File::open(file).map_err(io)?);
    let created =
        create_dirs(data_dir).map_err(|e| fail(BackupError::Write(format!("{}: {e}", data_dir.display()))))?;
    let mut restoring = Restoring {
        data_dir: data_dir.to_path_buf(),
        staging: data_dir.join(STAGING),
        created,
        summary: BackupSummary { keys: 0, bytes: len },
        committed: false,
    };
    // From here on, any return drops `restoring`, which removes what was written.
    restoring.summary = fill(&restoring.staging, &mut reader, len, trust).map_err(fail)?;
    Ok(restoring)
}

fn fill(
    staging: &Path,
    reader: &mut impl std::io::Read,
    len: u64,
    trust: Trust<'_>,
) -> Result<BackupSummary, BackupError> {
    let write = |e: &dyn std::fmt::Display| BackupError::Write(e.to_string());
    host::private_dir(staging).map_err(|e| write(&format!("{}: {e}", staging.display())))?;
    let db = sled::Config::new()
        .path(staging.join("store"))
        .open()
        .map_err(|e| write(&e))?;
    let tree = db.open_tree("accord").map_err(|e| write(&e))?;
    let mut batch = sled::Batch::default();
    let mut in_batch = 0;
    let contents = format::read(reader, len, trust, &mut |key, value| {
        batch.insert(key, value);
        in_batch += 1;
        if in_batch == RESTORE_BATCH {
            tree.apply_batch(std::mem::take(&mut batch)).map_err(|e| write(&e))?;
            in_batch = 0;
        }
        Ok(())
    })?;
    tree.apply_batch(batch).map_err(|e| write(&e))?;
    db.flush().map_err(|e| write(&e))?;
    drop(tree);
    drop(db);
    host::write_secret(&staging.join("node.secret"), &contents.secret).map_err(|e| write(&e))?;
    host::tighten(&staging.join("store")).map_err(|e| write(&e))?;
    Ok(contents.summary)
}
