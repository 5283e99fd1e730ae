//! The store on the node's host: `data_dir` and everything in it are the node user's alone
//! (SPEC §10), because the records there are microdata and `node.secret` keys every pseudonym
//! and cell key. Directories are 0700, files 0600, whatever the umask; a data directory found
//! loosened is tightened with a warning, and a node secret readable by others is refused, since
//! it may already have been read.

use std::io::Write;
use std::path::Path;

use ring::hmac;

use super::StoreError;

/// Creates `dir` (and missing parents) 0700, or tightens an existing one, warning when it was
/// open to other users.
pub(super) fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %dir.display(),
                mode = format!("{mode:o}"),
                "data_dir was open to other users of this host; made 0700"
            );
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Makes every directory under `dir` (itself included) 0700 and every file 0600.
pub(super) fn tighten(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::symlink_metadata(dir)?;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(dir)? {
                tighten(&entry?.path())?;
            }
        }
    }
    let _ = dir;
    Ok(())
}

/// Reads the node secret, or creates 32 random bytes on first use. Created atomically (written
/// and synced under a temporary name, then renamed), so a crash never leaves a short secret.
pub(super) fn load_or_create_secret(path: &Path) -> Result<hmac::Key, StoreError> {
    let err = |message: String| StoreError::Secret {
        path: path.to_path_buf(),
        message,
    };
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            refuse_if_shared(path).map_err(err)?;
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
        Ok(bytes) => Err(err(format!("expected 32 bytes, found {}", bytes.len()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| err("no system randomness".into()))?;
            write_secret(path, &bytes).map_err(|e| err(e.to_string()))?;
            Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
        }
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes a node secret atomically: under a temporary name, synced, then renamed into place.
pub(super) fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let staged = path.with_extension("secret.tmp");
    write_private(&staged, bytes)?;
    std::fs::rename(&staged, path)?;
    if let Some(parent) = path.parent() {
        // The rename is durable only once the directory is synced.
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes `bytes` to `path` (replacing a leftover from a crash) with mode 0600, synced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A secret other users could read is refused, not quietly tightened: the operator must decide
/// whether it leaked (then pseudonyms and cell keys are linkable by whoever read it).
fn refuse_if_shared(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!(
                "mode is {mode:o}, readable by other users of this host; if it may have been read, \
                 treat the pseudonyms keyed by it as exposed; make it private with `chmod 600 {}` \
                 to start",
                path.display()
            ));
        }
    }
    let _ = path;
    Ok(())
}
