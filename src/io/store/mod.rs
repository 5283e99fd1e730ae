//! The store: the only module that knows sled. One sled tree holds everything under key
//! prefixes, so that a record and the aggregate cells it changes are written in one atomic
//! `apply_batch` (sled batches are atomic within a tree):
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `m:` | `format`, `country`, `definition` | store metadata |
//! | `r:` | event_id | [`records::StoredRecord`], 53 bytes, person pseudonymised |
//! | `a:` | [`CellKey`](crate::domain::aggregate::CellKey) | [`Tally`](crate::domain::aggregate::Tally), 16 bytes |
//! | `t:` | event type code | record count, i64 BE |
//! | `f:` | publisher (3) + seq (u64 BE) | feed entry, protobuf `Entry` |
//! | `h:` | publisher (3) | head: seq (u64 BE) + digest (32) + the head entry's `created_at` (i64 BE) |
//! | `w:` | publisher (3) + seq (u64 BE) | marks an entry held without its payload (audience) |
//! | `x:` | publisher (3) + seq (u64 BE) + digest (32) | fork evidence: the first conflicting signed header per publisher, protobuf `Entry` without payload |
//! | `g:` | publisher (3) + seq (u64 BE) | marks a governance entry (proposal or approval) |
//! | `s:` | member (3) | the member's latest attestation (SPEC §12), a signed note |
//! | `p:` | peer (3) | peer sync status, JSON |
//! | `v:` | publisher (3) + seq (u64 BE) | the entry's first witness: member (3) + time (i64 BE) + seq named (u64 BE) |
//! | `u:` | member (3) + time (i64 BE) | a witnessing attestation, the signed note |
//!
//! Files arriving through the admin socket are staged beside the database, in
//! `<data_dir>/staging/`, until their end has arrived (see `staging`).
//!
//! The node secret (HMAC key for pseudonyms and cell keys) lives beside the database in
//! `node.secret`, mode 0600, created on first use; it is never logged or exported.

mod backup;
mod changes;
mod feeds;
mod host;
mod migrate;
mod records;
mod staging;
#[cfg(test)]
mod tests;
mod witness;

pub use backup::{restore, verify as verify_backup, BackupSummary, Trust as BackupTrust};
pub use feeds::{ForkEvidence, PeerStatus};
pub use migrate::{migrate, Migrated};
pub use records::{CheckReport, IngestOutcome};

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ring::hmac;

use crate::domain::consortium::Definition;
use crate::domain::model::Country;

/// The store format this build reads and writes. Format 1 could hold 40-byte heads (without
/// the head entry's `created_at`); format 2 holds 48-byte heads only. [`migrate`] moves a store
/// forward one format at a time.
pub const FORMAT_VERSION: u32 = 2;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error (I/O, corruption, or the store is open in another process).
    #[error("store {path}: {source}")]
    Sled { path: PathBuf, source: sled::Error },
    /// The store was written by a later version of Accord.
    #[error("store {path} has format version {found}, newer than this build of Accord reads (version {expected}): run the Accord that wrote it, or restore a backup made before the upgrade")]
    Version { path: PathBuf, found: u32, expected: u32 },
    /// The store has an older format: `accord check --migrate` moves it forward.
    #[error("store {path} has format version {found}, older than this build of Accord reads (version {expected}): stop the node and run `accord check --migrate --config <node.toml>`, which backs the store up first and migrates it in one atomic step per version")]
    NeedsMigration { path: PathBuf, found: u32, expected: u32 },
    /// The store belongs to another member.
    #[error("store {path} belongs to {found}, but this node is {expected}")]
    WrongCountry {
        path: PathBuf,
        found: String,
        expected: Country,
    },
    /// Aggregates were built under another harmonised definition.
    #[error("store {path} aggregates were built with {found}, but the consortium now defines {expected}; rebuild them from the records with `accord check --rebuild` (node stopped), or restore the previous consortium file")]
    DefinitionChanged {
        path: PathBuf,
        found: String,
        expected: String,
    },
    /// The node secret could not be read or created.
    #[error("node secret {path}: {message}")]
    Secret { path: PathBuf, message: String },
    /// A stored value does not decode: the store is damaged.
    #[error("store {path}: damaged value under key {key}")]
    Corrupt { path: PathBuf, key: String },
    /// A write failed for lack of space: a full disk or the process's file-size limit.
    #[error("store {path}: no space to write ({reason}); what was committed before is kept and the rest was not written: free space (or raise the file-size limit) and run the command again: records already stored are replaced, never counted twice")]
    Full { path: PathBuf, reason: String },
    /// A backup could not be written or restored.
    #[error("backup {path}: {source}")]
    Backup { path: PathBuf, source: backup::BackupError },
    /// A file arriving through the admin socket could not be staged or moved.
    #[error("staging file {path}: {source}")]
    Staging { path: PathBuf, source: std::io::Error },
    /// Another process holds the store (a running node).
    #[error("store {path} is in use by another process (is `accord serve` running? its admin socket is {path}/../admin.sock)")]
    Locked { path: PathBuf },
}

/// What [`Store::open_rebuilding`] did: the definitions, the records read, the cells written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub from: String,
    pub to: String,
    pub records: u64,
    pub cells: u64,
}

/// A definition as recorded under `m:definition`, read back.
fn parse_definition(text: &str) -> Option<Definition> {
    let mut months = None;
    let mut unknown = None;
    for part in text.split_whitespace() {
        match part.split_once('=')? {
            ("min_duration_months", v) => months = v.parse().ok(),
            ("unknown_duration", v) => unknown = crate::domain::consortium::UnknownDuration::parse(v),
            _ => return None,
        }
    }
    Some(Definition {
        min_duration_months: months?,
        unknown_duration: unknown?,
    })
}

/// How a definition is recorded under `m:definition`.
fn definition_text(definition: &Definition) -> String {
    format!(
        "min_duration_months={} unknown_duration={}",
        definition.min_duration_months,
        definition.unknown_duration.as_str()
    )
}

/// An open store.
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
    secret: hmac::Key,
    /// The harmonised definition the aggregates follow; changed only by [`Store::redefine`],
    /// under the write lock, with the aggregates rebuilt in the same batch.
    definition: std::sync::RwLock<Definition>,
    /// Serialises read-modify-write of aggregates and feed heads: sled batches are atomic, but
    /// computing a batch from current values must not interleave with another writer.
    write_lock: Mutex<()>,
    /// The next staging session (files arriving through the admin socket).
    sessions: std::sync::atomic::AtomicU64,
    /// Summaries of what a peer could pull, for quiet sync rounds.
    changes: changes::Changes,
}

impl Store {
    /// Opens (or creates) the store in `data_dir` for member `country`, whose aggregates follow
    /// `definition`.
    pub fn open(data_dir: &Path, country: Country, definition: Definition) -> Result<Store, StoreError> {
        let store = Store::open_any_definition(data_dir, country, definition)?;
        if let Some(found) = store.stored_definition_if_changed()? {
            return Err(StoreError::DefinitionChanged {
                path: store.path.clone(),
                found,
                expected: definition_text(&definition),
            });
        }
        store.settle_staged()?;
        Ok(store)
    }

    /// Opens the store like [`Store::open`] and, when its aggregates were built under another
    /// harmonised definition, rebuilds them from the records under `definition` (the consortium
    /// changed it). Returns the store and, if it rebuilt, what it did.
    pub fn open_rebuilding(
        data_dir: &Path,
        country: Country,
        definition: Definition,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Store, Option<Rebuilt>), StoreError> {
        let store = Store::open_any_definition(data_dir, country, definition)?;
        let Some(from) = store.stored_definition_if_changed()? else {
            store.settle_staged()?;
            return Ok((store, None));
        };
        let (records, cells) = store.rebuild_aggregates(progress)?;
        let rebuilt = Rebuilt {
            from,
            to: definition_text(&definition),
            records,
            cells,
        };
        store.settle_staged()?;
        Ok((store, Some(rebuilt)))
    }

    /// The stored definition text when it differs from this store's definition.
    fn stored_definition_if_changed(&self) -> Result<Option<String>, StoreError> {
        let stored = self
            .get(b"m:definition")?
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        Ok((stored != definition_text(&self.definition())).then_some(stored))
    }

    fn open_any_definition(data_dir: &Path, country: Country, definition: Definition) -> Result<Store, StoreError> {
        let path = data_dir.join("store");
        host::private_dir(data_dir).map_err(|e| StoreError::Sled {
            path: path.clone(),
            source: e.into(),
        })?;
        let secret = host::load_or_create_secret(&data_dir.join("node.secret"))?;
        let db = open_db(&path)?;
        let tree = db.open_tree("accord").map_err(|e| classify(path.clone(), e))?;
        // sled creates its files with the process umask; the store holds pseudonymised
        // microdata, so they are made private whatever the umask.
        host::tighten(&path).map_err(|e| StoreError::Sled {
            path: path.clone(),
            source: e.into(),
        })?;
        let store = Store {
            db,
            tree,
            path,
            secret,
            definition: std::sync::RwLock::new(definition),
            write_lock: Mutex::new(()),
            sessions: std::sync::atomic::AtomicU64::new(0),
            changes: changes::Changes::new(),
        };
        store.check_meta(country)?;
        Ok(store)
    }

    fn check_meta(&self, country: Country) -> Result<(), StoreError> {
        let def_text = definition_text(&self.definition());
        match self.get(b"m:format")? {
            None => {
                let mut b = sled::Batch::default();
                b.insert(b"m:format".as_slice(), FORMAT_VERSION.to_be_bytes().as_slice());
                b.insert(b"m:country".as_slice(), country.as_str().as_bytes());
                b.insert(b"m:definition".as_slice(), def_text.as_bytes());
                self.tree.apply_batch(b).map_err(|e| self.sled(e))?;
                self.flush()?;
            }
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
                if found > FORMAT_VERSION {
                    return Err(StoreError::Version {
                        path: self.path.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                if found < FORMAT_VERSION {
                    return Err(StoreError::NeedsMigration {
                        path: self.path.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                let stored = self
                    .get(b"m:country")?
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default();
                if stored != country.as_str() {
                    return Err(StoreError::WrongCountry {
                        path: self.path.clone(),
                        found: stored,
                        expected: country,
                    });
                }
            }
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn definition(&self) -> Definition {
        *self.definition.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the store under the definition its aggregates were built with (`definition` for a
    /// new store): for a node whose consortium version in force, read from the store itself, may
    /// have moved the definition past the configured file's.
    pub fn open_as_stored(data_dir: &Path, country: Country, definition: Definition) -> Result<Store, StoreError> {
        let store = Store::open_any_definition(data_dir, country, definition)?;
        if let Some(text) = store.stored_definition_if_changed()? {
            let stored = parse_definition(&text).ok_or_else(|| store.corrupt(b"m:definition"))?;
            *store.definition.write().unwrap_or_else(|p| p.into_inner()) = stored;
        }
        store.settle_staged()?;
        Ok(store)
    }

    /// The error [`Store::open`] gives when the aggregates follow another definition than
    /// `wanted`, if they do.
    pub fn require_definition(&self, wanted: Definition) -> Result<(), StoreError> {
        if self.definition() == wanted {
            return Ok(());
        }
        Err(StoreError::DefinitionChanged {
            path: self.path.clone(),
            found: definition_text(&self.definition()),
            expected: definition_text(&wanted),
        })
    }

    /// Rebuilds the aggregates from the records under `definition` (a consortium version
    /// changed it) in one atomic batch, as `accord check --rebuild` does. `None` when the
    /// aggregates follow it already.
    pub fn redefine(
        &self,
        definition: Definition,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Option<Rebuilt>, StoreError> {
        let from = self.definition();
        if from == definition {
            return Ok(None);
        }
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        *self.definition.write().unwrap_or_else(|p| p.into_inner()) = definition;
        match self.rebuild_aggregates_locked(progress) {
            Ok((records, cells)) => Ok(Some(Rebuilt {
                from: definition_text(&from),
                to: definition_text(&definition),
                records,
                cells,
            })),
            Err(e) => {
                *self.definition.write().unwrap_or_else(|p| p.into_inner()) = from;
                Err(e)
            }
        }
    }

    /// Makes every acknowledged write durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree.get(key).map_err(|e| self.sled(e))
    }

    fn sled(&self, source: sled::Error) -> StoreError {
        classify(self.path.clone(), source)
    }

    fn corrupt(&self, key: &[u8]) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            key: String::from_utf8_lossy(key).into_owned(),
        }
    }
}

/// sled's page cache. sled is most of a node's memory: with 128 MiB, ingesting a million
/// records peaked at 256 MB of RSS; with 16 MiB at 84 MB, for 10-15% more time
/// (BENCHMARKS.md, issue 28), and reads of a year's aggregates or feeds stay in the OS cache.
pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Opens the sled database at `path`, telling a store held by another process apart.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let open = || {
        sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(ref io)
                    if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
                {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                }
                e => classify(path.to_path_buf(), e),
            })
    };
    // A store this process just closed stays locked until sled's flusher thread wakes (up
    // to its 500 ms period), so a lock is retried briefly before it means another process.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match open() {
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// A staging file's I/O error, out of space told apart as for sled.
fn classify_io(path: PathBuf, source: std::io::Error) -> StoreError {
    match classify(path, sled::Error::Io(source)) {
        StoreError::Sled {
            path,
            source: sled::Error::Io(source),
        } => StoreError::Staging { path, source },
        other => other,
    }
}

/// A sled error as the operator should read it: running out of space (a full disk, or the
/// file-size limit) is told apart, since the remedy is the operator's and nothing is damaged.
fn classify(path: PathBuf, source: sled::Error) -> StoreError {
    if let sled::Error::Io(io) = &source {
        if matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::FileTooLarge
        ) {
            let reason = match io.kind() {
                std::io::ErrorKind::StorageFull => "the disk is full",
                _ => "the file-size limit is reached",
            };
            return StoreError::Full {
                path,
                reason: reason.to_string(),
            };
        }
    }
    StoreError::Sled { path, source }
}
